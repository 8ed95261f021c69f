"""charlstm.neurons.sparse: scores of sparse codes equal the dense twins (pearson_columns,
auroc_columns) on the same columns, ties, negatives and explicit zeros included."""
from __future__ import annotations

import numpy as np
import pytest

from charlstm.errors import CharlstmError
from charlstm.neurons.ranking import auroc_columns, pearson_columns, rank_units
from charlstm.neurons.sparse import rank_sparse, score_sparse


def _code(seed: int, T=300, k=3, F=12, signed=True):
    rng = np.random.default_rng(seed)
    idx = np.stack([rng.choice(F, k, replace=False) for _ in range(T)]).astype(np.int32)
    idx[rng.random(T) < 0.5, 0] = F - 1  # one frequent feature
    for t in range(T):
        if len(set(idx[t])) < k:
            idx[t] = rng.choice(F - 1, k, replace=False)
    vals = np.round(rng.normal(size=(T, k)), 1).astype(np.float32)  # ties
    if not signed:
        vals = np.abs(vals)
    vals[rng.random((T, k)) < 0.2] = 0.0  # selected but zero: not active
    dense = np.zeros((T, F), np.float32)
    np.put_along_axis(dense, idx.astype(np.int64), vals, axis=1)
    return vals, idx, dense, rng


@pytest.mark.parametrize("seed, signed", [(0, True), (1, False), (2, True)])
def test_sparse_scores_equal_the_dense_twins(seed, signed):
    vals, idx, dense, rng = _code(seed, signed=signed)
    T, F = dense.shape
    yb = (rng.random(T) < 0.3).astype(np.float64)
    yc = rng.normal(size=T)
    s = score_sparse(vals, idx, F, np.stack([yb, yc], 1), ["binary", "continuous"])
    assert np.allclose(s[:, 0], auroc_columns(dense, yb), atol=1e-12)
    assert np.allclose(s[:, 1], pearson_columns(dense, yc), atol=1e-12)
    assert dense[:, 3].any() and not np.allclose(s[:, 0], 0.5)  # the test is not vacuous


def test_rank_sparse_ranks_like_rank_units():
    vals, idx, dense, rng = _code(3)
    y = dense[:, 5] * 2 + rng.normal(size=len(dense)) * 0.1
    mask = np.arange(len(y)) >= 20
    a = rank_sparse("dict", vals, idx, dense.shape[1], y, top=4, mask=mask)
    b = rank_units({"dict": dense}, y, top=4, mask=mask)
    assert [(u.name, round(u.score, 9)) for u in a] == [(u.name, round(u.score, 9)) for u in b]
    assert a[0].name == "dict:5" and a[0].r > 0.9
    yb = (y > 0.5).astype(float)
    a = rank_sparse("dict/x", vals, idx, dense.shape[1], yb, top=3)
    b = rank_units({"dict/x": dense}, yb, top=3)
    assert [(u.name, round(u.auroc, 9)) for u in a] == [(u.name, round(u.auroc, 9)) for u in b]


def test_bad_sparse_codes_are_refused():
    with pytest.raises(CharlstmError, match="one shape"):
        score_sparse(np.zeros((3, 2)), np.zeros((3, 1), np.int32), 4, np.zeros(3), ["continuous"])
    with pytest.raises(CharlstmError, match="outside 0..3"):
        score_sparse(np.ones((3, 1)), np.full((3, 1), 4), 4, np.zeros(3), ["continuous"])
    with pytest.raises(CharlstmError, match="constant"):
        rank_sparse("dict", np.ones((3, 1)), np.zeros((3, 1), np.int32), 4, np.zeros(3))
