#!/usr/bin/env python
"""Tracing benchmarks (docs/benchmarks.md, "Tracing").

1. Throughput on CPU for a 3x512 LSTM (random weights, 100 symbols): the model's own forward pass
   (fused kernel, batch 1, no tracing), `trace_ids` (every kind of every layer, float32, in
   memory), and for comparison the naive step-by-step explicit cells (`cells.unroll`).
2. Peak memory of `charlstm trace RUN --file F -o out.npz` for texts of several sizes (default 1
   and 10 MB), each in a fresh process (its peak RSS, VmHWM), with a small LSTM so it finishes in
   minutes: memory is bounded by the chunk, not by the text.

    .venv/bin/python scripts/bench_trace.py            # both parts
    .venv/bin/python scripts/bench_trace.py --quick    # small sizes, a smoke test
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from charlstm import cells
from charlstm.checkpoint import save_model
from charlstm.runs import BEST, write_config
from charlstm.config import ModelConfig, TrainConfig
from charlstm.model import CharRNN
from charlstm.trace import trace_ids
from charlstm.vocab import Vocab

ALPHABET = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:()[]{}=+-*/'\"\n\t_#<>!?"


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def throughput(layers: int, hidden: int, chars: int, repeats: int) -> None:
    torch.manual_seed(0)
    vocab = Vocab.build_char(Counter(ALPHABET))
    model = CharRNN(ModelConfig(cell="lstm", vocab_size=vocab.size, embed_dim=64, hidden_size=hidden,
                                num_layers=layers)).eval()
    ids = np.random.default_rng(0).integers(0, vocab.size, chars)
    x = torch.as_tensor(ids)[None]
    with torch.inference_mode():
        model(x[:, :64])  # warm up oneDNN
        fwd = best_of(lambda: model(x), repeats)
    tr = best_of(lambda: trace_ids(model, vocab, ids), repeats)
    n_naive = min(chars, 1024)

    def naive():
        with torch.inference_mode():
            h = model.embed(x[:, :n_naive])
            st = model.init_state(1)
            for l in range(layers):
                h, _, _ = cells.unroll("lstm", h, tuple(s[l] for s in st), model.layer_params(l), record=cells.KINDS["lstm"])
            model.head(h)

    nv = best_of(naive, max(1, repeats - 1))
    print(f"throughput, {layers}x{hidden} LSTM, {chars:,} characters, torch threads {torch.get_num_threads()}:")
    print(f"  forward only (fused, no trace)   {chars / fwd:>10,.0f} chars/s")
    print(f"  trace_ids, all 6 kinds x {layers} layers {chars / tr:>10,.0f} chars/s  ({tr / fwd:.2f}x the forward time)")
    print(f"  naive cells.unroll, all kinds    {n_naive / nv:>10,.0f} chars/s  (on {n_naive:,} characters)")


def make_run(root: Path, layers: int, hidden: int) -> Path:
    vocab = Vocab.build_char(Counter(ALPHABET))
    torch.manual_seed(0)
    mcfg = ModelConfig(cell="lstm", vocab_size=vocab.size, embed_dim=16, hidden_size=hidden, num_layers=layers)
    path = root / "run"
    write_config(path, mcfg, TrainConfig(), {"name": "bench", "path": "", "meta": {}}, vocab.to_json())
    save_model(path / BEST, CharRNN(mcfg).eval(), {"step": 0, "val_bpc": None})
    return path


# The child reports its own peak (VmHWM of its exec'd image) at exit. ru_maxrss from wait4 would
# also count the moment between fork and exec, when the child is a copy of this (large) process.
CHILD = """
import atexit, sys
def report():
    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
    open(sys.argv[1], 'w').write(hwm)
atexit.register(report)
from charlstm.cli import main
main(sys.argv[2:])
"""


def rss_run(run: Path, text_file: Path, out: Path, chunk: int, extra: list[str]) -> tuple[float, float, int]:
    """(peak RSS MB, seconds, output bytes) of one `charlstm trace` in a fresh process."""
    hwm = out.with_suffix(".hwm")
    cmd = [sys.executable, "-c", CHILD, str(hwm), "trace", str(run), "--file", str(text_file), "-o", str(out),
           "--chunk", str(chunk), "-q", *extra]
    t = time.perf_counter()
    r = subprocess.run(cmd, env={**os.environ, "CHARLSTM_QUIET": "1"}, stdout=subprocess.DEVNULL)
    secs = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}")
    peak = int(hwm.read_text()) / 1024
    hwm.unlink()
    return peak, secs, out.stat().st_size


def memory(sizes_mb: list[float], layers: int, hidden: int, chunk: int, keep: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench_trace.", dir=keep))
    try:
        run = make_run(root, layers, hidden)
        rng = np.random.default_rng(0)
        alphabet = np.array(list(ALPHABET))
        print(f"peak RSS of `charlstm trace RUN --file F -o out.npz --chunk {chunk} --kinds h,c --dtype float16` "
              f"({layers}x{hidden} LSTM, fresh process each):")
        base = None
        for mb in sizes_mb:
            n = int(mb * 1_000_000)
            f = root / f"text{mb}.txt"
            f.write_text("".join(alphabet[rng.integers(0, len(alphabet), n)]), encoding="utf-8")
            out = root / "out.npz"
            peak, secs, size = rss_run(run, f, out, chunk, ["--kinds", "h,c", "--dtype", "float16"])
            base = base or peak
            print(f"  {mb:>6g} MB text  {n:>12,} chars  peak RSS {peak:>7.0f} MB  output {size / 1e6:>8.0f} MB  "
                  f"{secs:>6.0f} s  ({n / secs:,.0f} chars/s)")
            out.unlink()
            f.unlink()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test, not numbers to quote")
    ap.add_argument("--chars", type=int, default=8192, help="characters for the throughput part")
    ap.add_argument("--sizes", default="1,10", help="text sizes in MB for the memory part")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default torch's own; 1 is faster on a busy machine)")
    ap.add_argument("--tmp", default=None, help="folder for the temporary run, text and output (default: system temp)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
        os.environ["OMP_NUM_THREADS"] = str(a.threads)  # for the `charlstm trace` child processes
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    if not a.skip_throughput:
        if a.quick:
            throughput(2, 128, 2048, 2)
        else:
            throughput(3, 512, a.chars, 3)
    if not a.skip_memory:
        sizes = [0.1, 1] if a.quick else [float(s) for s in a.sizes.split(",")]
        memory(sizes, 1, 64, 4096, a.tmp)


if __name__ == "__main__":
    main()
