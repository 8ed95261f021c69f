"""Data-parallel training under torchrun: two CPU processes (gloo) match one process with the same
global batch, only rank 0 writes, and a run resumes under torchrun."""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from charlstm.train import distributed as D
from charlstm.checkpoint import load_tensors
from charlstm.config import ModelConfig, TrainConfig
from charlstm.train import train
from test_train_helpers import make_dataset

OPTS = ["--hidden", "16", "--embed", "8", "--layers", "2", "--batch-size", "8", "--seq-len", "16",
        "--schedule", "constant", "--warmup", "0", "--lr", "0.01", "--eval-every", "4", "--device", "cpu", "-q"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           # "--" stops torchrun reading our options (it would take "--run" for an abbreviation of "--run-path")
           "-m", "charlstm", "--", "train", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def metrics(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_two_gloo_processes_match_one_process_and_resume(tmp_path):
    make_dataset()
    ck = Path(os.environ["CHARLSTM_CHECKPOINTS"])
    # the single-process reference with the same global batch of 8 streams
    m = ModelConfig(hidden_size=16, embed_dim=8, num_layers=2)
    t = TrainConfig(batch_size=8, seq_len=16, schedule="constant", warmup_steps=0, lr=0.01, eval_every=4,
                    device="cpu", max_steps=12, sample_chars=0, log_every=10)
    train("toy", ck / "ref", m, t, quiet=True)

    first = torchrun("toy", "--run", "ddp", *OPTS, "--max-steps", "6")
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("Run 'ddp' done") == 1  # only rank 0 reports
    resumed = torchrun("toy", "--run", "ddp", *OPTS, "--max-steps", "12", "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    run = ck / "ddp"
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "last.safetensors", "metrics.jsonl",
                                                     "model.safetensors", "tokenizer.json"]
    a, meta = load_tensors(run / "last.safetensors")
    b, _ = load_tensors(ck / "ref" / "last.safetensors")
    assert meta["trainer"]["world_size"] == 2 and a["rng.torch"].shape[0] == 2
    for k in b:
        if k.startswith(("model.", "optim.", "state.")):
            torch.testing.assert_close(a[k], b[k], atol=2e-5, rtol=1e-4, msg=k)
    # the same losses and (exact, reduced across ranks) validation bpc at every logged step
    ra = {x["step"]: x for x in metrics(run)}
    rb = {x["step"]: x for x in metrics(ck / "ref")}
    assert sorted(ra) == [4, 6, 8, 10, 12] and sorted(rb) == [4, 8, 10, 12]
    for s in (4, 8, 12):
        assert ra[s]["val_bpc"] == pytest.approx(rb[s]["val_bpc"], rel=1e-5)
    assert ra[10]["train_loss"] == pytest.approx(rb[10]["train_loss"], rel=1e-5)
    # a checkpoint written by two processes also resumes in one
    r = train("toy", run, m, dataclasses.replace(t, max_steps=14), resume=True, quiet=True)
    assert r.steps == 14


def test_distributed_is_a_no_op_in_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = D.from_env()
    assert not info.enabled and info.is_main
    t = torch.ones(3)
    assert torch.equal(D.all_reduce_sum(t, info), torch.ones(3))
    assert torch.equal(D.gather_cat(t, info), t)
    assert D.check_device(torch.device("cpu"), info) == torch.device("cpu")
