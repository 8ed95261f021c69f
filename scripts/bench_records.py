"""Training speed on record datasets: characters trained per second by charlstm's `train()`.

    python scripts/bench_records.py --dataset data/fortunes --layers 1 --hidden 256 --batch 16 --seq 32 --steps 300
    python scripts/bench_records.py --synthetic counting --layers 1 --hidden 10 --embed 8 --batch 32 --seq 50

Records are laid out one per row from the start of a record (charlstm.train.records); before that
layout they were read as long streams. Run this script with PYTHONPATH pointing at each version of
the code, alternately, to compare the two (docs/benchmarks.md, "Records"). The rate is the one the
trainer reports (real characters, padding excluded, between its log points, the first interval
and the final evaluation excluded), the median over `--repeats` runs in this process, one thread.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from charlstm.config import ModelConfig, TrainConfig
from charlstm.dataset import open_dataset
from charlstm.train import train


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="a record dataset folder (charlstm data tweets / synthetic)")
    src.add_argument("--synthetic", help="build this synthetic task (4,000 sequences, seed 0) in a temp folder")
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=32)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if a.synthetic:
            from charlstm.corpora.synthetic import write_synthetic

            ds = write_synthetic(a.synthetic, num=4000, seed=0, data_dir=Path(tmp) / "data")
        else:
            ds = open_dataset(a.dataset)
        m = ModelConfig(cell="lstm", embed_dim=a.embed, hidden_size=a.hidden, num_layers=a.layers)
        log_every = max(10, a.steps // 10)
        t = TrainConfig(batch_size=a.batch, seq_len=a.seq, max_steps=a.steps, log_every=log_every,
                        eval_every=10**9, eval_max_chars=2000, sample_chars=0, device="cpu")
        rates = []
        for k in range(a.repeats):
            r = train(ds, Path(tmp) / f"run{k}", m, t, quiet=True)
            per = [h["chars_per_s"] for h in r.history[1:] if h.get("chars_per_s")]
            rates.append(statistics.median(per))
    print(f"{ds.name}: lstm {a.layers}x{a.hidden}, batch {a.batch} x {a.seq}, {a.steps} steps, {a.threads} thread(s): "
          f"{statistics.median(rates):,.0f} chars/s (median of {a.repeats}: "
          + ", ".join(f"{x:,.0f}" for x in rates) + ")")


if __name__ == "__main__":
    sys.exit(main())
