"""Texts as steps: the one-character-per-step view every feature is computed on, and vectorised
helpers over it.

A text is either a ``str`` (one step per character) or a sequence of symbols (one step per symbol,
e.g. ``["a", "b", "<eot>", "c"]`` as a char vocabulary decodes ids one by one; see `to_symbols`).
In a ``str`` the literal five characters ``<eot>`` are taken as one record boundary (all five
steps behave as the boundary); in a symbol sequence it is the symbol ``"<eot>"``.

Owns: Steps and the helpers (running indices, segment sums, character masks, regex coverage). Does
not know: any particular feature (charlstm.neurons.scanners) or the registry (features).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Literal, Sequence, Union

import numpy as np

from charlstm.errors import CharlstmError

Kind = Literal["binary", "continuous", "auto"]
#: A text: a str (one step per character) or a sequence of symbols (one step per symbol).
Text = Union[str, Sequence[str]]

EOT = "<eot>"
UNK = "<unk>"
#: Columns a tab advances to: the next multiple of TAB_WIDTH (so "  \t" is 4, "\t\t" is 8).
TAB_WIDTH = 4
# Stand-ins for multi-character symbols in the one-character-per-step view of a symbol sequence:
# ASCII "record separator" for <eot>, the Unicode replacement character for <unk>.
EOT_CHAR = "\x1e"
UNK_CHAR = "\ufffd"


# ----------------------------------------------------------------------------------------------
# Steps: the one-character-per-step view shared by all features


@dataclass(frozen=True)
class Steps:
    """A text normalised to one character per step.

    source: what the caller passed (handed unchanged to user functions).
    flat: str [n], one character per step (multi-character symbols replaced by stand-ins).
    joined: the text as the user wrote it (symbols concatenated) — what regexes run on.
    offsets: int64 [n + 1], start of each step in `joined` (and its length at the end).
    eot: bool [n], steps that are (part of) a record boundary.
    line_end: bool [n], steps after which a new line starts (newlines, last step of each boundary).
    """

    source: object
    flat: str
    joined: str
    offsets: np.ndarray
    eot: np.ndarray
    line_end: np.ndarray

    @property
    def n(self) -> int:
        return len(self.flat)

    @property
    def codes(self) -> np.ndarray:
        """int64 [n]: code point of each step's character."""
        return np.frombuffer(self.flat.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.int64)


def steps(text: Text) -> Steps:
    if isinstance(text, Steps):
        return text
    if isinstance(text, str):
        n = len(text)
        eot = np.zeros(n, dtype=bool)
        last = np.zeros(n, dtype=bool)
        start = text.find(EOT)
        while start >= 0:
            eot[start:start + len(EOT)] = True
            last[start + len(EOT) - 1] = True
            start = text.find(EOT, start + len(EOT))
        newline = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4") == 10
        return Steps(text, text, text, np.arange(n + 1, dtype=np.int64), eot, newline | last)
    try:
        symbols = list(text)
    except TypeError:
        raise CharlstmError(f"a text must be a str or a sequence of symbols, not {type(text).__name__}") from None
    flat = []
    for i, s in enumerate(symbols):
        if not isinstance(s, str) or not s:
            raise CharlstmError(f"symbol {i} of the text is {s!r}; every symbol must be a non-empty str")
        flat.append(s if len(s) == 1 else EOT_CHAR if s == EOT else UNK_CHAR)
    eot = np.array([s == EOT for s in symbols], dtype=bool)
    newline = np.array([s == "\n" for s in symbols], dtype=bool)
    offsets = np.zeros(len(symbols) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in symbols], out=offsets[1:])
    return Steps(text, "".join(flat), "".join(symbols), offsets, eot, newline | eot)


def to_symbols(text: str) -> list[str]:
    """Split decoded text into steps as a char vocabulary has them: "<eot>" and "<unk>" are one
    symbol each, every other character is one symbol. Use it to align text decoded from ids (where
    `Vocab.decode` writes "<eot>" as five characters) with trace rows."""
    return [s for s in re.split(r"(<eot>|<unk>)|", text) if s]  # empty-pattern split = per char


# ----------------------------------------------------------------------------------------------
# Vectorised helpers


def last_index(flags: np.ndarray, inclusive: bool) -> np.ndarray:
    """int64 [n]: index of the last True flag at or before t (inclusive) or strictly before t;
    -1 when there is none."""
    n = len(flags)
    idx = np.where(flags, np.arange(n), -1)
    last = np.maximum.accumulate(idx) if n else idx
    if inclusive:
        return last
    return np.concatenate([[-1], last[:-1]]) if n else last


def segment_cumsum(contrib: np.ndarray, reset: np.ndarray) -> np.ndarray:
    """Running sum of `contrib` that restarts at every reset step (whose value is 0).
    contrib: float64 [n] (already 0 on reset steps); reset: bool [n]."""
    cs = np.cumsum(contrib)
    last = last_index(reset, inclusive=True)
    base = np.where(last >= 0, cs[np.maximum(last, 0)], 0.0)
    return cs - base


def char_mask(s: Steps, chars: str) -> np.ndarray:
    """bool [n]: the step's character is one of `chars` (never on boundary steps)."""
    codes = s.codes
    mask = np.isin(codes, np.array([ord(c) for c in chars], dtype=np.int64))
    return mask & ~s.eot


def regex_steps(s: Steps, pattern: re.Pattern, keep: Callable[[re.Match], bool] | None = None) -> np.ndarray:
    """bool [n]: steps any character of which lies inside a (non-empty) match of `pattern` on the
    text as written (`joined`), counting only matches that `keep` accepts. Boundary steps are never
    inside."""
    m = len(s.joined)
    cover = np.zeros(m + 1, dtype=np.int64)
    for match in pattern.finditer(s.joined):
        if match.end() > match.start() and (keep is None or keep(match)):
            cover[match.start()] += 1
            cover[match.end()] -= 1
    inside = (np.cumsum(cover[:m]) > 0).astype(np.int64)
    if s.n == 0:
        return np.zeros(0, dtype=bool)
    per_step = np.add.reduceat(inside, s.offsets[:-1]) > 0
    return per_step & ~s.eot


