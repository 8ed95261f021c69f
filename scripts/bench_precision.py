"""bf16 against fp32 on this CPU, through `charlstm train` as a user runs it: speed, and quality.

    python scripts/bench_precision.py                                  # needs data/stdlib
    python scripts/bench_precision.py --dataset stdlib --steps 1500 --budget 5m --speed-steps 40

Three tables, each run once per precision in alternation, every run a fresh `charlstm train`
process (`--precision fp32` / `--precision bf16`, `--seed` as given (0), OMP_NUM_THREADS as you set it):
1. speed: training characters per second per model size (median of the logged rates after the
   first log point), and the ratio;
2. same steps: one model trained for `--steps` steps in each, its final validation bpc (the whole
   validation split, scored in fp32 as every CPU evaluation is);
3. same wall-clock: the same model trained for `--budget` in each (no autosize), its final bpc.

Prints the processor's name and bf16 flags first, then Markdown. Runs go in a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from charlstm.precision import cpu_flags, cpu_has_bf16

SIZES = {"1x64": (1, 64), "1x128": (1, 128), "2x128": (2, 128), "1x256": (1, 256), "1x512": (1, 512), "2x512": (2, 512), "3x1024": (3, 1024)}


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def train(ckpt: Path, dataset: str, run: str, precision: str, size: tuple[int, int], extra: list[str],
          seed: int = 0, batch: tuple[int, int] = (32, 64)) -> dict:
    """One `charlstm train` process; returns its run summary (charlstm runs --json) and logged rates."""
    layers, hidden = size
    cmd = [sys.executable, "-m", "charlstm", "train", dataset, "--run", run, "--precision", precision,
           "--layers", str(layers), "--hidden", str(hidden), "--batch-size", str(batch[0]), "--seq-len", str(batch[1]),
           "--seed", str(seed), "--save-every", "off", "-q", *extra]
    env = {**os.environ, "CHARLSTM_CHECKPOINTS": str(ckpt)}
    subprocess.run(cmd, check=True, env=env)
    out = subprocess.run([sys.executable, "-m", "charlstm", "runs", "--json"], check=True, env=env,
                         capture_output=True, text=True).stdout
    summary = next(json.loads(l) for l in out.splitlines() if l.strip() and json.loads(l).get("name") == run)
    rates = [json.loads(l).get("chars_per_s") for l in open(ckpt / run / "metrics.jsonl", encoding="utf-8")]
    summary["rates"] = [r for r in rates if r][1:] or [r for r in rates if r]
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="stdlib")
    ap.add_argument("--sizes", default="1x256,1x512,2x512,3x1024")
    ap.add_argument("--speed-steps", type=int, default=40)
    ap.add_argument("--model", default="2x512", help="the model of the two quality tables")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--budget", default="5m")
    ap.add_argument("--batch", default="32x64", help="batch size x sequence length of every run")
    ap.add_argument("--seed", type=int, default=0, help="the runs' --seed (same in both precisions)")
    ap.add_argument("--skip", default="", help="comma list of tables to skip: speed,steps,budget")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    flags = sorted(f for f in cpu_flags() if "bf16" in f or f.startswith("amx"))
    print(f"{cpu_name()}; flags: {' '.join(flags) or 'none'} (bf16 native: {cpu_has_bf16()}); "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}\n")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp)
        n = 0

        def run(precision: str, size: tuple[int, int], extra: list[str]) -> dict:
            nonlocal n
            n += 1
            return train(ckpt, args.dataset, f"r{n}", precision, size, extra, args.seed,
                         tuple(int(x) for x in args.batch.split("x")))

        if "speed" not in skip:
            print("| model | fp32 chars/s | bf16 chars/s | bf16 / fp32 |\n|---|---|---|---|")
            for name in args.sizes.split(","):
                size = SIZES[name]
                extra = ["--max-steps", str(args.speed_steps), "--eval-every", str(10 ** 9), "--eval-chars", "2000"]
                rate = {p: statistics.median(run(p, size, extra)["rates"]) for p in ("fp32", "bf16")}
                print(f"| {name} | {rate['fp32']:,.0f} | {rate['bf16']:,.0f} | {rate['bf16'] / rate['fp32']:.2f}x |",
                      flush=True)
            print()
        size = SIZES[args.model]
        for table, extra in (("steps", ["--max-steps", str(args.steps), "--eval-every", str(args.steps)]),
                             ("budget", ["--time-budget", args.budget, "--no-autosize"])):
            if table in skip:
                continue
            what = f"{args.steps} steps" if table == "steps" else f"{args.budget} of wall-clock"
            print(f"| {args.model}, {what} | steps | chars/s | val bpc |\n|---|---|---|---|")
            for p in ("fp32", "bf16"):
                s = run(p, size, extra)
                print(f"| {p} | {s['steps']:,} | {statistics.median(s['rates']):,.0f} | {s['best_val_bpc']:.4f} |",
                      flush=True)
            print()


if __name__ == "__main__":
    main()
