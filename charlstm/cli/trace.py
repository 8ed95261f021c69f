"""`charlstm trace` commands (to be filled in)."""
COMMANDS: list = []
