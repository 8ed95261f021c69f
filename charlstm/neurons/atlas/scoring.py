"""Scoring every unit against a feature, and against many shifted copies of it, as matrix products.

The atlas scores thousands of units against a dozen features, then each feature again against a
few hundred shifted copies of itself (the chance control). A `UnitMatrix` prepares one set of rows
(a part of the text) once: every unit's column centred and scaled (for Pearson r) and ranked (for
AUROC). After that, every unit's score against a feature is one matrix-vector product, and every
unit's score against S shifted copies is one matrix product [U, n] x [n, S]:

* Pearson r = z' (y - mean y) / |y - mean y|, with z the column centred and scaled to unit norm;
* AUROC = 1/2 + sum over the positives of the centred average ranks / (n1 n0) (Mann-Whitney U:
  (rank sum - n1 (n1 + 1) / 2) / (n1 n0) rewritten with ranks centred at (n + 1) / 2).

Scores follow charlstm.neurons.ranking: a unit's *score* is |r| (continuous) or max(AUROC,
1 - AUROC) (binary); its *raw* value is the signed r or the AUROC. The shifted copies are circular
shifts (np.roll) of the feature along the rows: they keep the feature's own structure (its runs,
its rate) and break only its alignment with the units.

Slow, obvious twins (`raw_scores_slow`, `null_best_slow`) score one column and one shift at a
time with ranking's definitional functions; tests hold the fast forms to them.
Owns: UnitMatrix, shift offsets and the twins. Does not know: models, features or files.
Shapes: n rows (characters), U units (all columns of all traces), S shifts.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from charlstm.errors import CharlstmError
from charlstm.neurons.ranking import auroc_columns_slow, average_ranks, pearson_columns_slow

_CHUNK = 512  # columns converted to float64 at a time for the exact scores


def score_of(raw: np.ndarray | float, kind: str) -> np.ndarray | float:
    """Raw values (r or AUROC) -> scores: |r|, or max(AUROC, 1 - AUROC)."""
    return np.abs(raw) if kind == "continuous" else np.maximum(raw, 1.0 - np.asarray(raw))


def directed(raw: np.ndarray | float, kind: str, direction: int) -> np.ndarray | float:
    """A raw value seen in a unit's direction (+1: rises with the feature): r * direction, or the
    AUROC (direction +1) or 1 - AUROC (-1). The score of a unit whose direction is already fixed,
    e.g. on held-out text: it can fall below chance (0, or 0.5) when the direction flips."""
    if kind == "continuous":
        return np.asarray(raw) * direction
    return np.asarray(raw) if direction > 0 else 1.0 - np.asarray(raw)


def shift_offsets(n: int, count: int, seed: int = 0) -> np.ndarray:
    """`count` circular shifts for n rows, int64 [count], drawn uniformly from [n/20, n - n/20]
    (at least 1), so no shift leaves the feature nearly where it was."""
    if n < 3:
        raise CharlstmError(f"at least 3 characters are needed for shifted controls, got {n}")
    lo = max(1, n // 20)
    return np.random.default_rng(seed).integers(lo, n - lo + 1, size=count).astype(np.int64)


def _shifted(y: np.ndarray, offsets: np.ndarray, dtype=np.float32) -> np.ndarray:
    """[n, S]: column s is np.roll(y, offsets[s])."""
    n = len(y)
    idx = (np.arange(n)[:, None] - offsets[None, :]) % n
    return y.astype(dtype)[idx]


class UnitMatrix:
    """Every unit's values on a set of rows, prepared for scoring.

    traces: {key: [T, H]}; rows: int indices [n] (or bool [T]) of the rows to use; columns: the
    (key, unit) pairs to keep (default every unit of every trace, in trace order)."""

    def __init__(self, traces: Mapping[str, np.ndarray], rows: np.ndarray,
                 columns: Sequence[tuple[str, int]] | None = None):
        rows = np.asarray(rows)
        self.rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)
        if columns is None:
            columns = [(k, u) for k, a in traces.items() for u in range(np.asarray(a).shape[1])]
        self.columns = list(columns)
        self.n, self.size = len(self.rows), len(self.columns)
        x = np.empty((self.n, self.size), np.float32)
        j = 0
        by_key: dict[str, list[int]] = {}
        for k, u in self.columns:
            by_key.setdefault(k, []).append(u)
        self._index: dict[tuple[str, int], int] = {}
        for k, units in by_key.items():  # one gather per trace, not per column
            x[:, j:j + len(units)] = np.asarray(traces[k])[self.rows][:, units]
            for u in units:
                self._index[(k, u)] = j
                j += 1
        self.columns = [c for c in self._index]  # grouped by key, as stored
        self.x = x
        self._z: np.ndarray | None = None
        self._ranks: np.ndarray | None = None

    def column(self, key: str, unit: int) -> int:
        return self._index[(key, unit)]

    @property
    def z(self) -> np.ndarray:
        """[n, U] float32: each column centred, divided by its norm; constant columns all 0."""
        if self._z is None:
            x64 = self.x.astype(np.float64)
            const = x64.max(axis=0) == x64.min(axis=0) if self.n else np.ones(self.size, bool)
            x64 -= x64.mean(axis=0) if self.n else 0.0
            norm = np.sqrt(np.einsum("tu,tu->u", x64, x64))
            ok = ~const & (norm > 0)
            x64[:, ok] /= norm[ok]
            x64[:, ~ok] = 0.0
            self._z = x64.astype(np.float32)
        return self._z

    @property
    def ranks(self) -> np.ndarray:
        """[n, U] float32: each column's average ranks minus (n + 1) / 2 (ties share a rank)."""
        if self._ranks is None:
            out = np.empty((self.n, self.size), np.float32)
            for a in range(0, self.size, 256):
                out[:, a:a + 256] = (average_ranks(self.x[:, a:a + 256]) - (self.n + 1) / 2.0).T
            self._ranks = out
        return self._ranks

    def raw(self, y: np.ndarray, kind: str) -> np.ndarray:
        """float64 [U]: every column's Pearson r with y (continuous) or AUROC for y (binary), y [n]
        given on these rows. A constant y gives 0 (r) or 0.5 (AUROC) everywhere."""
        y = self._check(y, kind)
        m = self.z if kind == "continuous" else self.ranks
        v, scale, base = self._target(y, kind)
        out = np.full(self.size, base)
        if scale == 0.0:
            return out
        for a in range(0, self.size, _CHUNK):
            out[a:a + _CHUNK] = base + (m[:, a:a + _CHUNK].astype(np.float64).T @ v) / scale
        return np.clip(out, -1.0, 1.0) if kind == "continuous" else out

    def null_best(self, y: np.ndarray, kind: str, offsets: np.ndarray) -> np.ndarray:
        """float64 [S]: for each circular shift of y, the best score of any column (the chance
        control of a feature's best unit). One float32 matrix product per block of shifts."""
        y = self._check(y, kind)
        m = self.z if kind == "continuous" else self.ranks
        v, scale, base = self._target(y, kind)
        offsets = np.asarray(offsets, dtype=np.int64)
        out = np.zeros(len(offsets)) if kind == "continuous" else np.full(len(offsets), 0.5)
        if scale == 0.0:
            return out
        for a in range(0, len(offsets), 64):
            vs = _shifted(v, offsets[a:a + 64])  # [n, s]
            raw = base + (m.T @ vs).astype(np.float64) / scale  # [U, s]
            out[a:a + 64] = score_of(raw, kind).max(axis=0)
        return out

    def _check(self, y: np.ndarray, kind: str) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64).ravel()
        if len(y) != self.n:
            raise CharlstmError(f"the feature has {len(y)} values for {self.n} rows")
        if kind not in ("binary", "continuous"):
            raise CharlstmError(f"kind must be 'binary' or 'continuous', not {kind!r}")
        return y

    @staticmethod
    def _target(y: np.ndarray, kind: str) -> tuple[np.ndarray, float, float]:
        """(vector to multiply by, divisor, offset): r = z'v / |v|; AUROC = 0.5 + ranks'pos / (n1 n0)."""
        if kind == "continuous":
            v = y - y.mean()
            return v, float(np.sqrt(v @ v)), 0.0
        pos = (y > 0.5).astype(np.float64)
        n1 = float(pos.sum())
        return pos, n1 * (len(y) - n1), 0.5


# ----------------------------------------------------------------------------------------------
# Slow twins


def raw_scores_slow(x: np.ndarray, y: np.ndarray, kind: str) -> np.ndarray:
    """The definitional twin of UnitMatrix.raw: x [n, U] -> [U] with ranking's slow functions."""
    return pearson_columns_slow(x, y) if kind == "continuous" else auroc_columns_slow(x, y > 0.5)


def null_best_slow(x: np.ndarray, y: np.ndarray, kind: str, offsets: np.ndarray) -> np.ndarray:
    """The twin of UnitMatrix.null_best: one shift at a time, np.roll and every column scored."""
    return np.array([float(np.max(score_of(raw_scores_slow(x, np.roll(np.asarray(y, np.float64), int(k)), kind),
                                           kind))) for k in offsets])


def p_value(observed: float, null: np.ndarray) -> float:
    """(1 + #controls at least as good) / (1 + #controls): never 0, 1 / (S + 1) at best."""
    null = np.asarray(null)
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + len(null)))
