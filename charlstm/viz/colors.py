"""The colour map shared by the terminal view and the HTML viewer (viewer.html repeats it in JS).

Each value is first mapped to x in [-1, 1] by its kind, then to a colour between red (x = -1),
white (x = 0) and blue (x = +1), as in the pictures of Karpathy et al. and Edwin Chen:

* h, g, n (tanh outputs, already in -1..1): x = value.
* gates i, f, o, r, z (sigmoids in 0..1): x = 2*value - 1, i.e. centred at 0.5: red = closed,
  white = half open, blue = open. Saturated gates (< 0.1, > 0.9) are strongly coloured.
* c (unbounded cell state): x = value / max|value of that unit over the shown text|, so each
  unit uses the whole scale; the tooltip and the terminal header give the raw values.

Owns the colour map only; which kinds are gates is charlstm.units' to say.
"""
from __future__ import annotations

import html
from typing import Sequence

import numpy as np

from charlstm.units import GATE_KINDS

NEG = (202, 0, 32)    # red, ColorBrewer RdBu's end
POS = (5, 113, 176)   # blue


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


def colours(values: np.ndarray, kind: str) -> list[tuple[int, int, int]]:
    """One (r, g, b) in 0..255 per value, by the colour map for this kind."""
    return [rgb(float(x)) for x in normalise(np.asarray(values, dtype=np.float64), kind)]


def shown(ch: str) -> str:
    """How a symbol is drawn: <eot> as a pilcrow (a glyph every font has), newlines kept, tabs visible."""
    return {"<eot>": "\u00b6", "<unk>": "\ufffd", "\t": "\u2192   "}.get(ch, ch)


#: A row of coloured characters: (label, values [T], kind). kind picks the scaling (see above):
#: "h", "c", "i", "f", "g", "o", ...; "c" (scaled by the largest |value|) suits any unbounded value.
Row = tuple[str, np.ndarray, str]
#: The kind for values shown as they are (clipped to -1..1): 0/1 features, tanh outputs.
VALUE = "value"


def unit_rows_html(chars: Sequence[str], rows: Sequence[Row]) -> str:
    """HTML for several units over the same characters: per row (label, values [T], kind) a label
    and the characters coloured by the values (every character escaped); the exact value of each
    character in its tooltip."""
    out = []
    for label, values, kind in rows:
        v = np.asarray(values, dtype=np.float64)
        spans = "".join(f'<span style="background:rgb{col}" title="{x:+.3f}">{html.escape(shown(c))}</span>'
                        for c, x, col in zip(chars, v, colours(v, kind)))
        out.append(f'<div class="row"><div class="label">{html.escape(label)}</div><div class="chars">{spans}</div></div>')
    return "\n".join(out)
