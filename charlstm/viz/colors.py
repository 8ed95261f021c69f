"""The colour map shared by the terminal view and the HTML viewer (viewer.html repeats it in JS).

Each value is first mapped to x in [-1, 1] by its kind, then to a colour between red (x = -1),
white (x = 0) and blue (x = +1), as in the pictures of Karpathy et al. and Edwin Chen:

* h, g, n (tanh outputs, already in -1..1): x = value.
* gates i, f, o, r, z (sigmoids in 0..1): x = 2*value - 1, i.e. centred at 0.5: red = closed,
  white = half open, blue = open. Saturated gates (< 0.1, > 0.9) are strongly coloured.
* c (unbounded cell state): x = value / max|value of that unit over the shown text|, so each
  unit uses the whole scale; the tooltip and the terminal header give the raw values.
"""
from __future__ import annotations

import numpy as np

NEG = (202, 0, 32)    # red, ColorBrewer RdBu's end
POS = (5, 113, 176)   # blue
GATE_KINDS = frozenset({"i", "f", "o", "r", "z"})


def normalise(values: np.ndarray, kind: str) -> np.ndarray:
    """Values of one unit [T] -> x [T] in [-1, 1] by the rules above."""
    v = np.asarray(values, dtype=np.float64)
    if kind in GATE_KINDS:
        x = 2 * v - 1
    elif kind == "c":
        m = np.nanmax(np.abs(v)) if len(v) else 0.0
        x = v / m if m > 0 else np.zeros_like(v)
    else:
        x = v
    return np.clip(x, -1, 1)


def rgb(x: float) -> tuple[int, int, int]:
    """x in [-1, 1] -> (r, g, b): white at 0, NEG at -1, POS at +1, linear in between."""
    if x != x:  # NaN
        return (238, 238, 238)
    x = max(-1.0, min(1.0, float(x)))
    base = POS if x > 0 else NEG
    t = abs(x)
    return tuple(int(round(255 + (b - 255) * t)) for b in base)  # type: ignore[return-value]


def text_rgb(x: float) -> tuple[int, int, int]:
    """Black text on pale backgrounds, white on strong ones."""
    return (255, 255, 255) if abs(x) > 0.6 else (0, 0, 0)


def describe(kind: str) -> str:
    """One line saying how a kind is coloured."""
    if kind in GATE_KINDS:
        return "gate 0..1: red = closed (0), white = 0.5, blue = open (1)"
    if kind == "c":
        return "cell state: red = negative, blue = positive, scaled by the unit's largest |value|"
    return "red = -1, white = 0, blue = +1"
