"""charlstm.train.autosize: the rule is deterministic given measured rates, monotonic in the budget, keeps
the calibration inside the budget, and its output is a valid configuration the trainer accepts."""
from __future__ import annotations

import math

import pytest
import torch

from charlstm.train import autosize
from charlstm.train.autosize import Candidate, choose, plan
from charlstm.config import build_configs
from charlstm.model import CharRNN
from charlstm.train import train
from test_train_helpers import make_dataset


def meta(train_chars: int = 5_000_000, val_chars: int = 250_000, vocab: int = 100) -> dict:
    return {"vocab_size": vocab, "splits": {"train": {"tokens": train_chars}, "val": {"tokens": val_chars}}}


def flop_rate(flops_per_s: float = 5e9, batch_gain: float = 0.0):
    """A machine that trains at flops_per_s / (6 x matmul weights) chars/s, times (batch / 64) **
    batch_gain: 0 = batch does not matter (a loaded CPU), 1 = chars/s grows with the batch (a GPU)."""
    def rate(c: Candidate) -> float:
        G, H, E, L, V = 4, c.hidden_size, c.embed_dim, c.num_layers, c.vocab_size
        w = G * H * (E + H) + (L - 1) * G * H * 2 * H + H * V
        return flops_per_s / (6 * w) * (c.batch_size / 64) ** batch_gain
    return rate


class FakeClock:
    def __init__(self, per_call: float = 0.0):
        self.t, self.per_call = 0.0, per_call

    def __call__(self) -> float:
        self.t += self.per_call
        return self.t


def size(p) -> int:
    return p.model["num_layers"] * 10_000 + p.model["hidden_size"]


def test_deterministic_given_rates():
    a = choose(meta(), 300, rate=flop_rate(), clock=FakeClock())
    b = choose(meta(), 300, rate=flop_rate(), clock=FakeClock())
    assert (a.model, a.train) == (b.model, b.train)
    assert a.rates and all(v > 0 for v in a.rates.values())


def test_monotonic_in_budget_and_speed():
    budgets = [30, 60, 120, 300, 900, 3600, 4 * 3600, 24 * 3600]
    sizes = [size(choose(meta(train_chars=100_000_000), b, rate=flop_rate(), clock=FakeClock())) for b in budgets]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    fast = [size(choose(meta(), 300, rate=flop_rate(f), clock=FakeClock())) for f in (1e9, 1e10, 1e11, 1e12)]
    assert fast == sorted(fast) and fast[0] < fast[-1]


def test_a_slow_machine_and_short_budget_gets_the_smallest_rung():
    p = choose(meta(), 30, rate=flop_rate(1e8), clock=FakeClock())
    assert (p.model["num_layers"], p.model["hidden_size"]) == autosize.LADDER[0]


def test_chosen_rung_meets_the_thresholds_and_the_next_does_not():
    p = choose(meta(train_chars=100_000_000), 3600, rate=flop_rate(2e10), clock=FakeClock())
    i = autosize.LADDER.index((p.model["num_layers"], p.model["hidden_size"]))
    assert 0 < i < len(autosize.LADDER) - 1
    assert p.expected_steps >= autosize.MIN_STEPS
    c = Candidate(p.model["num_layers"], p.model["hidden_size"], p.model["embed_dim"], p.train["batch_size"],
                  p.train["seq_len"], 100)
    assert p.expected_chars >= autosize.CHARS_PER_PARAM * c.parameters
    assert "would get only" in p.reason


def test_batch_is_the_smallest_with_nearly_the_best_throughput():
    cpu = choose(meta(), 300, rate=flop_rate(), clock=FakeClock())  # flat rate in batch: smallest
    assert cpu.train["batch_size"] == autosize.CPU_BATCHES[0]
    steep = choose(meta(), 300, rate=flop_rate(batch_gain=1.0), clock=FakeClock())  # rate ∝ batch
    assert steep.train["batch_size"] == autosize.CPU_BATCHES[-1]
    gpu = choose(meta(), 300, "cuda", rate=flop_rate(1e13), clock=FakeClock())
    assert gpu.train["batch_size"] in autosize.GPU_BATCHES


def test_learning_rate_falls_with_width_and_depth():
    assert autosize.lr_for(1, 128) == pytest.approx(1e-2)
    assert autosize.lr_for(1, 512) < autosize.lr_for(1, 256) < autosize.lr_for(1, 128)
    assert autosize.lr_for(2, 512) < autosize.lr_for(1, 512)


def test_calibration_time_comes_out_of_the_budget():
    p = choose(meta(), 300, rate=flop_rate(), clock=FakeClock(per_call=0.5))
    assert p.calibration_seconds > 0
    assert p.train["time_budget"] == pytest.approx(300 - p.calibration_seconds)


def test_evaluations_fit_in_their_share_of_the_budget():
    short = choose(meta(val_chars=500_000), 60, rate=flop_rate(1e9), clock=FakeClock())
    assert short.train["eval_every"] == 10**9  # one evaluation costs too much: only the final one
    long = choose(meta(val_chars=100_000), 8 * 3600, rate=flop_rate(1e10), clock=FakeClock())
    n_evals = long.expected_steps / long.train["eval_every"]
    assert 1 <= n_evals


def test_a_tiny_corpus_gets_a_small_batch_and_dropout_when_seen_many_times():
    p = choose(meta(train_chars=600, val_chars=100), 600, rate=flop_rate(), clock=FakeClock())
    assert p.train["batch_size"] * p.train["seq_len"] < 600
    assert p.model["dropout"] > 0


def test_a_small_corpus_caps_the_model_size():
    big = choose(meta(train_chars=100_000_000), 24 * 3600, rate=flop_rate(1e11), clock=FakeClock())
    small = choose(meta(train_chars=300_000), 24 * 3600, rate=flop_rate(1e11), clock=FakeClock())
    assert size(small) < size(big)
    assert "more parameters than the corpus" in small.reason
    c = Candidate(small.model["num_layers"], small.model["hidden_size"], small.model["embed_dim"], 16, 32, 100)
    assert c.parameters <= 300_000


def test_output_is_a_valid_config_for_every_budget():
    for b in (10, 300, 86400):
        mo, to = plan(meta(), b, rate=flop_rate())
        m, t = build_configs(None, None, {**mo, **to})
        m.vocab_size = 100
        m.validate()
        t.validate()
        assert t.time_budget <= b and t.schedule == "cosine" and t.min_lr < t.lr
        assert "LSTM" in autosize.describe(mo, to)


def test_candidate_parameter_count_matches_the_model():
    c = Candidate(2, 24, 8, 4, 16, 30)
    assert c.parameters == CharRNN(c.model_config()).num_parameters()


def test_measured_plan_trains(tmp_path):
    """The real thing at toy size: measure rates, then train within the (small) budget."""
    make_dataset()
    threads = torch.get_num_threads()
    try:
        saved = autosize.LADDER
        autosize.LADDER = ((1, 8), (1, 16))  # keep the calibration tiny
        p = choose("toy", 4.0, "cpu", 1)
    finally:
        autosize.LADDER = saved
        torch.set_num_threads(threads)
    assert set(p.rates) and all(math.isfinite(r) and r > 0 for r in p.rates.values())
    assert p.train["time_budget"] < 4.0
    m, t = build_configs(None, None, {**p.model, **p.train, "sample_chars": 0})
    r = train("toy", tmp_path / "run", m, t, quiet=True)
    assert r.stopped == "time budget" and r.final_val_bpc is not None
