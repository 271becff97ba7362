"""Qt front end of the recording workstation (arrives with the GUI issue)."""
