"""The atlas's numpy parts against their slow twins: vectorised scoring and shifted controls
(charlstm.neurons.atlas.scoring), Witten-Bell n-grams (ngram), and the plain rules of selection,
breakdown and controls."""
from __future__ import annotations

import numpy as np
import pytest

from charlstm.errors import CharlstmError
from charlstm.neurons.atlas.breakdown import bracket_distances, char_class, compare
from charlstm.neurons.atlas.controls import control_task, learned
from charlstm.neurons.atlas.ngram import ngram_bits, ngram_bits_slow
from charlstm.neurons.atlas.scoring import (UnitMatrix, directed, null_best_slow, p_value, raw_scores_slow, score_of,
                                            shift_offsets)
from charlstm.neurons.atlas.selection import TASKS, Target, key_predictions, parts, targets_for, usable
from charlstm.neurons.features import DOMAINS, FEATURES, compute, features_for


def _traces(seed: int = 0, n: int = 300):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 7)).astype(np.float32)
    a[:, 2] = 1.5  # a constant column
    a[:, 3] = np.round(a[:, 3])  # many ties
    b = rng.normal(size=(n, 5)).astype(np.float32)
    return {"layer0.h": a, "layer1.c": b}, rng


# ----------------------------------------------------------------------------------------------
# scoring


@pytest.mark.parametrize("kind", ["continuous", "binary"])
def test_unit_matrix_scores_equal_the_slow_twin(kind):
    traces, rng = _traces()
    y = (rng.random(300) < 0.3).astype(float) if kind == "binary" else np.cumsum(rng.normal(size=300))
    y[::7] = np.round(y[::7])
    rows = rng.random(300) < 0.6
    y[:] = y + (traces["layer0.h"][:, 0] * (kind == "continuous"))  # something to find
    um = UnitMatrix(traces, rows)
    x = np.concatenate([traces[k][rows][:, [u]] for k, u in um.columns], axis=1)
    np.testing.assert_allclose(um.raw(y[rows], kind), raw_scores_slow(x, y[rows], kind), atol=1e-6)
    assert um.raw(y[rows], kind)[2] == (0.0 if kind == "continuous" else 0.5)  # the constant column
    offsets = shift_offsets(int(rows.sum()), 30, seed=1)
    np.testing.assert_allclose(um.null_best(y[rows], kind, offsets), null_best_slow(x, y[rows], kind, offsets), atol=1e-5)


def test_unit_matrix_columns_and_a_constant_feature():
    traces, _ = _traces()
    um = UnitMatrix(traces, np.arange(50), columns=[("layer1.c", 4), ("layer0.h", 1)])
    assert um.size == 2 and um.column("layer0.h", 1) in (0, 1)
    np.testing.assert_array_equal(um.raw(np.ones(50), "continuous"), [0.0, 0.0])
    np.testing.assert_array_equal(um.raw(np.zeros(50), "binary"), [0.5, 0.5])
    with pytest.raises(CharlstmError, match="49 values for 50 rows"):
        um.raw(np.ones(49), "binary")


def test_shifts_p_values_and_directions():
    off = shift_offsets(1000, 500, seed=3)
    assert off.min() >= 50 and off.max() <= 950 and len(set(off.tolist())) > 100
    assert p_value(0.9, np.array([0.1, 0.2, 0.95])) == pytest.approx(2 / 4)
    assert p_value(0.9, np.zeros(199)) == pytest.approx(1 / 200)
    assert directed(0.2, "binary", -1) == pytest.approx(0.8) and directed(-0.4, "continuous", -1) == pytest.approx(0.4)
    assert score_of(0.2, "binary") == pytest.approx(0.8) and score_of(-0.4, "continuous") == pytest.approx(0.4)


def test_a_real_signal_beats_its_shifted_copies_and_noise_does_not():
    rng = np.random.default_rng(0)
    n = 2000
    y = np.repeat(rng.random(n // 20) < 0.4, 20).astype(float)  # runs, like strings or comments
    traces = {"layer0.h": rng.normal(size=(n, 200)).astype(np.float32)}
    traces["layer0.h"][:, 17] += 1.5 * y  # one unit tracks it
    um = UnitMatrix(traces, np.ones(n, bool))
    raw = um.raw(y, "binary")
    assert int(np.argmax(score_of(raw, "binary"))) == 17
    null = um.null_best(y, "binary", shift_offsets(n, 99, seed=0))
    assert p_value(float(score_of(raw, "binary").max()), null) == pytest.approx(0.01)
    noise = np.repeat(rng.random(n // 20) < 0.4, 20).astype(float)  # an unrelated feature: the best of 199 others
    best = float(score_of(um.raw(noise, "binary"), "binary").max())  # units wins by chance,
    assert p_value(best, um.null_best(noise, "binary", shift_offsets(n, 99, seed=0))) > 0.05  # and the control knows


# ----------------------------------------------------------------------------------------------
# n-grams


@pytest.mark.parametrize("vocab,order,seed", [(2, 1, 0), (3, 3, 1), (5, 4, 2), (6, 7, 3)])
def test_ngram_bits_equal_the_slow_twin(vocab, order, seed):
    rng = np.random.default_rng(seed)
    train = rng.integers(0, vocab - 1, 400)  # the last symbol never occurs in training
    text = np.concatenate([train[5:30], rng.integers(0, vocab, 40)])
    np.testing.assert_allclose(ngram_bits(train, vocab, order, text), ngram_bits_slow(train, vocab, order, text),
                               atol=1e-10)


def test_ngram_probabilities_sum_to_one():
    rng = np.random.default_rng(4)
    train = rng.integers(0, 4, 500)
    for ctx in ([0, 1], [3, 3], [4, 4], [2]):
        total = sum(2.0 ** -ngram_bits(train, 5, 3, np.array(ctx + [c]))[:, -1] for c in range(5))
        np.testing.assert_allclose(total, 1.0, atol=1e-12)  # every order is a distribution


def test_ngram_learns_a_deterministic_stream_and_rejects_bad_ids():
    train = np.tile([0, 1, 2], 200)
    bits = ngram_bits(train, 3, 3, np.tile([0, 1, 2], 10))
    assert bits[0].mean() > 1.5 and bits[2, 5:].max() < 0.01  # unigram ~ log2(3); trigram nearly sure
    with pytest.raises(CharlstmError):
        ngram_bits(train, 2, 2, np.array([0, 1]))
    with pytest.raises(CharlstmError):
        ngram_bits(train, 3, 0, np.array([0, 1]))


# ----------------------------------------------------------------------------------------------
# selection, breakdown, controls


def test_every_named_feature_says_which_corpora_it_is_for():
    assert set(DOMAINS) == set(FEATURES)
    assert {"string", "comment", "indentation", "line-position", "bracket-depth"} <= set(features_for("code"))
    assert "hashtag" in features_for("tweets") and "comment" not in features_for("text")
    assert features_for("unknown") == list(FEATURES)


def _cfg(source):
    return {"dataset": {"meta": {"source": source}}}


def test_targets_follow_the_runs_corpus():
    code = [t.name for t in targets_for(_cfg({"kind": "code"}))]
    assert code == features_for("code")
    assert [t.name for t in targets_for(_cfg({"kind": "synthetic", "task": "counting"}))] == ["count:a-b"]
    rem = targets_for(_cfg({"kind": "synthetic", "task": "remember"}))
    assert rem == [Target(*TASKS["remember"][0])] and rem[0].span == "regex:[AB][xY]*"
    assert [t.name for t in targets_for(_cfg({"kind": "synthetic", "task": "copy"}))] == ["next:a", "next:b", "next:c"]
    extra = targets_for(_cfg({"kind": "code"}), ["regex:if", "string"])
    assert [t.name for t in extra].count("string") == 1 and extra[-1].name == "regex:if"
    with pytest.raises(CharlstmError, match="unknown feature"):
        targets_for({}, ["no-such-feature"])


def test_parts_alternate_blocks():
    sel, conf = parts(100, 10)
    assert sel.sum() == 50 and not (sel & conf).any() and (sel | conf).all()
    assert sel[:10].all() and conf[10:20].all()
    sel, conf = parts(7, 10)
    assert sel.any() and conf.any()


def test_usable_and_key_predictions():
    text = 'x = "ab" # c\n(1, (2))\n'
    s = compute("string", text)
    assert usable(s, "binary", np.ones(len(text), bool)) == "only 3 character(s) on"  # the opening quote, a, b
    assert usable(np.zeros(9), "continuous", np.ones(9, bool)) == "constant"
    key, what = key_predictions("string", "binary", s, None, np.array([c == "\n" for c in text]))
    assert what == "the character that closes it" and [text[t + 1] for t in np.flatnonzero(key)] == ['"']
    d = compute("bracket-depth", text)
    key, _ = key_predictions("bracket-depth", "continuous", d, None, np.zeros(len(text), bool))
    assert [text[t + 1] for t in np.flatnonzero(key)] == [")", ")"]
    key, what = key_predictions("line-position", "continuous", compute("line-position", text), None,
                                np.array([c == "\n" for c in text]))
    assert what == "line ends" and all(text[t + 1] == "\n" for t in np.flatnonzero(key)) and key.sum() == 2
    rec = list("AxxYa") + ["<eot>"] + list("BxYb")
    span = compute("regex:[AB][xY]*", rec) > 0.5
    key, _ = key_predictions("regex:A[xY]*", "binary", compute("regex:A[xY]*", rec), span, np.zeros(len(rec), bool))
    assert [rec[t + 1] for t in np.flatnonzero(key)] == ["a", "b"]


def test_breakdown_groups():
    assert [char_class(c) for c in "a7 \n({\"+"] == ["letter", "digit", "space", "newline", "open bracket",
                                                       "open bracket", "quote", "punctuation"]
    syms = list("f(a[b]c)") + ["<eot>"] + list("(x]")
    assert bracket_distances(syms).tolist() == [0, 0, 0, 0, 0, 2, 0, 6, 0, 0, 0, 0]
    lstm = np.linspace(1, 2, len(syms) - 1)
    ng = np.full(len(syms) - 1, 1.5)
    groups = {g.what: g for g in compare(syms, lstm, ng, {"inside": np.array([0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0])})}
    assert groups["all"].count == 11 and groups["all"].diff == pytest.approx(lstm.mean() - 1.5)
    assert groups["close bracket"].count == 3 and groups["closing bracket 1-4 back"].count == 1
    assert groups["closing bracket 5-19 back"].count == 1
    assert groups["inside inside"].count + groups["outside inside"].count == 11
    assert groups["letter"].lstm_better == pytest.approx(np.mean(lstm[[1, 3, 5, 9]] < 1.5))


def test_learned_and_the_control_task():
    assert learned(0.99, 0.95) and not learned(0.97, 0.95) and not learned(0.6, 0.3) and not learned(0.5, 0.6)
    assert not learned(1.0, 1.0)
    ids = np.array([0, 1, 2, 1, 0, 2, 2, 1] * 20)
    values = (np.arange(160) % 3 == 0).astype(float)
    ct = control_task(ids, values, "binary", seed=1)
    assert set(np.unique(ct)) == {0.0, 1.0}
    for i in range(3):  # one label per character type
        assert len(set(ct[ids == i].tolist())) == 1
    cont = control_task(ids, np.arange(160.0), "continuous", seed=1)
    assert all(len(set(cont[ids == i].tolist())) == 1 for i in range(3)) and set(cont) <= set(np.arange(160.0))


def test_atlas_json_has_no_nan():
    from charlstm.neurons.atlas.results import _clean

    got = _clean({"a": float("nan"), "b": [np.float32(1.5), np.inf, np.int64(3)], "c": (np.bool_(True), "x")})
    assert got == {"a": None, "b": [1.5, None, 3], "c": [True, "x"]}
    assert type(got["b"][2]) is int and type(got["c"][0]) is bool
