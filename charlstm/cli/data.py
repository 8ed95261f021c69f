"""`charlstm data` commands (to be filled in)."""
COMMANDS: list = []
