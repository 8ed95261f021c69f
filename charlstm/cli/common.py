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


def dynamic_options(f):
    """--step-size, --decay, --segment: the settings of dynamic evaluation (charlstm.dynamic), for
    commands that adapt a model while reading (`eval --dynamic`, `sample --adapt`). Their defaults
    are charlstm.config.DynamicSettings' (config does not import torch, so the help stays quick)."""
    from charlstm.config import DynamicSettings

    STEP, DECAY, SEGMENT = DynamicSettings.step, DynamicSettings.decay, DynamicSettings.segment

    f = click.option("--segment", type=int, default=None,
                     help=f"Dynamic evaluation: characters per weight update (default {SEGMENT}).")(f)
    f = click.option("--decay", type=float, default=None,
                     help=f"Dynamic evaluation: pull back toward the trained weights per update, 0..1 "
                          f"(default {DECAY:g}).")(f)
    f = click.option("--step-size", type=float, default=None,
                     help=f"Dynamic evaluation: step size of the weight updates (default {STEP:g}).")(f)
    return f


def dynamic_settings(enabled: bool, flag: str, step: float | None, decay: float | None, segment: int | None):
    """The DynamicSettings the options ask for (checked: one-line CharlstmError), or None when
    `flag` (--dynamic, --adapt) was not given; the settings alone, without it, are an error."""
    given = [name for name, v in (("--step-size", step), ("--decay", decay), ("--segment", segment)) if v is not None]
    if not enabled:
        if given:
            raise CharlstmError(f"{given[0]} is a setting of dynamic evaluation; it needs {flag}")
        return None
    from charlstm.config import DynamicSettings

    DEFAULTS = DynamicSettings()
    return DynamicSettings(step=DEFAULTS.step if step is None else step,
                           decay=DEFAULTS.decay if decay is None else decay,
                           segment=DEFAULTS.segment if segment is None else segment).validate()
