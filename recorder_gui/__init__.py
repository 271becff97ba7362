"""Qt front end of the recording workstation: it reaches the engine only through
engine.client, the engine.wire types and the frame rings (see the import-linter GUI
contract in pyproject.toml)."""
