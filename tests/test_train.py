"""The training loop through its Python API: exact eval, learning, determinism, exact resume, NaN rollback."""
from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import charlstm.train.loop as T
from charlstm.train.batches import EvalStreams
from charlstm.checkpoint import load_model, load_tensors
from charlstm.config import ModelConfig, TrainConfig
from charlstm.errors import CharlstmError
from charlstm.model import CharRNN
from charlstm.train import score_nats, train
from test_train_helpers import make_dataset


pytestmark = pytest.mark.usefixtures("one_thread")


def configs(**kw):
    m = ModelConfig(hidden_size=32, embed_dim=8, num_layers=2)
    t = TrainConfig(batch_size=8, seq_len=16, warmup_steps=5, eval_every=10, log_every=5, sample_chars=0, lr=2e-2)
    for k, v in kw.items():
        setattr(m if hasattr(m, k) else t, k, v)
    return m, t


def weights(run_dir, which="last"):
    f = run_dir / ("last.safetensors" if which == "last" else "model.safetensors")
    return load_tensors(f)[0]


def test_eval_bpc_does_not_depend_on_chunk_length_and_equals_independent_rows():
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=20, hidden_size=12, embed_dim=6, num_layers=2)).eval()
    ids = (np.arange(503) * 7 % 20).astype(np.uint8)
    short = score_nats(model, EvalStreams(ids, 5, seq_len=7)).item()
    long = score_nats(model, EvalStreams(ids, 5, seq_len=1000)).item()
    assert short == pytest.approx(long, rel=1e-6)
    # the slow obvious twin: each of the 5 rows scored on its own in one pass from a zero state
    x = torch.from_numpy(ids.astype(np.int64))
    L = EvalStreams(ids, 5, 7).stream_len
    want = 0.0
    for r in range(5):
        seg = x[r * L: min((r + 1) * L, 502) + 1]
        logits, _ = model(seg[None, :-1])
        want += F.cross_entropy(logits[0], seg[1:], reduction="sum").item()
    assert short == pytest.approx(want, rel=1e-6)


def test_training_learns_and_writes_a_complete_run(tmp_path):
    make_dataset()
    m, t = configs(max_steps=100, eval_every=40)
    r = train("toy", tmp_path / "run", m, t)
    assert r.stopped == "finished" and r.steps == 100 and r.batch_size == 8
    vals = [h["val_bpc"] for h in r.history if "val_bpc" in h]
    assert len(vals) == 3 and vals[-1] < vals[0] - 1.0
    assert r.best_val_bpc == min(vals) and r.final_val_bpc == vals[-1]
    run = tmp_path / "run"
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(5, 101, 5))
    assert {"step", "epoch", "time", "lr", "train_loss", "chars_per_s"} <= set(lines[0])
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["format"] == "charlstm-run" and cfg["model"]["vocab_size"] > 2 and cfg["dataset"]["name"] == "toy"
    best, meta = load_tensors(run / "model.safetensors")
    assert meta["step"] == r.best_step and meta["val_bpc"] == pytest.approx(r.best_val_bpc)
    last, lmeta = load_tensors(run / "last.safetensors")
    assert {k.split(".")[0] for k in last} == {"model", "optim", "state", "rng"}
    assert last["state.0"].shape == (2, 8, 32) and last["state.1"].shape == (2, 8, 32)
    assert {"step", "epoch", "chunk", "lr_scale", "best_val_bpc", "host_rng"} <= set(lmeta["trainer"])
    model, vocab, _ = load_model(run, device="cpu")  # loads on the CPU, best weights
    assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items())


def test_a_cpu_run_is_deterministic(tmp_path):
    make_dataset()
    m, t = configs(max_steps=12, dropout=0.2)
    train("toy", tmp_path / "a", m, t)
    train("toy", tmp_path / "b", m, t)
    train("toy", tmp_path / "c", m, dataclasses.replace(t, seed=t.seed + 1))
    a, b, c = weights(tmp_path / "a"), weights(tmp_path / "b"), weights(tmp_path / "c")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["model.head.weight"], c["model.head.weight"])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_stop_and_resume_equals_uninterrupted_bit_for_bit(tmp_path, cell):
    # A small split (8 chunks per epoch) so the 16 steps of 2 chunks cross several epoch boundaries.
    make_dataset("small", repeat=4)
    m, t = configs(cell=cell, max_steps=16, grad_accum=2, dropout=0.1, log_every=2, eval_every=4)
    full = train("small", tmp_path / "full", m, t)
    first = train("small", tmp_path / "cut", m, t, callbacks=[lambda ev: ev.step >= 5])
    assert first.stopped == "callback" and first.steps == 6
    second = train("small", tmp_path / "cut", m, t, resume=True)
    assert second.steps == 16 and full.epoch > 3
    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert set(a) == set(b)
    for k in a:
        if not k.startswith("rng."):
            assert torch.equal(a[k], b[k]), k
    strip = lambda ls: [{k: v for k, v in x.items() if k not in ("time", "chars_per_s")} for x in ls]
    la = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert strip(la) == strip(lb)  # same losses, lrs and val bpc at every logged step


def test_resume_refuses_an_incompatible_config_and_changes_nothing(tmp_path):
    make_dataset()
    m, t = configs(max_steps=10)
    train("toy", tmp_path / "r", m, t)
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
    with pytest.raises(CharlstmError, match="hidden 32, not 64"):
        train("toy", tmp_path / "r", dataclasses.replace(m, hidden_size=64), t, resume=True)
    with pytest.raises(CharlstmError, match="seq-len 16, not 8"):
        train("toy", tmp_path / "r", m, dataclasses.replace(t, seq_len=8), resume=True)
    with pytest.raises(CharlstmError, match="already exists"):
        train("toy", tmp_path / "r", m, t)
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == before
    with pytest.raises(CharlstmError, match="no run"):
        train("toy", tmp_path / "nothing", m, t, resume=True)


def test_a_nan_rolls_back_and_lowers_the_learning_rate(tmp_path, monkeypatch, capsys):
    make_dataset()
    calls = {"n": 0}
    real = T._chunk_loss

    def poisoned(logits, targets):
        calls["n"] += 1
        loss = real(logits, targets)
        return loss * float("nan") if calls["n"] == 13 else loss  # one bad chunk, in step 13

    monkeypatch.setattr(T, "_chunk_loss", poisoned)
    m, t = configs(max_steps=20)
    r = train("toy", tmp_path / "n", m, t)
    assert r.steps == 20 and r.stopped == "finished"
    assert "rolled back to step 10" in capsys.readouterr().err
    last, meta = load_tensors(tmp_path / "n" / "last.safetensors")
    assert meta["trainer"]["lr_scale"] == 0.5
    assert all(torch.isfinite(v).all() for k, v in last.items() if v.is_floating_point())
    assert all(h["train_loss"] is not None and np.isfinite(h["train_loss"]) for h in r.history)


def test_repeated_nans_stop_with_a_clear_message_and_keep_the_last_good_state(tmp_path, monkeypatch):
    make_dataset()
    calls = {"n": 0}
    real = T._chunk_loss

    def broken(logits, targets):
        calls["n"] += 1
        loss = real(logits, targets)
        return loss * float("inf") if calls["n"] > 7 else loss

    monkeypatch.setattr(T, "_chunk_loss", broken)
    m, t = configs(max_steps=40, max_nan_retries=2)
    with pytest.raises(CharlstmError, match="diverged.*3 times"):
        train("toy", tmp_path / "d", m, t)
    last, meta = load_tensors(tmp_path / "d" / "last.safetensors")
    assert meta["trainer"]["step"] == 5  # the last log point before the first bad step
    assert all(torch.isfinite(v).all() for k, v in last.items() if v.is_floating_point())


def test_time_budget_stops_and_anneals_to_min_lr(tmp_path, monkeypatch):
    make_dataset()
    clock = {"t": 1000.0}

    def fake_monotonic():  # every reading of the clock advances it 10 ms: a deterministic budget
        clock["t"] += 0.01
        return clock["t"]

    monkeypatch.setattr(T, "_clock", fake_monotonic)
    m, t = configs(time_budget=1.0, eval_every=100000, lr=1e-2, min_lr=1e-4, warmup_steps=0)
    r = train("toy", tmp_path / "tb", m, t)
    assert r.stopped == "time budget" and 0.9 <= r.elapsed < 1.1  # training + final evaluation fit the budget
    assert r.final_val_bpc is not None  # evaluated at the end
    lrs = [h["lr"] for h in r.history]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] < 1e-4 + 0.01 * (1e-2 - 1e-4)  # cosine at its very end
    assert 20 <= r.steps <= 50


def test_small_dataset_shrinks_the_batch_and_tiny_one_fails(tmp_path, capsys):
    make_dataset("small", repeat=4)  # ~540 training characters
    m, t = configs(max_steps=2, batch_size=64, seq_len=16)
    r = train("small", tmp_path / "s", m, t)
    assert r.batch_size == 35  # 564 (input, target) pairs hold 35 streams of 16
    assert "using batch-size 35" in capsys.readouterr().err
    with pytest.raises(CharlstmError, match="too few"):
        train("small", tmp_path / "s2", m, dataclasses.replace(t, seq_len=5000))
    assert not (tmp_path / "s2").exists()


@pytest.mark.parametrize("cell", ["rnn", "peephole"])
def test_other_cells_train(tmp_path, cell):
    make_dataset("small", repeat=4)
    m, t = configs(cell=cell, max_steps=10, seq_len=8)
    r = train("small", tmp_path / cell, m, t)
    assert r.steps == 10 and np.isfinite(r.final_val_bpc)
    assert load_model(tmp_path / cell)[2]["model"]["cell"] == cell


def test_callbacks_see_log_eval_and_end_events(tmp_path):
    make_dataset()
    seen = []
    m, t = configs(max_steps=10)
    train("toy", tmp_path / "cb", m, t, callbacks=[lambda e: seen.append((e.kind, e.step))])
    assert seen == [("log", 5), ("eval", 10), ("end", 10)]


def test_no_pickle_anywhere_in_training_code():
    import inspect

    import charlstm.train.batches
    import charlstm.train.distributed
    import charlstm.train.progress
    import charlstm.runs
    import charlstm.train.state

    for mod in (T, charlstm.train.state, charlstm.train.batches, charlstm.train.distributed, charlstm.runs, charlstm.train.progress):
        src = inspect.getsource(mod)
        assert not re.search(r"torch\.load|torch\.save|import pickle|pickle\.|broadcast_object", src), mod.__name__


def test_checkpoints_are_stored_on_the_cpu_and_load_anywhere(tmp_path):
    make_dataset()
    m, t = configs(max_steps=5, device="cpu")
    train("toy", tmp_path / "c", m, t)
    tensors, meta = load_tensors(tmp_path / "c" / "last.safetensors", device="cpu")
    assert all(v.device.type == "cpu" for v in tensors.values())
    model, _, cfg = load_model(tmp_path / "c", checkpoint="last", device=torch.device("cpu"))
    assert torch.equal(model.head.weight, tensors["model.head.weight"])


@pytest.mark.cuda  # the GPU half (the CPU half is tested above)
def test_a_gpu_checkpoint_loads_and_resumes_on_the_cpu_and_back(tmp_path):
    make_dataset()
    m, t = configs(max_steps=6, device="cuda")
    train("toy", tmp_path / "g", m, t)
    tensors, _ = load_tensors(tmp_path / "g" / "last.safetensors")
    assert "rng.cuda" in tensors and all(v.device.type == "cpu" for v in tensors.values())
    model, _, _ = load_model(tmp_path / "g", device="cpu")
    assert model.head.weight.device.type == "cpu"
    r = train("toy", tmp_path / "g", m, dataclasses.replace(t, max_steps=10, device="cpu"), resume=True)
    assert r.steps == 10 and np.isfinite(r.final_val_bpc)
    r = train("toy", tmp_path / "g", m, dataclasses.replace(t, max_steps=14, device="cuda"), resume=True)
    assert r.steps == 14 and np.isfinite(r.final_val_bpc)
