"""Options and helpers shared by CLI modules."""
from __future__ import annotations

import math
import os

import click

from charlstm.errors import CharlstmError


def quiet_option(f):
    """--quiet/-q: no progress bars or chatter, only results and errors (env CHARLSTM_QUIET=1)."""
    return click.option(
        "--quiet", "-q", is_flag=True, default=lambda: os.environ.get("CHARLSTM_QUIET") == "1",
        help="No progress bars or informational output.",
    )(f)


def parse_duration(text: str | None) -> float | None:
    """'90', '90s', '10m', '1.5h' -> seconds (None stays None)."""
    if text is None:
        return None
    t = text.strip().lower()
    mult = {"s": 1, "m": 60, "h": 3600}.get(t[-1:], None)
    num = t[:-1] if mult else t
    try:
        v = float(num) * (mult or 1)
    except ValueError:
        raise CharlstmError(f"cannot read duration '{text}'; use e.g. 90s, 10m or 1.5h") from None
    if not math.isfinite(v) or v <= 0:
        raise CharlstmError(f"a duration must be a positive, finite number of seconds, minutes or hours, got '{text}'")
    return v


def parse_save_every(text: str | None) -> dict[str, float | int | None]:
    """--save-every: '5m' / '90s' / '1.5h' (a duration) or '1000' (steps) or 'off' -> the config
    fields save_every (seconds; 0 = not on the clock) and save_every_steps; {} when not given (the
    defaults stay)."""
    if text is None:
        return {}
    t = text.strip().lower()
    if t == "off":
        return {"save_every": 0.0}
    if t.isdigit():
        if int(t) < 1:
            raise CharlstmError(f"--save-every takes a positive number of steps or a duration, got '{text}'")
        return {"save_every": 0.0, "save_every_steps": int(t)}
    return {"save_every": parse_duration(text)}
