"""`charlstm train` commands (to be filled in)."""
COMMANDS: list = []
