"""Sampling speed on the CPU: charlstm's carried-state generator against (a) a naive generator that
re-runs the model over the whole context at every step, (b) the limit set by reading every weight
once per step (weight bytes / memory read bandwidth, measured in the same run), and (c) the obvious
carried-state loop that calls the fused module with T=1 (why charlstm uses its own step).

    .venv/bin/python scripts/bench_sample.py                       # presets tiny..large, 1 thread
    .venv/bin/python scripts/bench_sample.py --threads 2 --presets tiny small
    .venv/bin/python scripts/bench_sample.py --json out/bench_sample.json

Random weights (speed does not depend on them), LSTM cells, a 98-symbol vocabulary (printable
ASCII, newline, <unk>, <eot>). Speeds are the best of --repeats runs of about --seconds each;
chars/s counts generated characters (all rows for batch 64). Weight bytes: every parameter except
the embedding table (a step reads one row of it). "read GB/s" sums a 256 MB tensor right before
and after each batch-1 run; "of limit" is the median over the runs of (speed x weight bytes /
that bandwidth). Everything is reported by wall clock and by the process's CPU time (the latter
discounts time the process spent descheduled on a busy machine). Prints markdown tables.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter

import torch

from charlstm.config import PRESETS, ModelConfig
from charlstm.model import CharRNN
from charlstm.sample import SampleOptions, generate, naive_generate, sample_next, temper
from charlstm.vocab import Vocab


def clocked(fn) -> tuple[float, float, object]:
    """Run fn() -> (wall seconds, CPU seconds of this process, fn's result)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def read_bandwidth(mb: int = 512, repeats: int = 5) -> tuple[float, float]:
    """Best read bandwidth in bytes/s, by wall clock and by CPU time: summing a tensor much larger
    than the caches."""
    x = torch.ones(mb * (1 << 20) // 4)
    best = [0.0, 0.0]
    for _ in range(repeats):
        w, c, _ = clocked(x.sum)
        best = [max(best[0], x.numel() * 4 / w), max(best[1], x.numel() * 4 / max(c, 1e-9))]
    return best[0], best[1]


def weight_bytes(model: CharRNN) -> int:
    return sum(p.numel() * p.element_size() for n, p in model.named_parameters() if not n.startswith("embed"))


def timed(fn, seconds: float, repeats: int, first: int, rows: int = 1) -> tuple[float, float]:
    """chars/s of fn(length) -> chars (length per row, `rows` rows), by wall clock and by CPU time,
    with the length scaled to take about `seconds`; the best of `repeats` runs for each."""
    w, c, n = clocked(lambda: fn(first))
    rate = n / max(w, 1e-9)
    best = [0.0, 0.0]
    for _ in range(repeats):
        length = max(first, int(rate * seconds / rows))
        w, c, n = clocked(lambda: fn(length))
        rate = n / w
        best = [max(best[0], rate), max(best[1], n / max(c, 1e-9))]
    return best[0], best[1]


def fused_t1(model: CharRNN, vocab: Vocab, length: int, seed: int = 0) -> int:
    """The obvious carried-state loop: model.forward on one character at a time (nn.LSTM, T=1)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((1, 1), vocab.eot_id, dtype=torch.long)
    state = None
    with torch.inference_mode():
        for _ in range(length):
            logits, state = model(x, state)
            x = sample_next(temper(logits[:, -1], 1.0, vocab.unk_id), generator=g)[:, None]
            x.item()  # the character is needed on the host (to print it)
    return length


def bench_preset(name: str, vocab: Vocab, seconds: float, repeats: int, naive_len: int, threads) -> dict:
    p = {k: v for k, v in PRESETS[name]["model"].items() if k != "dropout"}
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(cell="lstm", vocab_size=vocab.size, **p)).eval()
    out = {"preset": name, "layers": p["num_layers"], "hidden": p["hidden_size"], "embed": p["embed_dim"],
           "vocab": vocab.size, "weight_bytes": weight_bytes(model)}
    free = dict(stop_at_eot=False, seed=1)

    def fast(n: int, batch: int = 1) -> int:
        g = generate(model, vocab, [], SampleOptions(length=n, num_samples=batch, **free), threads=threads)
        return sum(len(s.ids) for s in g.samples)

    # Batch 1 against the limit, in rounds: bandwidth right before and after each run, because on
    # a shared machine it drifts with the neighbours' memory traffic; each round gives one ratio.
    w, c, n = clocked(lambda: fast(20))
    length = max(20, int(n / w * seconds))
    rates, bws, ratios = [], [], []
    for _ in range(repeats):
        b0 = read_bandwidth(mb=256, repeats=2)
        w, c, n = clocked(lambda: fast(length))
        b1 = read_bandwidth(mb=256, repeats=2)
        bw = (max(b0[0], b1[0]), max(b0[1], b1[1]))  # the stricter limit
        rate = (n / w, n / c)
        rates.append(rate)
        bws.append(bw)
        ratios.append((rate[0] * out["weight_bytes"] / bw[0], rate[1] * out["weight_bytes"] / bw[1]))
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    out["fast_b1"] = (max(r[0] for r in rates), max(r[1] for r in rates))
    out["bandwidth"] = (med([b[0] for b in bws]), med([b[1] for b in bws]))
    out["fraction_of_limit"] = (med([r[0] for r in ratios]), med([r[1] for r in ratios]))
    out["fraction_rounds"] = ratios
    out["fast_b64"] = timed(lambda n: fast(n, 64), seconds, repeats, 5, rows=64)
    out["fused_t1_b1"] = timed(lambda n: fused_t1(model, vocab, n), seconds, max(1, repeats // 2), 5)
    w, c, _ = clocked(lambda: naive_generate(model, vocab, [], SampleOptions(length=naive_len, **free)))
    out["naive_b1"] = (naive_len / w, naive_len / c)
    out["naive_len"] = naive_len
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads for everything, bandwidth included")
    ap.add_argument("--auto-threads", action="store_true",
                    help="let generate() choose its threads (as the CLI does) instead of --threads")
    ap.add_argument("--seconds", type=float, default=1.5, help="target duration of each timed run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--naive-len", type=int, default=100, help="characters the naive generator writes")
    ap.add_argument("--json", default=None, help="also write the results here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    vocab = Vocab.build_char(Counter([chr(c) for c in range(32, 127)] + ["\n"]))
    load0 = os.getloadavg()[0]
    rows = []
    for name in a.presets:
        r = bench_preset(name, vocab, a.seconds, a.repeats, a.naive_len, "auto" if a.auto_threads else a.threads)
        rows.append(r)
        print(f"{name}: {r['fast_b1'][0]:,.0f} chars/s at batch 1 (wall)", file=sys.stderr, flush=True)
    for r in rows:
        r["limit_b1"] = (r["bandwidth"][0] / r["weight_bytes"], r["bandwidth"][1] / r["weight_bytes"])
    info = {"torch": torch.__version__, "threads": a.threads, "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "loadavg_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)]}
    try:
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"\n{info['cpu']}, {info['cpus']} CPUs, torch {info['torch']}, {a.threads} thread(s); "
          f"load average {info['loadavg_start_end'][0]} -> {info['loadavg_start_end'][1]}\n")
    for k, what in ((0, "wall clock"), (1, "CPU time of the process")):
        print(f"chars/s by {what}:\n")
        print("| preset | layers × hidden | weights (MB) | read GB/s | limit (b) | batch 1 | of limit | "
              "fused T=1, batch 1 | naive (a), batch 1 | batch 64 |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['preset']} | {r['layers']} × {r['hidden']} | {r['weight_bytes'] / 1e6:.1f} | "
                  f"{r['bandwidth'][k] / 1e9:.1f} | {r['limit_b1'][k]:,.0f} | {r['fast_b1'][k]:,.0f} | {r['fraction_of_limit'][k]:.0%} | "
                  f"{r['fused_t1_b1'][k]:,.0f} | {r['naive_b1'][k]:,.0f} ({r['naive_len']} chars) | {r['fast_b64'][k]:,.0f} |")
        print()
    if a.json:
        os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
        with open(a.json, "w") as f:
            json.dump({"info": info, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
