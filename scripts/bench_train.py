"""Training speed: charlstm's loop against a bare PyTorch loop of the same shape, per preset.

    python scripts/bench_train.py                          # tiny, small, medium on a synthetic corpus
    python scripts/bench_train.py --dataset stdlib --presets small --steps 60 --repeats 3
    python scripts/bench_train.py --cells lstm,peephole --presets tiny --steps 20
    python scripts/bench_train.py --curve checkpoints/small-10m --out docs/img/train-small-10m.png

The bare loop is what one would write by hand: Embedding -> nn.LSTM/GRU/RNN -> Linear, the same
batch x seq-len streams as one tensor, hidden state carried and detached, AdamW, clip_grad_norm_,
and no host syncs. charlstm is timed through its public `train()` (logging, NaN checks and snapshots
included; the one final evaluation excluded) with a callback at its log points. Both run in the
same process, alternately, `--repeats` rounds; the table shows medians, of wall-clock and of process
CPU time (steadier on a shared machine), and the median of the per-round ratios. Prints Markdown.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from charlstm.train.batches import TrainStreams
from charlstm.config import build_configs
from charlstm.dataset import DatasetBuilder, open_dataset
from charlstm.model import CharRNN, detach_state
from charlstm.train import train
from charlstm.vocab import Vocab


def synthetic_dataset(root: Path, n: int = 2_000_000) -> Path:
    """Random text over ~100 symbols (speed does not depend on what is learnt)."""
    rng = np.random.default_rng(0)
    alphabet = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab = Vocab.build_char(Counter(alphabet))
    ids = rng.integers(2, vocab.size, size=n).astype(np.uint8)
    with DatasetBuilder(root / "bench-synthetic", force=True) as b:
        b.write_split("train", ids[: n - 50_000])
        b.write_split("val", ids[n - 50_000:])
        b.commit(vocab, {"records": False, "source": {"kind": "synthetic-random"}, "options": {}, "stats": {}})
    return root / "bench-synthetic"


class Clock:
    """Wall and process CPU time. On a shared machine the CPU time is the steadier measure of work:
    waiting for a core inflates wall time but not CPU time (with 1 thread; several threads can spin)."""

    def __init__(self):
        self.marks: dict[int, tuple[float, float]] = {}

    def mark(self, step: int) -> None:
        self.marks[step] = (time.perf_counter(), time.process_time())

    def rates(self, a: int, b: int, chars_per_step: int) -> tuple[float, float]:
        (w0, c0), (w1, c1) = self.marks[a], self.marks[b]
        n = (b - a) * chars_per_step
        return n / (w1 - w0), n / (c1 - c0)


def bare_loop(ds, mcfg, tcfg, steps: int, warmup: int) -> tuple[float, float]:
    """(wall, cpu) chars/s of a hand-written TBPTT loop of the same shape, after `warmup` steps."""
    torch.manual_seed(tcfg.seed)
    model = CharRNN(mcfg)  # the same modules: nn.Embedding, nn.LSTM (fused), nn.Linear
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    streams = TrainStreams(ds.split("train"), tcfg.batch_size, tcfg.seq_len)
    state, V = None, mcfg.vocab_size
    clock = Clock()
    for i in range(warmup + steps):
        if i == warmup:
            clock.mark(i)
        k = i % streams.n_chunks
        if k == 0:
            state = None
        x, y = streams.chunk(k)
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
        opt.step()
        state = detach_state(state)
    loss.item()
    clock.mark(warmup + steps)
    return clock.rates(warmup, warmup + steps, tcfg.batch_size * tcfg.seq_len)


def charlstm_loop(ds, mcfg, tcfg, steps: int, warmup: int, root: Path) -> tuple[float, float]:
    """(wall, cpu) chars/s of charlstm.train over steps warmup..warmup+steps, timed at its log points
    (a callback), so its logging, NaN checks and snapshots count and its final evaluation does not."""
    t = dataclasses.replace(tcfg, max_steps=warmup + steps, eval_every=10**9, sample_chars=0, eval_max_chars=2000,
                            log_every=10, device="cpu")
    clock = Clock()
    train(ds, root / "run", mcfg, t, force=True, quiet=True,
          callbacks=[lambda ev: clock.mark(ev.step) if ev.kind == "log" else None])
    # the last log point runs the final evaluation before its callback: time up to the one before
    return clock.rates(warmup, warmup + steps - 10, t.batch_size * t.seq_len)


def overhead(ds, mcfg, tcfg, steps: int = 5) -> dict[str, float]:
    """CPU seconds of what charlstm adds to a bare step, measured directly (steady under load):
    per step the on-device loss/NaN accumulators and the learning-rate update; per log point
    (every log_every steps) the in-memory snapshot, one host read, and a metrics line."""
    import json as _json

    from charlstm.train.state import Snapshot

    torch.manual_seed(0)
    model = CharRNN(mcfg)
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr)
    streams = TrainStreams(ds.split("train"), tcfg.batch_size, tcfg.seq_len)
    V, state = mcfg.vocab_size, None
    c0 = time.process_time()
    for i in range(steps):
        x, y = streams.chunk(i)
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
        opt.step()
        state = detach_state(state)
    step = (time.process_time() - c0) / steps
    acc, bad = torch.zeros(()), torch.zeros(())
    c0 = time.process_time()
    for _ in range(1000):
        acc += loss.detach()
        bad += ~torch.isfinite(norm)
        for g in opt.param_groups:
            g["lr"] = tcfg.lr
    per_step = (time.process_time() - c0) / 1000
    c0 = time.process_time()
    for _ in range(10):
        Snapshot(model, opt, state, {"step": 0}, torch.device("cpu"))
        torch.stack([acc.double(), bad.double()]).tolist()
        _json.dumps({"step": 1, "train_loss": 1.0, "lr": 1e-3})
    per_log = (time.process_time() - c0) / 10
    added = per_step + per_log / tcfg.log_every
    return {"step_s": step, "per_step_s": per_step, "per_log_s": per_log, "predicted_ratio": step / (step + added)}


def plot_curve(run: Path, out: Path) -> None:
    """Training and validation bpc against time from a run's metrics.jsonl, as a small PNG."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    tr = [(r["time"] / 60, r["train_bpc"]) for r in rows if r.get("train_bpc") is not None]
    va = [(r["time"] / 60, r["val_bpc"]) for r in rows if r.get("val_bpc") is not None]
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=100)
    ax.plot(*zip(*tr), lw=1, color="#4c72b0", label="train (10-step mean)")
    if va:
        ax.plot(*zip(*va), "o-", color="#c44e52", label="validation (exact)")
        for x, y in va[-1:]:
            ax.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(-10, 8), fontsize=8)
    ax.set_xlabel("minutes")
    ax.set_ylabel("bits per character")
    ax.set_ylim(bottom=max(0.0, min(y for _, y in tr + va) - 0.3), top=min(8.0, max(y for _, y in tr[2:] + va) + 0.3))
    ax.set_title(f"charlstm train: run {run.name}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", help="dataset name or folder (default: a synthetic random corpus)")
    ap.add_argument("--presets", default="tiny,small,medium")
    ap.add_argument("--cells", default="lstm")
    ap.add_argument("--steps", type=int, default=50, help="timed steps (a multiple of 10)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps first (a multiple of 10)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds of each loop")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--overhead", action="store_true", help="instead: measure charlstm's added work per step directly")
    ap.add_argument("--curve", type=Path, metavar="RUN_DIR", help="instead: plot this run's learning curve")
    ap.add_argument("--out", type=Path, default=Path("docs/img/train-curve.png"))
    args = ap.parse_args()
    if args.curve:
        plot_curve(args.curve, args.out)
        return
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ds = open_dataset(args.dataset) if args.dataset else open_dataset(synthetic_dataset(root))
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dataset {ds.name} "
              f"({ds.meta['splits']['train']['tokens']:,} train chars)", file=sys.stderr)
        if args.overhead:
            print("| preset | bare step (CPU s) | added per step | added per log point | predicted ratio |")
            print("|---|---:|---:|---:|---:|")
            for preset in args.presets.split(","):
                m, t = build_configs(preset)
                m.vocab_size = ds.vocab.size
                o = overhead(ds, m, t)
                print(f"| {preset} | {o['step_s']:.3f} | {o['per_step_s'] * 1e6:.0f} µs | {o['per_log_s'] * 1e3:.1f} ms | "
                      f"{o['predicted_ratio']:.4f} |", flush=True)
            return
        print("| preset | cell | model | batch x seq | bare loop chars/s (wall / cpu) | charlstm chars/s (wall / cpu) "
              "| ratio wall | ratio cpu |")
        print("|---|---|---|---|---:|---:|---:|---:|")
        for preset in args.presets.split(","):
            for cell in args.cells.split(","):
                m, t = build_configs(preset, overrides={"cell": cell})
                m.vocab_size = ds.vocab.size
                bare, ours = [], []
                for _ in range(args.repeats):
                    bare.append(bare_loop(ds, m, t, args.steps, args.warmup))
                    ours.append(charlstm_loop(ds, m, t, args.steps + 10, args.warmup, root))
                    print(f"  {preset}/{cell}: bare {bare[-1][0]:,.0f} / {bare[-1][1]:,.0f}, "
                          f"charlstm {ours[-1][0]:,.0f} / {ours[-1][1]:,.0f} chars/s (wall / cpu)", file=sys.stderr)
                med = lambda xs: float(np.median(xs))
                bw, bc = med([b[0] for b in bare]), med([b[1] for b in bare])
                ow, oc = med([o[0] for o in ours]), med([o[1] for o in ours])
                rw = med([o[0] / b[0] for b, o in zip(bare, ours)])
                rc = med([o[1] / b[1] for b, o in zip(bare, ours)])
                print(f"| {preset} | {cell} | {m.num_layers}x{m.hidden_size} | {t.batch_size}x{t.seq_len} | "
                      f"{bw:,.0f} / {bc:,.0f} | {ow:,.0f} / {oc:,.0f} | {rw:.2f} | {rc:.2f} |", flush=True)
        print(f"\n(medians of {args.repeats} alternating rounds of {args.steps} steps after {args.warmup}; "
              f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
