"""Where the LSTM beats or loses to the n-gram baselines: the error analysis of Karpathy, Johnson &
Fei-Fei (2015), as tables.

Given the bits the LSTM and an n-gram model spent on every prediction of a text (entry t predicts
character t + 1 from characters 0..t), the predictions are grouped three ways:

* by the class of the character predicted (letters, digits, spaces, newlines, opening and closing
  brackets, quotes, other punctuation, <eot>);
* by region: inside or outside each given binary feature (strings, comments, quotes...) at the
  character just read, as `neurons ablate` counts them;
* closing brackets by their distance to the bracket they close (one stack for ( [ {, reset at
  <eot>; a closer that does not match the innermost opener is left out).

Each group gets its count, both models' bits per character, the difference (LSTM minus n-gram:
negative where the LSTM is better) and the fraction of its predictions where the LSTM spent fewer
bits. Owns: the groups and `compare`. Does not know: models, n-gram counting or pictures.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np

#: Distances (characters from the opening bracket) at which the closing-bracket bins start.
DISTANCE_BINS = (1, 5, 20, 100, 1000)
OPEN, CLOSE = "([{", ")]}"
CLASSES = ("letter", "digit", "space", "tab", "newline", "open bracket", "close bracket", "quote", "punctuation",
           "<eot>", "other")


@dataclass
class Group:
    """One group of predictions: what (its name), by ("all", "class", "region", "distance"), count,
    lstm / ngram (bits per character), diff (lstm - ngram), lstm_better (fraction of predictions
    where the LSTM spent fewer bits)."""

    what: str
    by: str
    count: int
    lstm: float
    ngram: float
    diff: float
    lstm_better: float

    def to_json(self) -> dict:
        return asdict(self)


def char_class(symbol: str) -> str:
    """The class of one symbol (one of CLASSES)."""
    if symbol == "<eot>":
        return "<eot>"
    if len(symbol) != 1:
        return "other"
    if symbol.isalpha():
        return "letter"
    if symbol.isdigit():
        return "digit"
    if symbol == " ":
        return "space"
    if symbol == "\t":
        return "tab"
    if symbol == "\n":
        return "newline"
    if symbol in OPEN:
        return "open bracket"
    if symbol in CLOSE:
        return "close bracket"
    if symbol in "\"'`":
        return "quote"
    if not symbol.isspace() and symbol.isprintable():
        return "punctuation"
    return "other"


def bracket_distances(symbols: Sequence[str]) -> np.ndarray:
    """int64 [T]: at each closing bracket that matches the innermost open one, the distance in
    characters back to it; 0 everywhere else."""
    out = np.zeros(len(symbols), np.int64)
    stack: list[tuple[str, int]] = []
    for t, s in enumerate(symbols):
        if s == "<eot>":
            stack.clear()
        elif s in OPEN:
            stack.append((s, t))
        elif s in CLOSE:
            if stack and OPEN.index(stack[-1][0]) == CLOSE.index(s):
                out[t] = t - stack.pop()[1]
            # a mismatched closer is left out and leaves the stack as it was
    return out


def _group(what: str, by: str, sel: np.ndarray, lstm: np.ndarray, ngram: np.ndarray) -> Group | None:
    n = int(sel.sum())
    if n == 0:
        return None
    a, b = float(lstm[sel].mean()), float(ngram[sel].mean())
    return Group(what, by, n, a, b, a - b, float(np.mean(lstm[sel] < ngram[sel])))


def compare(symbols: Sequence[str], lstm_bits: np.ndarray, ngram_bits: np.ndarray,
            regions: Mapping[str, np.ndarray] | None = None) -> list[Group]:
    """Groups of predictions (see the module docstring), "all" first. symbols: the text's T symbols;
    lstm_bits, ngram_bits: float [T - 1]; regions: name -> bool/0-1 [T] (e.g. "string")."""
    lstm, ngram = np.asarray(lstm_bits, np.float64), np.asarray(ngram_bits, np.float64)
    n = len(symbols) - 1
    if lstm.shape != (n,) or ngram.shape != (n,):
        raise ValueError(f"expected {n} predictions for {len(symbols)} symbols, got {lstm.shape} and {ngram.shape}")
    out = [_group("all", "all", np.ones(n, bool), lstm, ngram)]
    target = np.array([char_class(s) for s in symbols[1:]])
    for c in CLASSES:
        out.append(_group(c, "class", target == c, lstm, ngram))
    for name, on in (regions or {}).items():
        on = np.asarray(on)[:-1] > 0.5
        out.append(_group(f"inside {name}", "region", on, lstm, ngram))
        out.append(_group(f"outside {name}", "region", ~on, lstm, ngram))
    dist = bracket_distances(symbols)[1:]
    edges = list(DISTANCE_BINS) + [np.iinfo(np.int64).max]
    for lo, hi in zip(edges[:-1], edges[1:]):
        label = f"closing bracket {lo}-{hi - 1} back" if hi < edges[-1] else f"closing bracket {lo}+ back"
        out.append(_group(label, "distance", (dist >= lo) & (dist < hi), lstm, ngram))
    return [g for g in out if g is not None]


def format_groups(groups: Sequence[Group], order: int) -> str:
    """The table the atlas prints: one line per group."""
    head = f"{'predictions of':<30} {'count':>7} {'LSTM':>6} {f'{order}-gram':>7} {'diff':>7} {'LSTM better':>11}"
    lines = [head]
    for g in groups:
        lines.append(f"{g.what:<30} {g.count:>7,} {g.lstm:>6.3f} {g.ngram:>7.3f} {g.diff:>+7.3f} {g.lstm_better:>10.0%}")
    return "\n".join(lines)
