"""What charlstm does per second on this machine: training (next to a bare nn.LSTM loop of the same
shape), sampling (next to the weight-streaming limit), tracing and encoding.

Owns: the model arithmetic (FLOPs per character, weight bytes per step), the generated data and each
rate. Does not know: the report's layout (charlstm.bench.report) or which presets run (run).
"""
from __future__ import annotations

import dataclasses
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from charlstm.cells import GATE_COUNT
from charlstm.config import ModelConfig, TrainConfig
from charlstm.corpora.code import stdlib_path
from charlstm.corpora.text import write_text
from charlstm.dataset import Dataset, DatasetBuilder
from charlstm.errors import CharlstmError
from charlstm.model import CharRNN
from charlstm.precision import autocast
from charlstm.bench.machine import PeakMemory, sync
from charlstm.inputs import encode
from charlstm.sample import SampleOptions, generate
from charlstm.trace import trace_ids
from charlstm.train import train
from charlstm.vocab import Vocab

ALPHABET = [chr(c) for c in range(32, 127)] + ["\n"]


# ----------------------------------------------------------------------------- model arithmetic
def matmul_params(m: ModelConfig) -> int:
    """Weights used in matrix products per character: every layer's W_ih [G*H, in] and W_hh [G*H, H]
    plus the head [V, H]. (The embedding is a row gather; biases and gate arithmetic are
    elementwise, a few % of the work for H >= 128.)"""
    G, H, E, L, V = GATE_COUNT[m.cell], m.hidden_size, m.embed_dim, m.num_layers, m.vocab_size
    return G * H * (E + H) + (L - 1) * G * H * (2 * H) + H * V


def train_flops_per_char(m: ModelConfig) -> float:
    """Training FLOPs per character: 2 (forward multiply-add) + 4 (gradients of inputs and weights),
    per matmul weight."""
    return 6.0 * matmul_params(m)


def sample_weight_bytes(m: ModelConfig, itemsize: int = 4) -> int:
    """Bytes of weights one sampling step reads (charlstm.sample.Stepper): W_hh of every layer,
    W_ih of layers >= 1 and the head. Layer 0's input projection is folded into a [V, G*H] table
    of which a step reads only one row per sample (negligible)."""
    G, H, L, V = GATE_COUNT[m.cell], m.hidden_size, m.num_layers, m.vocab_size
    return itemsize * (L * G * H * H + (L - 1) * G * H * H + H * V)


# ----------------------------------------------------------------------------- data
def random_dataset(root: Path, n_chars: int = 400_000, seed: int = 0) -> Dataset:
    """A dataset of uniformly random printable ASCII (speed does not depend on what is learnt):
    97 + 2 symbols, 5% validation."""
    vocab = Vocab.build_char(Counter(ALPHABET))
    ids = np.random.default_rng(seed).integers(2, vocab.size, size=n_chars).astype(np.uint8)
    n_val = max(2, n_chars // 20)
    with DatasetBuilder(root / "bench-random", force=True) as b:
        b.write_split("train", ids[: n_chars - n_val])
        b.write_split("val", ids[n_chars - n_val:])
        return b.commit(vocab, {"records": False, "source": {"kind": "bench-random"}, "options": {}, "stats": {}})


def stdlib_text(n_bytes: int) -> bytes:
    """About n_bytes of Python standard-library source (repeated if needed): realistic code text."""
    out = bytearray()
    files = sorted(stdlib_path().glob("*.py"))
    while len(out) < n_bytes and files:
        for p in files:
            out += p.read_bytes()
            if len(out) >= n_bytes:
                break
    return bytes(out[:n_bytes])


# ----------------------------------------------------------------------------- training
def bare_train_rate(mcfg: ModelConfig, tcfg: TrainConfig, device: torch.device, steps: int,
                    warmup: int = 2) -> float:
    """chars/s of a hand-written loop of the same shape: nn.Embedding -> nn.LSTM/GRU/RNN -> nn.Linear,
    B x T chunks of one random [B, steps*T + 1] tensor on the device, carried and detached state,
    AdamW, clip_grad_norm_, bf16 autocast when tcfg.precision is bf16 (auto: on CUDA), as charlstm; no host syncs."""
    torch.manual_seed(tcfg.seed)
    V, E, H, L, B, T = mcfg.vocab_size, mcfg.embed_dim, mcfg.hidden_size, mcfg.num_layers, tcfg.batch_size, tcfg.seq_len
    rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}.get(mcfg.cell, nn.LSTM)
    embed, rnn, head = nn.Embedding(V, E).to(device), rnn_cls(E, H, L, batch_first=True).to(device), nn.Linear(H, V).to(device)
    params = [*embed.parameters(), *rnn.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    n = warmup + steps
    data = torch.randint(0, V, (B, n * T + 1), device=device)
    prec = tcfg.precision if tcfg.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    state = None
    t0 = 0.0
    for i in range(n):
        if i == warmup:
            sync(device)
            t0 = time.perf_counter()
        x, y = data[:, i * T:(i + 1) * T], data[:, i * T + 1:(i + 1) * T + 1]
        with autocast(device, prec):
            out, state = rnn(embed(x), state)
            loss = F.cross_entropy(head(out).reshape(-1, V).float(), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, tcfg.grad_clip)
        opt.step()
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
    sync(device)
    return steps * B * T / (time.perf_counter() - t0)


def charlstm_train_rate(ds: Dataset, mcfg: ModelConfig, tcfg: TrainConfig, device: torch.device, run_dir: Path,
                        log_every: int, intervals: int) -> float:
    """chars/s of charlstm's own `train()` (its whole loop: logging, NaN checks, snapshots) over
    `intervals` log intervals after a first, untimed one; read from its metrics times. The final
    (tiny) evaluation and checkpoint writes come after the last timed point."""
    t = dataclasses.replace(tcfg, max_steps=log_every * (intervals + 1), max_epochs=None, time_budget=None,
                            log_every=log_every, eval_every=10**9, eval_max_chars=1000, sample_chars=0,
                            device=str(device))
    r = train(ds, run_dir, mcfg, t, force=True, quiet=True)
    times = [h["time"] for h in r.history]
    if len(times) < 2 or times[-1] <= times[0]:
        raise CharlstmError("the training run logged too few points to time it")
    return intervals * log_every * r.batch_size * t.seq_len / (times[-1] - times[0])


def log_every_for(step_seconds: float, target: float) -> int:
    """Steps per log interval so that an interval lasts about `target` seconds (1..10; 10 is
    train's default, so the per-interval bookkeeping is amortised as in a real run)."""
    return int(min(10, max(1, round(target / max(step_seconds, 1e-6)))))


def measure_training(ds: Dataset, mcfg: ModelConfig, tcfg: TrainConfig, device: torch.device, root: Path,
                     quick: bool, repeats: int = 1) -> dict[str, Any]:
    """Training chars/s of charlstm and of the bare loop, side by side (alternating, best of
    `repeats`), model FLOPs and peak memory."""
    probe = bare_train_rate(mcfg, tcfg, device, steps=2, warmup=1)  # also warms oneDNN/cuDNN up
    step_s = tcfg.batch_size * tcfg.seq_len / probe
    log_every = log_every_for(step_s, 0.5 if quick else 2.0)
    intervals = 2 if quick else 3
    bare, ours, peak = [], [], 0.0
    for _ in range(repeats):
        bare.append(bare_train_rate(mcfg, tcfg, device, steps=log_every * intervals, warmup=log_every))
        with PeakMemory(device) as pm:
            ours.append(charlstm_train_rate(ds, mcfg, tcfg, device, root / "run", log_every, intervals))
        peak = max(peak, pm.peak_mb)
    b, o = max(bare), max(ours)
    return {"charlstm_chars_per_s": o, "bare_chars_per_s": b, "ratio": o / b, "log_every": log_every,
            "timed_steps": log_every * intervals, "peak_memory_mb": peak}


# ----------------------------------------------------------------------------- inference
def sample_rate(model: CharRNN, vocab, batch: int, length: int, device: torch.device) -> float:
    """chars/s of `charlstm.sample.generate` producing `batch` samples of `length` characters."""
    opts = SampleOptions(length=length, num_samples=batch, seed=0, stop_at_eot=False)
    generate(model, vocab, [], dataclasses.replace(opts, length=8))  # warm-up: first-call costs
    sync(device)
    t = time.perf_counter()
    generate(model, vocab, [], opts)
    sync(device)
    return batch * length / (time.perf_counter() - t)


def trace_rate(model: CharRNN, vocab, n_chars: int, device: torch.device) -> float:
    """chars/s of `charlstm.trace.trace_ids` recording every kind of every layer (float32, in memory)."""
    rng = np.random.default_rng(1)
    text = "".join(ALPHABET[i] for i in rng.integers(0, len(ALPHABET), n_chars))
    ids = encode(vocab, text)
    trace_ids(model, vocab, ids[:256])  # warm-up
    sync(device)
    t = time.perf_counter()
    trace_ids(model, vocab, ids)
    sync(device)
    return n_chars / (time.perf_counter() - t)


def encoding_rate(root: Path, mbytes: float) -> dict[str, Any]:
    """MB/s of the whole `charlstm data text` build (two passes, split files, sha256, rename) on
    `mbytes` MB of stdlib source, in this process."""
    src = root / "encode-source.txt"
    data = stdlib_text(int(mbytes * 1e6))
    src.write_bytes(data)
    with PeakMemory(torch.device("cpu")) as pm:
        t = time.perf_counter()
        write_text([src], "bench-encode", data_dir=root, force=True)
        dt = time.perf_counter() - t
    src.unlink()
    shutil.rmtree(root / "bench-encode", ignore_errors=True)
    return {"mbytes": len(data) / 1e6, "mb_per_s": len(data) / 1e6 / dt, "seconds": dt, "peak_memory_mb": pm.peak_mb}


