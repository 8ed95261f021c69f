"""Naming features after the feature library: each dictionary feature's best match among the named
features of charlstm.neurons.features (comment, string, indentation, bracket depths, ...) plus, for
the most frequent characters X of the text, char:X (X was just read) and next:X (X comes next).

Scores are the units' scores (charlstm.neurons.ranking): max(AUROC, 1 - AUROC) for a binary
feature, |Pearson r| for a continuous one, computed from the sparse code (charlstm.neurons.sparse).
A feature is labelled with its best match when that scores at least LABEL_BINARY (0.9) or
LABEL_CONTINUOUS (0.7), else it is "unlabelled" (the best match is still shown, greyed).

Owns: the candidate library and the label rule. Does not know: files or pages.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from charlstm.errors import CharlstmError
from charlstm.neurons.features import FEATURES, compute, get_feature
from charlstm.neurons.ranking import infer_kind
from charlstm.neurons.sparse import score_sparse

LABEL_BINARY = 0.9
LABEL_CONTINUOUS = 0.7
_ESC = {"\n": "\\n", "\t": "\\t", "\r": "\\r", " ": "\\s", "\\": "\\\\", "-": "\\-"}


@dataclass
class Candidate:
    """One library feature on the text: name, kind ("binary" | "continuous"), values float32 [T]."""

    name: str
    kind: str
    values: np.ndarray


def library(symbols: list[str], chars: int = 16, named: bool = True) -> list[Candidate]:
    """The candidates that vary on the text: the named library features (named=True) and char:X,
    next:X for its `chars` most frequent characters."""
    out: list[Candidate] = []
    names = list(FEATURES) if named else []
    common = [c for c, _ in Counter(s for s in symbols if len(s) == 1).most_common(chars)]
    for c in common:
        x = _ESC.get(c, c)
        names += [f"char:{x}", f"next:{x}"]
    for n in names:
        try:
            feat = get_feature(n)
        except CharlstmError:
            continue
        v = compute(feat, symbols)
        if len(v) < 2 or v.max() == v.min():
            continue
        out.append(Candidate(n, feat.kind if feat.kind != "auto" else infer_kind(v), v))
    return out


def scores(values: np.ndarray, indices: np.ndarray, width: int, cands: list[Candidate]) -> np.ndarray:
    """Every feature against every candidate -> float64 [width, M]: max(AUROC, 1 - AUROC) or |r|."""
    if not cands:
        return np.zeros((width, 0))
    kinds = [c.kind for c in cands]
    s = score_sparse(values, indices, width, np.stack([c.values for c in cands], 1), kinds)
    for j, kind in enumerate(kinds):
        s[:, j] = np.maximum(s[:, j], 1 - s[:, j]) if kind == "binary" else np.abs(s[:, j])
    return s


def threshold(kind: str) -> float:
    return LABEL_BINARY if kind == "binary" else LABEL_CONTINUOUS


def best(s: np.ndarray, cands: list[Candidate], top: int = 3) -> list[list[tuple[str, float, bool]]]:
    """Per feature its `top` best candidates: (name, score, passes the label threshold)."""
    out = []
    for row in s:
        order = np.argsort(-row, kind="stable")[:top]
        out.append([(cands[j].name, float(row[j]), bool(row[j] >= threshold(cands[j].kind))) for j in order])
    return out
