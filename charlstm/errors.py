"""User-facing errors: the library raises CharlstmError with one clear sentence (what is wrong and
what to do); the CLI prints it as one line and exits non-zero, never with a traceback."""
from __future__ import annotations


class CharlstmError(Exception):
    """A user error: bad input, missing file, invalid option. The message is shown as-is."""
