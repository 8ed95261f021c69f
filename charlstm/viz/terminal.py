"""`--show layer1.c:37`: the text with each character's background coloured by one unit (ANSI
24-bit colours, the map of charlstm.viz.colors). With NO_COLOR set (https://no-color.org) it
prints a plain table of position, character and value instead."""
from __future__ import annotations

import os

import numpy as np

from charlstm.viz.colors import describe, normalise, rgb, text_rgb

RESET = "\x1b[0m"


def printable(ch: str) -> str:
    """A character as it can be shown safely: control characters (ESC included, which could
    drive the terminal) become \\xNN escapes; newline and tab are kept."""
    if ch in ("\n", "\t") or len(ch) != 1:
        return ch
    if not ch.isprintable() and ch != " ":
        return f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}"
    return ch


def no_color() -> bool:
    return bool(os.environ.get("NO_COLOR"))


def render_ansi(chars: list[str], values: np.ndarray, kind: str, title: str = "", color: bool | None = None) -> str:
    """chars [T] (one str per character), values [T] -> the text to print (ends with a newline).

    color None means: colours unless NO_COLOR is set.
    """
    values = np.asarray(values, dtype=np.float32)
    if color is None:
        color = not no_color()
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (float("nan"), float("nan"))
    head = f"{title}  min {lo:.3f}  max {hi:.3f}  mean {float(finite.mean()) if len(finite) else float('nan'):.3f}"
    if not color:
        rows = [head, "pos\tchar\tvalue"]
        shown = {"\n": "\\n", "\t": "\\t"}
        rows += [f"{t}\t{shown.get(c) or printable(c)}\t{v:.4f}" for t, (c, v) in enumerate(zip(chars, values))]
        return "\n".join(rows) + "\n"
    out = [head + f"  ({describe(kind)})\n"]
    xs = normalise(values, kind)
    for c, x in zip(chars, xs):
        r, g, b = rgb(float(x))
        fr, fg, fb = text_rgb(float(x))
        style = f"\x1b[48;2;{r};{g};{b}m\x1b[38;2;{fr};{fg};{fb}m"
        if c == "\n":
            out.append(f"{style} {RESET}\n")  # a coloured cell so the newline's value is visible
        elif c == "\t":
            out.append(f"{style}    {RESET}")
        else:
            out.append(f"{style}{printable(c)}{RESET}")
    out.append("\n")
    return "".join(out)
