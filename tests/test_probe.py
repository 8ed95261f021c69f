"""charlstm.neurons.probe: the sparse L1 probe finds planted units and respects its limits."""
from __future__ import annotations

import numpy as np
import pytest

from charlstm.errors import CharlstmError
from charlstm.neurons.probe import l1_probe

def probe_data(seed: int, t: int = 3000, units: int = 200):
    """200 random units in two traces; two of them (one per trace) drive the feature together."""
    rng = np.random.default_rng(seed)
    traces = {"layer0.h": rng.normal(size=(t, units // 2)).astype(np.float32),
              "layer1.c": rng.normal(size=(t, units // 2)).astype(np.float32)}
    traces["layer1.c"][:, 7] = 0.0
    a = traces["layer0.h"][:, 17].astype(np.float64)
    b = traces["layer1.c"][:, 42].astype(np.float64)
    return rng, traces, a, b



def test_l1_probe_recovers_two_planted_units_binary():
    rng, traces, a, b = probe_data(0)
    feature = (a - b + 0.3 * rng.normal(size=len(a)) > 0).astype(np.float32)
    res = l1_probe(traces, feature, "binary", max_units=10)
    assert sorted(u.name for u in res.units) == ["layer0.h:17", "layer1.c:42"]
    weights = {u.name: u.weight for u in res.units}
    assert weights["layer0.h:17"] > 1 and weights["layer1.c:42"] < -1  # signs of the planted rule
    assert res.kind == "binary" and res.n_train + res.n_test == 3000 and res.n_test == 600
    assert res.heldout["accuracy"] > 0.9 > res.heldout["baseline"] and res.heldout["auroc"] > 0.97
    assert res.metric == res.heldout["accuracy"] and res.path[0][0] <= 2



def test_l1_probe_recovers_two_planted_units_continuous():
    rng, traces, a, b = probe_data(1)
    feature = (5 + 2 * a + b + 0.2 * rng.normal(size=len(a))).astype(np.float32)
    res = l1_probe(traces, feature, "continuous")
    assert [u.name for u in res.units] == ["layer0.h:17", "layer1.c:42"]  # largest |weight| first
    assert res.heldout["r2"] > 0.98 and res.heldout["r"] > 0.99 and res.train_explained > 0.98
    ratio = res.units[0].weight / res.units[1].weight
    assert ratio == pytest.approx(2.0, rel=0.05)  # the refit undoes the L1 shrinkage



def test_l1_probe_with_c_and_limits():
    rng, traces, a, b = probe_data(2, t=1500)
    feature = (a + b + 0.2 * rng.normal(size=len(a))).astype(np.float32)
    assert len(l1_probe(traces, feature, C=0.02).units) == 2  # strong penalty: just the planted pair
    res = l1_probe(traces, feature, C=0.3, max_units=3)  # weak penalty: many units, cut to 3
    assert len(res.units) == 3 and {"layer0.h:17", "layer1.c:42"} <= {u.name for u in res.units}
    single = l1_probe(traces, feature, max_units=1)
    assert len(single.units) == 1 and single.units[0].name in ("layer0.h:17", "layer1.c:42")
    none_held = l1_probe(traces, feature, holdout=0.0)
    assert none_held.heldout == {} and none_held.n_test == 0
    with pytest.raises(CharlstmError, match="max_units"):
        l1_probe(traces, feature, max_units=0)
    with pytest.raises(CharlstmError, match="holdout"):
        l1_probe(traces, feature, holdout=1.0)
    with pytest.raises(CharlstmError, match="does not vary"):
        l1_probe(traces, np.r_[np.zeros(1000), np.ones(500)], holdout=0.4)

