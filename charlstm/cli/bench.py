"""`charlstm bench` commands (to be filled in)."""
COMMANDS: list = []
