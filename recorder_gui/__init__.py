"""Qt front end of the recording workstation: live tiles, panels and dialogs over an engine."""
