"""`charlstm sample` commands (to be filled in)."""
COMMANDS: list = []
