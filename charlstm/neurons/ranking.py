"""Ranking units against a feature: which neurons track it. Pure numpy, independent of any model.

Owns the scoring of every unit of every trace against per-character feature values (`rank_units`:
|Pearson r| for continuous features, AUROC for binary ones) and the overview that ranks units by
variance or gate saturation (`unit_overview`). Does not know: models, features or files.

Traces are a dict of float arrays keyed like ``"layer0.h"``, ``"layer1.c"``, ``"layer0.f"``, each
shaped [T characters, units], row t aligned with character t of the text (see
charlstm.neurons.features). The scoring functions come in fast vectorised form (`pearson_columns`,
`auroc_columns`) and a slow, obvious twin (`pearson_columns_slow`, `auroc_columns_slow`) that the
tests hold them to.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Mapping

import numpy as np

from charlstm.errors import CharlstmError
from charlstm.units import gate_saturation, is_gate

__all__ = [
    "UnitScore", "UnitStat", "rank_units", "unit_overview", "infer_kind", "check_inputs",
    "pearson_columns", "pearson_columns_slow", "auroc_columns", "auroc_columns_slow", "average_ranks",
]

Kind = Literal["binary", "continuous"]
# Columns scored at once: bounds the float64 temporaries to T x _CHUNK (the AUROC ranks need a few).
_CHUNK = 256


# ----------------------------------------------------------------------------------------------
# Scoring functions: fast and slow twins


def pearson_columns(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of every column of x [T, U] with y [T] -> float64 [U], vectorised over columns.
    Constant columns (and a constant y) give 0, never NaN."""
    x = _as_2d(x, "x")
    y = np.asarray(y, dtype=np.float64).ravel()
    out = np.zeros(x.shape[1], dtype=np.float64)
    yc = y - y.mean()
    ny = math.sqrt(float(yc @ yc))
    if x.shape[0] < 2 or ny == 0.0 or np.ptp(y) == 0:
        return out
    for a in range(0, x.shape[1], _CHUNK):
        xc = x[:, a:a + _CHUNK].astype(np.float64)
        # Exact constancy test first: the float mean of equal values can leave 1e-17 residues that
        # would otherwise turn a constant column into a spurious, noisy r.
        const = xc.max(axis=0) == xc.min(axis=0)
        xc -= xc.mean(axis=0)
        nx = np.sqrt(np.einsum("tu,tu->u", xc, xc))
        num = xc.T @ yc
        ok = ~const & (nx > 0)
        out[a:a + _CHUNK][ok] = num[ok] / (nx[ok] * ny)
    return np.clip(out, -1.0, 1.0)


def pearson_columns_slow(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The textbook twin of `pearson_columns`: one column at a time, sum of products of deviations
    over the square root of the product of sums of squares; 0 when either side is constant."""
    x = _as_2d(x, "x")
    y = np.asarray(y, dtype=np.float64).ravel()
    out = np.zeros(x.shape[1])
    for u in range(x.shape[1]):
        col = x[:, u].astype(np.float64)
        if len(col) < 2 or col.max() == col.min() or y.max() == y.min():
            continue
        dx, dy = col - col.mean(), y - y.mean()
        out[u] = float(np.sum(dx * dy) / math.sqrt(float(np.sum(dx * dx)) * float(np.sum(dy * dy))))
    return out


def average_ranks(x: np.ndarray) -> np.ndarray:
    """The 1-based rank of every value within its column, ties sharing their average rank.
    x: [T, k] -> float64 [k, T] (transposed: one contiguous row per column)."""
    # Work on [k, T] rows: sorting and running along contiguous memory is ~3x faster than down
    # the columns of a row-major array. Ties get the same average rank, so any sort order will do.
    xt = np.ascontiguousarray(np.asarray(x).T)
    k, t = xt.shape
    order = np.argsort(xt, axis=1)
    xs = np.take_along_axis(xt, order, axis=1)
    idx = np.arange(t)
    starts = np.ones((k, t + 1), dtype=bool)  # True where a new run of equal values starts
    starts[:, 1:t] = xs[:, 1:] != xs[:, :-1]
    # First and last sorted position of each element's run of ties: running max of run starts,
    # reversed running min of run ends.
    first = np.maximum.accumulate(np.where(starts[:, :t], idx, 0), axis=1)
    last = np.minimum.accumulate(np.where(starts[:, 1:], idx, t)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((k, t), dtype=np.float64)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    return ranks


def _rank_sums(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Sum over the positive rows of each column's ranks (1-based; ties share their average rank).
    x: [T, k]; pos: bool [T] -> float64 [k]."""
    return average_ranks(x) @ pos.astype(np.float64)


def auroc_columns(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """AUROC of every column of x [T, U] as a score for the binary labels y [T] -> float64 [U]:
    the probability that a positive character's value exceeds a negative one's, ties counting half
    (Mann-Whitney U over average ranks, vectorised over columns). 0.5 for constant columns, and for
    every column when y has a single class."""
    x = _as_2d(x, "x")
    pos = np.asarray(y).ravel().astype(bool)
    n1 = int(pos.sum())
    n0 = len(pos) - n1
    out = np.full(x.shape[1], 0.5)
    if n1 == 0 or n0 == 0:
        return out
    for a in range(0, x.shape[1], _CHUNK):
        rank_sum = _rank_sums(x[:, a:a + _CHUNK], pos)
        out[a:a + _CHUNK] = (rank_sum - n1 * (n1 + 1) / 2.0) / (n1 * n0)
    return out


def auroc_columns_slow(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The definitional twin of `auroc_columns`: per column, compare every (positive, negative) pair;
    P(pos > neg) + 0.5 P(pos == neg). O(n1 * n0) per column: for tests only."""
    x = _as_2d(x, "x")
    pos = np.asarray(y).ravel().astype(bool)
    out = np.full(x.shape[1], 0.5)
    if pos.all() or not pos.any():
        return out
    for u in range(x.shape[1]):
        p, n = x[pos, u][:, None], x[~pos, u][None, :]
        out[u] = ((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size)
    return out


def infer_kind(values: np.ndarray) -> Kind:
    """"binary" when every value is 0 or 1, else "continuous"."""
    v = np.asarray(values)
    return "binary" if v.size and np.isin(v, (0, 1)).all() else "continuous"


# ----------------------------------------------------------------------------------------------
# Input checking


def _as_2d(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise CharlstmError(f"{what} must be 2-D [characters, units], got shape {x.shape}")
    return x


def check_inputs(traces: Mapping[str, np.ndarray], values: np.ndarray, kind: str,
             mask: np.ndarray | None) -> tuple[list[tuple[str, np.ndarray]], np.ndarray, Kind]:
    """Validate and apply the mask: ([(key, [T', U])], values [T'], kind). Raises CharlstmError for
    mismatched lengths, non-finite values or a feature that does not vary."""
    if not traces:
        raise CharlstmError("no traces to rank: the trace dict is empty")
    y = np.asarray(values, dtype=np.float64).ravel()
    t = len(y)
    if not np.isfinite(y).all():
        raise CharlstmError("feature values contain NaN or infinity")
    if mask is not None:
        mask = np.asarray(mask).ravel()
        if mask.dtype != bool or len(mask) != t:
            raise CharlstmError(f"mask must be a boolean array of {t} values (one per character), got "
                                f"{mask.dtype} of length {len(mask)}")
        y = y[mask]
    if kind == "auto":
        kind = infer_kind(y)
    if kind not in ("binary", "continuous"):
        raise CharlstmError(f"kind must be 'binary', 'continuous' or 'auto', not {kind!r}")
    if kind == "binary" and not np.isin(y, (0, 1)).all():
        raise CharlstmError("a binary feature must be 0/1; use kind='continuous' for other values")
    if len(y) < 2 or y.max() == y.min():
        raise CharlstmError(f"the feature is constant ({y[0] if len(y) else 'no characters'}) on this text, so no "
                            f"unit can track it; use a text where it varies (e.g. one with quotes for double-quote)")
    items = []
    for key, arr in traces.items():
        arr = np.asarray(arr)
        if arr.ndim != 2:
            raise CharlstmError(f"trace {key!r} must be 2-D [characters, units], got shape {arr.shape}")
        if arr.shape[0] != t:
            raise CharlstmError(f"trace {key!r} has {arr.shape[0]} rows but the feature has {t} values; "
                                f"traces and text must be aligned one row per character")
        if not np.issubdtype(arr.dtype, np.number):
            raise CharlstmError(f"trace {key!r} has dtype {arr.dtype}; expected floats")
        if mask is not None:
            arr = arr[mask]
        if not np.isfinite(arr).all():
            raise CharlstmError(f"trace {key!r} contains NaN or infinite values")
        items.append((key, arr))
    return items, y, kind


# ----------------------------------------------------------------------------------------------
# Ranking


@dataclass(frozen=True)
class UnitScore:
    """How well one unit tracks a feature.

    score: |r| (continuous) or max(AUROC, 1 - AUROC) (binary); 0 for a constant unit with a
        continuous feature, 0.5 (chance) with a binary one.
    r: signed Pearson r (continuous features), else None.
    auroc: AUROC (binary features; > 0.5 means the unit is higher on the feature's 1s), else None.
    """

    key: str
    unit: int
    score: float
    r: float | None = None
    auroc: float | None = None

    @property
    def name(self) -> str:
        """The unit spec, e.g. ``"layer1.c:37"`` (what `parse_unit_spec` reads)."""
        return f"{self.key}:{self.unit}"

    @property
    def direction(self) -> int:
        """+1 if the unit rises with the feature, -1 if it falls."""
        if self.r is not None:
            return 1 if self.r >= 0 else -1
        return 1 if (self.auroc is None or self.auroc >= 0.5) else -1


def rank_units(traces: Mapping[str, np.ndarray], values: np.ndarray, kind: str = "auto",
               top: int | None = 20, mask: np.ndarray | None = None) -> list[UnitScore]:
    """Score every unit of every trace against a feature and return the best, best first.

    traces: {key: [T, units]}; values: [T] feature values (charlstm.neurons.features.compute);
    kind: "binary" (AUROC), "continuous" (Pearson r) or "auto" (binary iff all values are 0/1);
    top: how many to return (None: all); mask: optional bool [T], the characters to score on
    (e.g. to skip a warm-up prefix). Ties are broken by trace order, then unit index.
    Raises CharlstmError for misaligned inputs or a feature constant on the (masked) text.
    """
    items, y, kind = check_inputs(traces, values, kind, mask)
    results: list[UnitScore] = []
    scores: list[np.ndarray] = []
    for key, arr in items:
        if kind == "continuous":
            r = pearson_columns(arr, y)
            scores.append(np.abs(r))
            results.extend(UnitScore(key, u, float(abs(v)), r=float(v)) for u, v in enumerate(r))
        else:
            auc = auroc_columns(arr, y)
            s = np.maximum(auc, 1.0 - auc)
            scores.append(s)
            results.extend(UnitScore(key, u, float(s[u]), auroc=float(v)) for u, v in enumerate(auc))
    all_scores = np.concatenate(scores)
    order = np.argsort(-all_scores, kind="stable")  # stable: ties keep trace order, then unit order
    if top is not None:
        order = order[:max(int(top), 0)]
    return [results[i] for i in order]


@dataclass(frozen=True)
class UnitStat:
    """One unit in an overview. score: what it is ranked by (variance, or the saturated fraction
    left + right); left/right: saturated fractions (gates only, else None)."""

    key: str
    unit: int
    score: float
    mean: float
    std: float
    left: float | None = None
    right: float | None = None

    @property
    def name(self) -> str:
        return f"{self.key}:{self.unit}"


def unit_overview(traces: Mapping[str, np.ndarray], by: str = "variance", top: int | None = None,
                  low: float = 0.1, high: float = 0.9) -> list[UnitStat]:
    """Every unit ranked for a viewer's overview, highest score first.

    by="variance": all traces, by variance over the text (the most active units first).
    by="saturation": gate traces only (keys ending .i .f .o .r .z), by the fraction of time the gate
    is saturated (< low or > high) — the units that act as switches first.
    """
    if by not in ("variance", "saturation"):
        raise CharlstmError(f"by must be 'variance' or 'saturation', not {by!r}")
    keys = [k for k in traces if by == "variance" or is_gate(k)]
    if not keys:
        raise CharlstmError("no gate traces (keys ending .i .f .o .r .z) to rank by saturation; "
                            "an RNN has none — use by='variance'")
    stats: list[UnitStat] = []
    for key in keys:
        arr = _as_2d(traces[key], f"trace {key!r}")
        mean = arr.mean(axis=0, dtype=np.float64) if len(arr) else np.zeros(arr.shape[1])
        std = arr.std(axis=0, dtype=np.float64) if len(arr) else np.zeros(arr.shape[1])
        if is_gate(key):
            left, right = gate_saturation(arr, low, high)
        for u in range(arr.shape[1]):
            lr = (float(left[u]), float(right[u])) if is_gate(key) else (None, None)
            score = std[u] ** 2 if by == "variance" else lr[0] + lr[1]
            stats.append(UnitStat(key, u, float(score), float(mean[u]), float(std[u]), *lr))
    order = sorted(range(len(stats)), key=lambda i: -stats[i].score)  # sorted() is stable
    if top is not None:
        order = order[:max(int(top), 0)]
    return [stats[i] for i in order]


