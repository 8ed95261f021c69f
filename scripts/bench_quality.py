#!/usr/bin/env python
"""Quality per CPU-second: charlstm's auto-sized `train --time-budget` against a plain LSTM baseline
and a small GPT.

    .venv/bin/python scripts/make_english_corpus.py          # data/english (Vim's help files, 5 MB)
    .venv/bin/charlstm data code                             # data/stdlib
    .venv/bin/python scripts/bench_quality.py --budget 300 --corpora english,stdlib --json q.json --plot docs/img/quality.png

For each corpus, in this one process and back to back (the order alternates between corpora, so a
change of load on the machine does not always favour the same side):

- baseline: a bare, hand-written loop: stateful nn.LSTM 2x256, embedding 64, batch 32 x seq 100
  streams (truncated BPTT, the state carried and detached, reset at each pass), AdamW (lr 2e-3,
  PyTorch's default weight decay 0.01), cosine decay to 1e-4 by elapsed time, gradient-norm clip 1.0,
  for `--budget` seconds of training. Its weights are then loaded into a charlstm CharRNN (same
  parameter names) and scored by charlstm's exact evaluator on the whole validation split (the
  scoring is not counted in its budget).
- charlstm: `charlstm.train.autosize.plan()` then `charlstm.train.train()`, all within `--budget` seconds
  of wall clock: the calibration, the training and the final exact evaluation. This is what
  `charlstm train DATASET --time-budget 5m` does with no size options.
- gpt: the anchor a user would pick instead, a small GPT in nanoGPT's README CPU configuration
  (karpathy/nanoGPT, `train_shakespeare_char` with `--block_size=64 --batch_size=12 --n_layer=4
  --n_head=4 --n_embd=128 --dropout=0.0`), written out below after nanoGPT's model.py: token and
  learned position embeddings, 4 pre-LayerNorm blocks (causal self-attention, 4 heads; GELU MLP 4x
  wide), a final LayerNorm, the head tied to the token embedding, no biases (train.py's bias=False),
  weights N(0, 0.02) with the residual projections at 0.02 / sqrt(2 x layers). Trained as train.py
  trains it: batches of 12 random 64-character windows of the training split, AdamW (betas 0.9,
  0.99; weight decay 0.1 on matrices and embeddings only), gradient-norm clip 1.0, 100 warm-up
  steps to lr 1e-3, then cosine decay to 1e-4 (by elapsed time, so it ends with the budget), for
  `--budget` seconds. Scored afterwards (not charged to it) on the same n - 1 targets of the whole
  validation split as the other two, by a sliding window (`--gpt-stride`, default 16): windows of
  64 characters, each scoring its last 16 targets (the first window all of its 64), so every
  character after the first 64 is predicted from 49 to 64 characters before it, and every
  character once. nanoGPT's own estimate (blocks of 64 side by side, mean context 32.5
  characters) is reported too, as `val_bpc_blocks`.

Both run with the same number of torch threads (`--threads`; `auto` times one baseline step with 1
and with 2 threads and uses the faster: on a machine shared with other jobs, 2 OpenMP threads can be
several times slower than 1). `--config '{"hidden_size": 512, ...}'` replaces the plan by explicit
settings (for exploring); `--skip-baseline` / `--skip-charlstm` / `--skip-gpt` leave a contender out. Prints a
Markdown table; `--json` writes everything (configs, curves); `--plot` draws the training curves.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from charlstm.train import autosize
from charlstm.train.batches import EvalStreams, TrainStreams
from charlstm.config import ModelConfig, build_configs
from charlstm.dataset import Dataset, open_dataset
from charlstm.model import CharRNN
from charlstm.train import train
from charlstm.train.validate import EVAL_MIN_STREAM, EVAL_STREAMS, LN2, score_nats

BASELINE = {"num_layers": 2, "hidden_size": 256, "embed_dim": 64, "batch_size": 32, "seq_len": 100,
            "lr": 2e-3, "min_lr": 1e-4, "grad_clip": 1.0}


class BaselineNet(nn.Module):
    """Embedding -> nn.LSTM -> Linear under CharRNN's parameter names (embed., rnn., head.)."""

    def __init__(self, V: int, E: int, H: int, L: int):
        super().__init__()
        self.embed = nn.Embedding(V, E)
        self.rnn = nn.LSTM(E, H, L, batch_first=True)
        self.head = nn.Linear(H, V)

    def forward(self, x: torch.Tensor, state):
        out, state = self.rnn(self.embed(x), state)
        return self.head(out), state


def exact_val_bpc(ds: Dataset, model: CharRNN) -> float:
    """Val bpc exactly as charlstm's trainer computes it (same streams, same evaluator)."""
    val = ds.split("val")
    n_val = min(EVAL_STREAMS, max(1, (len(val) - 1) // EVAL_MIN_STREAM))
    streams = EvalStreams(val, n_val, 256)
    return score_nats(model, streams).item() / streams.n_targets / LN2


def run_baseline(ds: Dataset, budget: float, seed: int = 1234, log_every: int = 10) -> dict[str, Any]:
    """Train the plain baseline for `budget` seconds; return its val bpc and training curve."""
    b = BASELINE
    V = ds.vocab.size
    torch.manual_seed(seed)
    net = BaselineNet(V, b["embed_dim"], b["hidden_size"], b["num_layers"])
    opt = torch.optim.AdamW(net.parameters(), lr=b["lr"])
    streams = TrainStreams(ds.split("train"), b["batch_size"], b["seq_len"])
    curve: list[dict[str, float]] = []
    state, k, step, chars = None, 0, 0, 0
    loss_sum = torch.zeros(())
    t0 = time.monotonic()
    while True:
        elapsed = time.monotonic() - t0
        if elapsed >= budget:
            break
        lr = b["min_lr"] + (b["lr"] - b["min_lr"]) * 0.5 * (1 + math.cos(math.pi * min(elapsed / budget, 1.0)))
        for g in opt.param_groups:
            g["lr"] = lr
        if k == streams.n_chunks:
            k, state = 0, None  # a new pass starts from a blank memory
        x, y = streams.chunk(k)
        k += 1
        logits, state = net(x, state)
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), b["grad_clip"])
        opt.step()
        state = tuple(s.detach() for s in state)
        loss_sum += loss.detach()
        step += 1
        chars += x.numel()
        if step % log_every == 0:
            curve.append({"time": round(time.monotonic() - t0, 2), "step": step,
                          "train_bpc": loss_sum.item() / log_every / LN2})
            loss_sum.zero_()
    train_s = time.monotonic() - t0
    model = CharRNN(ModelConfig(vocab_size=V, embed_dim=b["embed_dim"], hidden_size=b["hidden_size"],
                                num_layers=b["num_layers"]))
    model.load_state_dict(net.state_dict())
    t = time.monotonic()
    bpc = exact_val_bpc(ds, model)
    return {"val_bpc": bpc, "steps": step, "chars": chars, "train_seconds": train_s,
            "eval_seconds": time.monotonic() - t, "chars_per_s": chars / train_s, "config": dict(b),
            "num_parameters": model.num_parameters(), "curve": curve}


def run_charlstm(ds: Dataset, budget: float, threads: int, root: Path, config: dict[str, Any] | None) -> dict[str, Any]:
    """plan() + train() within `budget` seconds of wall clock (calibration and final eval included)."""
    t0 = time.monotonic()
    if config is None:
        mo, to = autosize.plan(ds, budget, "cpu", threads)
    else:
        mo = {k: v for k, v in config.items() if k in {f.name for f in dataclasses.fields(ModelConfig)}}
        to = {k: v for k, v in config.items() if k not in mo}
        to.setdefault("time_budget", budget)
    planned = time.monotonic() - t0
    mcfg, tcfg = build_configs(None, None, {**mo, **to, "device": "cpu", "sample_chars": 0})
    r = train(ds, root / f"run-{ds.name}", mcfg, tcfg, force=True, quiet=True)
    wall = time.monotonic() - t0
    curve = [{"time": round(h["time"] + planned, 2), "step": h["step"], "train_bpc": h["train_bpc"]}
             for h in r.history if h.get("train_bpc") is not None]
    return {"val_bpc": r.final_val_bpc if r.final_val_bpc is not None else r.best_val_bpc,
            "best_val_bpc": r.best_val_bpc, "steps": r.steps, "epochs": r.epoch,
            "chars": r.steps * tcfg.batch_size * tcfg.seq_len * tcfg.grad_accum, "plan_seconds": planned,
            "wall_seconds": wall, "chars_per_s": r.chars_per_s, "model": mo, "train": to,
            "num_parameters": r.num_parameters, "stopped": r.stopped, "curve": curve}


# ----------------------------------------------------------------------------- the GPT anchor
GPT = {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "batch_size": 12, "lr": 1e-3,
       "min_lr": 1e-4, "warmup_iters": 100, "weight_decay": 0.1, "betas": (0.9, 0.99), "grad_clip": 1.0,
       "dropout": 0.0, "bias": False}


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (nanoGPT: PyTorch's has no bias=False)."""

    def __init__(self, n: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, c: dict[str, Any]):
        super().__init__()
        self.n_head, self.n_embd = c["n_head"], c["n_embd"]
        self.c_attn = nn.Linear(c["n_embd"], 3 * c["n_embd"], bias=c["bias"])
        self.c_proj = nn.Linear(c["n_embd"], c["n_embd"], bias=c["bias"])

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class Block(nn.Module):
    def __init__(self, c: dict[str, Any]):
        super().__init__()
        self.ln_1, self.attn = LayerNorm(c["n_embd"], c["bias"]), CausalSelfAttention(c)
        self.ln_2 = LayerNorm(c["n_embd"], c["bias"])
        self.mlp = nn.Sequential()
        self.mlp.c_fc = nn.Linear(c["n_embd"], 4 * c["n_embd"], bias=c["bias"])
        self.mlp.gelu = nn.GELU()
        self.mlp.c_proj = nn.Linear(4 * c["n_embd"], c["n_embd"], bias=c["bias"])

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPTNet(nn.Module):
    """nanoGPT's GPT (model.py) without dropout: forward(idx [B, T]) -> logits [B, T, V]."""

    def __init__(self, V: int, c: dict[str, Any]):
        super().__init__()
        self.block_size = c["block_size"]
        self.wte = nn.Embedding(V, c["n_embd"])
        self.wpe = nn.Embedding(c["block_size"], c["n_embd"])
        self.h = nn.ModuleList(Block(c) for _ in range(c["n_layer"]))
        self.ln_f = LayerNorm(c["n_embd"], c["bias"])
        self.lm_head = nn.Linear(c["n_embd"], V, bias=False)
        self.wte.weight = self.lm_head.weight  # weight tying
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)
        for n, p in self.named_parameters():
            if n.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c["n_layer"]))

    def forward(self, idx):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def gpt_optimizer(net: GPTNet, c: dict[str, Any]) -> torch.optim.AdamW:
    """nanoGPT's configure_optimizers: weight decay on tensors of 2 or more dimensions only."""
    params = [p for p in net.parameters() if p.requires_grad]  # the tied weight once
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": c["weight_decay"]},
                              {"params": rest, "weight_decay": 0.0}], lr=c["lr"], betas=c["betas"])


@torch.no_grad()
def gpt_bits(net: GPTNet, ids: np.ndarray, stride: int, batch: int = 256) -> tuple[float, int]:
    """(total bits, targets) of ids[1:], each target once: windows of block_size characters, the
    first scoring all its targets, each later one (stride characters further on) its last `stride`,
    so a target after the first block_size is predicted from block_size - stride + 1 to block_size
    characters before it. stride = block_size: blocks side by side (nanoGPT's estimate)."""
    net.eval()
    B = net.block_size
    src = torch.from_numpy(np.asarray(ids).astype(np.int64))
    n = len(src) - 1  # targets 1..n
    windows, done = [], 0  # (first input, last target, targets before this window's new ones)
    while done < n:
        hi = min(done + (B if done == 0 else stride), n)
        windows.append((max(0, hi - B), hi, done))
        done = hi
    total = 0.0
    for k in range(0, len(windows), batch):
        group = windows[k:k + batch]
        T = max(hi - a for a, hi, _ in group)
        x = torch.stack([F.pad(src[a:hi], (0, T - (hi - a))) for a, hi, _ in group])
        y = torch.stack([F.pad(src[a + 1:hi + 1], (0, T - (hi - a)), value=-100) for a, hi, _ in group])
        for r, (a, hi, d) in enumerate(group):  # score only the new targets d+1..hi
            y[r, : d - a] = -100
        logits = net(x)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100,
                                 reduction="sum").double().item()
    net.train()
    return total / LN2, n


def run_gpt(ds: Dataset, budget: float, stride: int, seed: int = 1234, log_every: int = 10) -> dict[str, Any]:
    """Train the nanoGPT-configured GPT for `budget` seconds on random windows of the training split;
    score it on the whole validation split (gpt_bits)."""
    c = GPT
    V = ds.vocab.size
    torch.manual_seed(seed)
    net = GPTNet(V, c)
    opt = gpt_optimizer(net, c)
    train_ids = torch.from_numpy(np.asarray(ds.split("train")).astype(np.int64))
    gen = torch.Generator().manual_seed(seed)
    Bk, Bs = c["block_size"], c["batch_size"]
    offsets = torch.arange(Bk)
    curve: list[dict[str, float]] = []
    step, loss_sum = 0, torch.zeros(())
    t0 = time.monotonic()
    while True:
        elapsed = time.monotonic() - t0
        if elapsed >= budget:
            break
        if step < c["warmup_iters"]:
            lr = c["lr"] * (step + 1) / (c["warmup_iters"] + 1)
        else:
            frac = min(elapsed / budget, 1.0)
            lr = c["min_lr"] + (c["lr"] - c["min_lr"]) * 0.5 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        ix = torch.randint(len(train_ids) - Bk, (Bs,), generator=gen)
        x = train_ids[ix[:, None] + offsets]
        y = train_ids[ix[:, None] + offsets + 1]
        logits = net(x)
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), c["grad_clip"])
        opt.step()
        loss_sum += loss.detach()
        step += 1
        if step % log_every == 0:
            curve.append({"time": round(time.monotonic() - t0, 2), "step": step,
                          "train_bpc": loss_sum.item() / log_every / LN2})
            loss_sum.zero_()
    train_s = time.monotonic() - t0
    val = ds.split("val")
    t = time.monotonic()
    bits, n = gpt_bits(net, val, stride)
    eval_s = time.monotonic() - t
    blocks, _ = gpt_bits(net, val, Bk)
    chars = step * Bs * Bk
    return {"val_bpc": bits / n, "val_bpc_blocks": blocks / n, "stride": stride, "scored": n, "steps": step,
            "chars": chars, "train_seconds": train_s, "eval_seconds": eval_s, "chars_per_s": chars / train_s,
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in c.items()},
            "num_parameters": sum(p.numel() for p in net.parameters()), "curve": curve}


def pick_threads(ds: Dataset) -> int:
    """1 or 2 torch threads, whichever runs a baseline-shaped step faster right now (best of 3)."""
    b = BASELINE
    V = ds.vocab.size
    net = BaselineNet(V, b["embed_dim"], b["hidden_size"], b["num_layers"])
    x = torch.randint(0, V, (b["batch_size"], b["seq_len"]))
    best = {}
    for n in (1, 2, 1, 2):
        torch.set_num_threads(n)
        t = time.perf_counter()
        for _ in range(2):
            logits, _ = net(x, None)
            F.cross_entropy(logits.reshape(-1, V), x.reshape(-1)).backward()
        best[n] = min(best.get(n, math.inf), time.perf_counter() - t)
    print(f"threads: 1 -> {best[1]:.2f}s, 2 -> {best[2]:.2f}s for two baseline steps", file=sys.stderr)
    return min(best, key=best.get)


def plot(results: list[dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.2), squeeze=False)
    for ax, res in zip(axes[0], results):
        for side, colour in (("baseline", "tab:grey"), ("charlstm", "tab:blue"), ("gpt", "tab:orange")):
            r = res.get(side)
            if not r:
                continue
            c = r["curve"]
            ax.plot([p["time"] for p in c], [p["train_bpc"] for p in c], color=colour, lw=1,
                    label=f"{side}: val {r['val_bpc']:.3f}")
            ax.axhline(r["val_bpc"], color=colour, ls=":", lw=1)
        ax.set_title(f"{res['corpus']}, {res['budget']:.0f} s", fontsize=9)
        ax.set_xlabel("seconds", fontsize=8)
        ax.set_ylabel("train bpc (dotted: final val bpc)", fontsize=8)
        ax.set_ylim(top=min(6.0, ax.get_ylim()[1]))
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=300.0, help="seconds per run (default 300)")
    ap.add_argument("--corpora", default="english,stdlib", help="dataset names, comma-separated")
    ap.add_argument("--threads", default="auto", help="torch threads for both sides: 1, 2 or auto")
    ap.add_argument("--config", help="JSON settings replacing autosize's plan (flat model/train keys)")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--skip-charlstm", action="store_true")
    ap.add_argument("--skip-gpt", action="store_true")
    ap.add_argument("--gpt-stride", type=int, default=16,
                    help="sliding-window stride when scoring the GPT (1..64; default 16)")
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--plot", help="write the training curves here (PNG)")
    a = ap.parse_args()
    if not 1 <= a.gpt_stride <= GPT["block_size"]:
        ap.error(f"--gpt-stride must be between 1 and {GPT['block_size']}")
    config = json.loads(a.config) if a.config else None
    dss = [open_dataset(n) for n in a.corpora.split(",")]
    threads = pick_threads(dss[0]) if a.threads == "auto" else int(a.threads)
    torch.set_num_threads(threads)
    print(f"torch {torch.__version__}, {threads} thread(s), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, ds in enumerate(dss):
            res: dict[str, Any] = {"corpus": ds.name, "budget": a.budget, "threads": threads,
                                   "train_chars": len(ds.split("train")), "val_chars": len(ds.split("val")),
                                   "vocab_size": ds.vocab.size, "load_before": os.getloadavg()[0]}
            sides = ["baseline", "charlstm", "gpt"]
            order = sides[i % 3:] + sides[:i % 3]  # each corpus starts with another contender
            for side in order:
                if side == "baseline" and not a.skip_baseline:
                    res["baseline"] = run_baseline(ds, a.budget)
                elif side == "charlstm" and not a.skip_charlstm:
                    res["charlstm"] = run_charlstm(ds, a.budget, threads, Path(tmp), config)
                elif side == "gpt" and not a.skip_gpt:
                    res["gpt"] = run_gpt(ds, a.budget, a.gpt_stride)
                if side in res:
                    r = res[side]
                    print(f"{ds.name} {side}: val {r['val_bpc']:.4f} bpc, {r['steps']} steps, "
                          f"{r['chars_per_s']:,.0f} chars/s, load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
            res["load_after"] = os.getloadavg()[0]
            if "baseline" in res and "charlstm" in res:
                res["ratio"] = res["charlstm"]["val_bpc"] / res["baseline"]["val_bpc"]
            if "gpt" in res and "charlstm" in res:
                res["ratio_gpt"] = res["charlstm"]["val_bpc"] / res["gpt"]["val_bpc"]
            results.append(res)
    print("| corpus | baseline val bpc | charlstm val bpc | ratio | gpt val bpc (blocks) | charlstm / gpt | charlstm config | load |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for res in results:
        b, c, g = res.get("baseline"), res.get("charlstm"), res.get("gpt")
        cfg = ""
        if c:
            m, t = c["model"], c["train"]
            cfg = (f"{m.get('num_layers')}x{m.get('hidden_size')} e{m.get('embed_dim')}, batch {t.get('batch_size')} x "
                   f"seq {t.get('seq_len')}, lr {t.get('lr')}")
        print(f"| {res['corpus']} | {b['val_bpc']:.3f} |" if b else f"| {res['corpus']} | - |", end="")
        print(f" {c['val_bpc']:.3f} |" if c else " - |", end="")
        print(f" {res['ratio']:.3f} |" if "ratio" in res else " - |", end="")
        print(f" {g['val_bpc']:.3f} ({g['val_bpc_blocks']:.3f}) |" if g else " - |", end="")
        print(f" {res['ratio_gpt']:.3f} |" if "ratio_gpt" in res else " - |", end="")
        print(f" {cfg} | {res['load_before']:.1f}-{res['load_after']:.1f} |")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if a.plot:
        plot(results, a.plot)


if __name__ == "__main__":
    main()
