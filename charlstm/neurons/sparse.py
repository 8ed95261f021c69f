"""Scoring sparse codes against features: a dictionary's features (charlstm.dictionary) ranked like
units, without ever building the dense [T, F] array.

A sparse code is (values [T, k], indices [T, k]): at step t, feature indices[t, j] has activation
values[t, j] and every other feature is 0 (a value of 0 in the code counts as not active). Scores
are those of charlstm.neurons.ranking on the dense columns, computed from the non-zero entries
alone: Pearson r from sums over them, and AUROC from their ranks, with the zeros of a column one
block of tied ranks between its negative and its positive values. Many features are scored at once
(values [T, M]), for the dashboard's labels. The dense functions of charlstm.neurons.ranking
(`pearson_columns`, `auroc_columns`) are the slow twins the tests hold these to.

Owns: `score_sparse`, `rank_sparse`. Does not know: dictionaries or files.
"""
from __future__ import annotations

import numpy as np

from charlstm.errors import CharlstmError
from charlstm.neurons.ranking import UnitScore, check_inputs


def _entries(values: np.ndarray, indices: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Non-zero entries sorted by (feature, value) -> (rows, features, values float64, segment starts [width + 1])."""
    v = np.asarray(values, dtype=np.float64)
    i = np.asarray(indices, dtype=np.int64)
    if v.shape != i.shape or v.ndim != 2:
        raise CharlstmError(f"a sparse code is values and indices of one shape [T, k], got {v.shape} and {i.shape}")
    if i.size and (i.min() < 0 or i.max() >= width):
        raise CharlstmError(f"feature index outside 0..{width - 1}")
    rows = np.repeat(np.arange(v.shape[0]), v.shape[1])
    v, i = v.reshape(-1), i.reshape(-1)
    keep = v != 0
    rows, v, i = rows[keep], v[keep], i[keep]
    order = np.lexsort((v, i))
    rows, v, i = rows[order], v[order], i[order]
    starts = np.searchsorted(i, np.arange(width + 1))
    return rows, i, v, starts


def _segment_sum(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum of x over each segment [starts[f], starts[f+1]) -> [width] (empty segments give 0)."""
    c = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    return c[starts[1:]] - c[starts[:-1]]


def score_sparse(values: np.ndarray, indices: np.ndarray, width: int, targets: np.ndarray,
                 kinds: list[str]) -> np.ndarray:
    """Every feature of a sparse code against M targets -> float64 [width, M]: Pearson r where
    kinds[m] == "continuous", AUROC where "binary" (0.5 for a constant column or a one-class target,
    0 r for a constant one), exactly as pearson_columns / auroc_columns on the dense columns.
    targets: [T] or [T, M]."""
    y = np.asarray(targets, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    T = np.asarray(values).shape[0]
    if y.shape[0] != T or len(kinds) != y.shape[1]:
        raise CharlstmError(f"targets must be [T={T}, M] with M kinds, got {y.shape} and {len(kinds)} kinds")
    rows, feat, v, starts = _entries(values, indices, width)
    out = np.zeros((width, y.shape[1]))
    m_f = np.diff(starts)  # non-zeros per feature
    zeros = T - m_f
    # ranks of the non-zero entries within their column (1-based, ties averaged): negative values
    # first, then the block of zeros, then the positive values
    pos_in = np.arange(len(v)) - np.repeat(starts[:-1], m_f)  # 0-based position in the segment
    new = np.ones(len(v), dtype=bool)
    new[1:] = (v[1:] != v[:-1]) | (feat[1:] != feat[:-1])
    grp = np.cumsum(new) - 1
    first = np.zeros(grp[-1] + 1 if len(grp) else 0, dtype=np.int64)
    last = np.zeros_like(first)
    np.maximum.at(last, grp, pos_in) if len(grp) else None
    first[:] = np.iinfo(np.int64).max
    np.minimum.at(first, grp, pos_in) if len(grp) else None
    rank = (first[grp] + last[grp]) / 2.0 + 1.0 + np.where(v > 0, np.repeat(zeros, m_f), 0)
    n_neg = _segment_sum((v < 0).astype(np.float64), starts)
    zero_rank = n_neg + (zeros + 1) / 2.0
    sa, saa = _segment_sum(v, starts), _segment_sum(v * v, starts)
    for j, kind in enumerate(kinds):
        yj = y[:, j]
        ye = yj[rows]
        if kind == "binary":
            pos = yj > 0.5
            n1 = int(pos.sum())
            n0 = T - n1
            if n1 == 0 or n0 == 0:
                out[:, j] = 0.5
                continue
            pe = (ye > 0.5).astype(np.float64)
            r1 = _segment_sum(rank * pe, starts) + zero_rank * (n1 - _segment_sum(pe, starts))
            auc = (r1 - n1 * (n1 + 1) / 2.0) / (n1 * n0)
            out[:, j] = np.where(m_f > 0, auc, 0.5)
        elif kind == "continuous":
            sy, syy = yj.sum(), (yj * yj).sum()
            vy = syy - sy * sy / T
            sxy = _segment_sum(v * ye, starts)
            vx = saa - sa * sa / T
            with np.errstate(invalid="ignore", divide="ignore"):
                r = (sxy - sa * sy / T) / np.sqrt(vx * vy)
            const = (m_f == 0) | ((m_f == T) & (vx <= 1e-12 * np.maximum(saa, 1e-300)))
            out[:, j] = np.where(const | ~np.isfinite(r) | (vy <= 0), 0.0, np.clip(r, -1, 1))
        else:
            raise CharlstmError(f"kind must be 'binary' or 'continuous', not {kind!r}")
    return out


def rank_sparse(key: str, values: np.ndarray, indices: np.ndarray, width: int, targets: np.ndarray,
                kind: str = "auto", top: int | None = 20, mask: np.ndarray | None = None) -> list[UnitScore]:
    """A dictionary's features ranked against one feature, as UnitScores named key:feature, best
    first (the rules and checks of charlstm.neurons.ranking.rank_units)."""
    items, y, kind = check_inputs({key: np.asarray(values)}, targets, kind, mask)
    vals_m = items[0][1]
    idx = np.asarray(indices)[mask] if mask is not None else np.asarray(indices)
    s = score_sparse(vals_m, idx, width, y, [kind])[:, 0]
    score = np.abs(s) if kind == "continuous" else np.maximum(s, 1.0 - s)
    order = np.argsort(-score, kind="stable")
    if top is not None:
        order = order[:max(int(top), 0)]
    if kind == "continuous":
        return [UnitScore(key, int(f), float(score[f]), r=float(s[f])) for f in order]
    return [UnitScore(key, int(f), float(score[f]), auroc=float(s[f])) for f in order]
