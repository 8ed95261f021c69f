"""Ranking units against features: fast scorers vs their slow twins, planted units, the L1 probe,
gate saturation, overviews and unit specs."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from charlstm.errors import CharlstmError
from charlstm.neurons.ranking import (
    UnitScore, auroc_columns, auroc_columns_slow, infer_kind, pearson_columns, pearson_columns_slow, rank_units,
    unit_overview,
)


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    # "no NaNs or warnings": a divide-by-zero on a constant unit must fail the test, not just warn.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def random_matrix(rng: np.random.Generator, t: int = 300, u: int = 40) -> np.ndarray:
    """Random float32 [t, u] with the awkward cases: constant columns, heavy ties, a column made of
    two values, a constant-except-one column."""
    x = rng.normal(size=(t, u)).astype(np.float32)
    x[:, 0] = 0.0
    x[:, 1] = 3.25
    x[:, 2] = np.round(x[:, 2])
    x[:, 3] = np.round(x[:, 3] * 0.2)
    x[:, 4] = rng.random(t) < 0.5
    x[:, 5] = 0.0
    x[7, 5] = 1.0
    return x


# ---- fast vs slow twins ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pearson_fast_matches_slow(seed):
    rng = np.random.default_rng(seed)
    x = random_matrix(rng)
    for y in (rng.normal(size=300), np.round(rng.normal(size=300)), (rng.random(300) < 0.1).astype(float)):
        np.testing.assert_allclose(pearson_columns(x, y), pearson_columns_slow(x, y), atol=1e-6, rtol=0)
    assert pearson_columns(x, y)[0] == 0.0 and pearson_columns(x, y)[1] == 0.0  # constant columns


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_fast_matches_pairwise_definition(seed):
    rng = np.random.default_rng(seed)
    x = random_matrix(rng)
    for rate in (0.5, 0.1, 1 / 300):
        y = rng.random(300) < rate
        y[0] = True  # at least one of each class
        y[1] = False
        np.testing.assert_allclose(auroc_columns(x, y), auroc_columns_slow(x, y), atol=1e-6, rtol=0)


def test_auroc_of_ties_and_constant_units_is_one_half():
    y = np.array([1, 0, 1, 0, 0, 1], dtype=bool)
    x = np.zeros((6, 3), dtype=np.float32)
    x[:, 1] = 7.0
    x[:, 2] = [1, 1, 2, 2, 3, 3]  # every (positive, negative) pair: 1 win, 1 loss, per tie level...
    auc = auroc_columns(x, y)
    assert auc[0] == 0.5 and auc[1] == 0.5
    assert auc[2] == pytest.approx(auroc_columns_slow(x, y)[2])
    assert auroc_columns(x, np.ones(6, dtype=bool)).tolist() == [0.5, 0.5, 0.5]  # one class: undefined


def test_auroc_known_values():
    y = np.array([0, 0, 1, 1], dtype=bool)
    x = np.array([[1, 4, 1], [2, 3, 2], [3, 2, 2], [4, 1, 5]], dtype=np.float32)
    # perfect; perfectly reversed; positives {2,5} vs negatives {1,2}: (1 + .5 + 1 + 1) / 4
    assert auroc_columns(x, y).tolist() == [1.0, 0.0, 0.875]


# ---- rank_units ---------------------------------------------------------------------------------------


def planted_traces(rng, t=2000):
    traces = {"layer0.h": rng.normal(size=(t, 64)).astype(np.float32),
              "layer1.c": rng.normal(size=(t, 64)).astype(np.float32)}
    traces["layer1.c"][:, 5] = 0.0  # a dead unit
    return traces


def test_planted_unit_ranks_first_for_a_binary_feature():
    rng = np.random.default_rng(0)
    traces = planted_traces(rng)
    feature = (rng.random(2000) < 0.2).astype(np.float32)
    traces["layer1.c"][:, 37] = -feature * 3 + 0.3 * rng.normal(size=2000)  # falls on the feature
    ranked = rank_units(traces, feature, "binary", top=5)
    best = ranked[0]
    assert isinstance(best, UnitScore) and best.name == "layer1.c:37" and best.key == "layer1.c" and best.unit == 37
    assert best.score > 0.99 and best.auroc < 0.01 and best.direction == -1 and best.r is None
    assert ranked[1].score < 0.6
    assert [u.score for u in ranked] == sorted((u.score for u in ranked), reverse=True)


def test_planted_unit_ranks_first_for_a_continuous_feature():
    rng = np.random.default_rng(1)
    traces = planted_traces(rng)
    feature = np.cumsum(rng.normal(size=2000)).astype(np.float32)  # an indentation-like slow signal
    traces["layer0.h"][:, 12] = feature + 0.1 * feature.std() * rng.normal(size=2000)
    ranked = rank_units(traces, feature, "continuous", top=3)
    assert ranked[0].name == "layer0.h:12" and ranked[0].score > 0.99 and ranked[0].r > 0.99
    assert ranked[0].direction == 1 and ranked[0].auroc is None
    assert len(rank_units(traces, feature, top=None)) == 128
    dead = [u for u in rank_units(traces, feature, top=None) if u.name == "layer1.c:5"][0]
    assert dead.score == 0.0 and dead.r == 0.0  # constant unit: 0, no NaN


def test_rank_units_kind_auto_mask_and_ties():
    rng = np.random.default_rng(2)
    traces = planted_traces(rng, t=400)
    feature = (np.arange(400) % 7 == 0).astype(np.float32)
    traces["layer0.h"][:, 3] = feature
    assert infer_kind(feature) == "binary" and infer_kind(feature * 2) == "continuous"
    assert rank_units(traces, feature, top=1)[0].auroc == 1.0  # auto picked AUROC
    # With the mask hiding every positive but one the planted unit still wins; the rest score 0.5.
    mask = np.arange(400) < 10
    ranked = rank_units(traces, feature, "binary", top=None, mask=mask)
    assert ranked[0].name == "layer0.h:3" and ranked[0].score == 1.0
    dead = [u for u in ranked if u.name == "layer1.c:5"][0]
    assert dead.auroc == 0.5 and dead.score == 0.5
    # Equal scores keep trace order then unit order.
    same = {"a.h": np.zeros((4, 2), np.float32), "b.h": np.zeros((4, 1), np.float32)}
    assert [u.name for u in rank_units(same, np.array([0, 1, 0, 1.0]), top=None)] == ["a.h:0", "a.h:1", "b.h:0"]


@pytest.mark.parametrize("traces, values, kwargs, message", [
    ({"l.h": np.zeros((5, 2))}, np.zeros(5), {}, "constant"),
    ({"l.h": np.zeros((5, 2))}, np.arange(4.0), {}, "has 5 rows but the feature has 4 values"),
    ({"l.h": np.zeros(5)}, np.arange(5.0), {}, "2-D"),
    ({"l.h": np.full((3, 1), np.nan)}, np.arange(3.0), {}, "NaN"),
    ({"l.h": np.zeros((3, 1))}, np.array([0, 1, np.nan]), {}, "NaN"),
    ({"l.h": np.zeros((3, 1))}, np.array([0, 2, 1.0]), {"kind": "binary"}, "0/1"),
    ({"l.h": np.zeros((3, 1))}, np.array([0, 2, 1.0]), {"kind": "ordinal"}, "kind must be"),
    ({"l.h": np.zeros((3, 1))}, np.array([0, 2, 1.0]), {"mask": np.ones(2, bool)}, "mask must be"),
    ({}, np.arange(3.0), {}, "empty"),
])
def test_rank_units_errors(traces, values, kwargs, message):
    with pytest.raises(CharlstmError, match=message):
        rank_units(traces, values, **kwargs)




# ---- saturation and overview ---------------------------------------------------------------------------


def test_unit_overview_by_variance_and_saturation():
    traces = {"layer0.h": np.array([[0.0, 1.0], [0.0, -1.0], [0.0, 1.0], [0.0, -1.0]]),
              "layer0.f": np.array([[0.0, 0.5], [1.0, 0.5], [0.05, 0.95], [0.97, 0.5]]),
              "layer0.g": np.array([[0.0], [0.0], [0.0], [0.0]])}
    by_var = unit_overview(traces)
    assert by_var[0].name == "layer0.h:1" and by_var[0].score == pytest.approx(1.0)
    assert by_var[0].left is None and len(by_var) == 5
    by_sat = unit_overview(traces, by="saturation")
    assert [s.name for s in by_sat] == ["layer0.f:0", "layer0.f:1"]  # gates only
    assert by_sat[0].score == 1.0 and by_sat[0].left == 0.5 and by_sat[0].right == 0.5
    assert by_sat[1].right == 0.25
    assert len(unit_overview(traces, top=2)) == 2
    with pytest.raises(CharlstmError, match="no gate traces"):
        unit_overview({"layer0.h": np.zeros((2, 2))}, by="saturation")
    with pytest.raises(CharlstmError, match="by must be"):
        unit_overview(traces, by="mean")
