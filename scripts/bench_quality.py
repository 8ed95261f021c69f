#!/usr/bin/env python
"""Quality per CPU-second: charlstm's auto-sized `train --time-budget` against a plain baseline.

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

Both run with the same number of torch threads (`--threads`; `auto` times one baseline step with 1
and with 2 threads and uses the faster: on a machine shared with other jobs, 2 OpenMP threads can be
several times slower than 1). `--config '{"hidden_size": 512, ...}'` replaces the plan by explicit
settings (for exploring); `--skip-baseline` / `--skip-charlstm` run one side only. Prints a
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
        for side, colour in (("baseline", "tab:grey"), ("charlstm", "tab:blue")):
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
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--plot", help="write the training curves here (PNG)")
    a = ap.parse_args()
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
            order = ["baseline", "charlstm"] if i % 2 == 0 else ["charlstm", "baseline"]
            for side in order:
                if side == "baseline" and not a.skip_baseline:
                    res["baseline"] = run_baseline(ds, a.budget)
                elif side == "charlstm" and not a.skip_charlstm:
                    res["charlstm"] = run_charlstm(ds, a.budget, threads, Path(tmp), config)
                if side in res:
                    r = res[side]
                    print(f"{ds.name} {side}: val {r['val_bpc']:.4f} bpc, {r['steps']} steps, "
                          f"{r['chars_per_s']:,.0f} chars/s, load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
            res["load_after"] = os.getloadavg()[0]
            if "baseline" in res and "charlstm" in res:
                res["ratio"] = res["charlstm"]["val_bpc"] / res["baseline"]["val_bpc"]
            results.append(res)
    print("| corpus | baseline val bpc | charlstm val bpc | ratio | charlstm config | load |")
    print("|---|---:|---:|---:|---|---|")
    for res in results:
        b, c = res.get("baseline"), res.get("charlstm")
        cfg = ""
        if c:
            m, t = c["model"], c["train"]
            cfg = (f"{m.get('num_layers')}x{m.get('hidden_size')} e{m.get('embed_dim')}, batch {t.get('batch_size')} x "
                   f"seq {t.get('seq_len')}, lr {t.get('lr')}")
        print(f"| {res['corpus']} | {b['val_bpc']:.3f} |" if b else f"| {res['corpus']} | - |", end="")
        print(f" {c['val_bpc']:.3f} |" if c else " - |", end="")
        print(f" {res['ratio']:.3f} |" if "ratio" in res else " - |", end="")
        print(f" {cfg} | {res['load_before']:.1f}-{res['load_after']:.1f} |")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if a.plot:
        plot(results, a.plot)


if __name__ == "__main__":
    main()
