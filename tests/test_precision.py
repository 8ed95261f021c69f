"""charlstm.precision: fp32 or bf16, chosen by measurement where it may pay, falling back cleanly on a
CPU without bf16 hardware; a run stores the precision it chose; autosize times candidates in it."""
from __future__ import annotations

import json

import pytest
import torch

from charlstm import precision as P
from charlstm.config import ModelConfig, TrainConfig, train_config
from charlstm.errors import CharlstmError
from charlstm.train import train
from charlstm.train.autosize import Candidate, choose
from test_train_helpers import make_dataset

CPU = torch.device("cpu")
BIG = 5_000_000  # multiply-adds per character: big enough to be worth timing


@pytest.fixture
def bf16_cpu(monkeypatch):
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))


@pytest.fixture
def old_cpu(monkeypatch):
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset({"avx2", "fma"}))


def test_fp32_and_bf16_can_be_asked_for(old_cpu):
    assert P.choose("fp32", CPU).precision == "fp32"
    c = P.choose("bf16", CPU)
    assert c.precision == "bf16" and "emulated" in c.reason  # allowed, with a warning
    with pytest.raises(CharlstmError, match="unknown precision 'fp16'"):
        P.choose("fp16", CPU)


def test_auto_falls_back_to_fp32_on_a_cpu_without_bf16_and_says_so(old_cpu):
    timed = []
    c = P.choose("auto", CPU, lambda p: timed.append(p) or 1.0, BIG)
    assert c.precision == "fp32" and "no AMX or AVX512-BF16" in c.reason and timed == []


def test_auto_times_both_and_takes_bf16_only_when_faster(bf16_cpu):
    assert P.choose("auto", CPU, {"fp32": 100.0, "bf16": 150.0}.get, BIG).precision == "bf16"
    slower = P.choose("auto", CPU, {"fp32": 100.0, "bf16": 102.0}.get, BIG)  # within the margin
    assert slower.precision == "fp32" and "1.02x" in slower.reason
    small = P.choose("auto", CPU, lambda p: pytest.fail("a small model is not timed"), P.BF16_MIN_MACS - 1)
    assert small.precision == "fp32" and "gains nothing" in small.reason
    assert P.choose("auto", torch.device("cuda")).precision == "bf16"


def test_a_bf16_run_trains_on_the_cpu_and_keeps_its_precision(tmp_path):
    make_dataset()
    m = ModelConfig(embed_dim=8, hidden_size=16, num_layers=1)
    t = TrainConfig(batch_size=4, seq_len=16, max_steps=6, eval_every=3, log_every=3, sample_chars=0,
                    device="cpu", precision="bf16")
    r = train("toy", tmp_path / "b", m, t, quiet=True)
    assert r.final_val_bpc is not None and r.final_val_bpc == r.final_val_bpc  # a number, not NaN
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    assert cfg["train"]["precision"] == "bf16"
    auto = train("toy", tmp_path / "a", m, TrainConfig(**{**t.__dict__, "precision": "auto"}), quiet=True)
    assert json.loads((tmp_path / "a" / "config.json").read_text())["train"]["precision"] == "fp32"  # tiny
    assert auto.steps == 6


def test_runs_written_before_precision_existed():
    assert train_config({"amp": False}).precision == "fp32"
    assert train_config({"amp": True}).precision == "auto"


def test_autosize_times_candidates_in_the_faster_precision(bf16_cpu):
    meta = {"splits": {"train": {"tokens": 50_000_000}, "val": {"tokens": 100_000}}, "vocab_size": 100}

    def rate(c: Candidate) -> float:  # bf16 twice as fast on big models only
        base = 3e10 / (6 * c.parameters)
        return base * (2.0 if c.precision == "bf16" and c.macs >= P.BF16_MIN_MACS else 1.0)

    p = choose(meta, 1800, rate=rate)
    assert p.train["precision"] == "bf16" and p.model["hidden_size"] >= 512
    assert any(k.endswith("/bf16") for k in p.rates) and not any(k.startswith("1x128@") and k.endswith("/bf16")
                                                                for k in p.rates)  # small rungs: fp32 only
    fp32 = choose(meta, 1800, rate=rate, precision="fp32")
    assert fp32.train["precision"] == "fp32" and not any(k.endswith("/bf16") for k in fp32.rates)
    # with twice the speed, bf16 affords a model at least as large
    assert p.model["hidden_size"] * p.model["num_layers"] >= fp32.model["hidden_size"] * fp32.model["num_layers"]
