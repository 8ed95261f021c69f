"""`charlstm neurons` commands (to be filled in)."""
COMMANDS: list = []
