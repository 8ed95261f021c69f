#!/usr/bin/env python
"""Dynamic evaluation: choose its settings on held-out text, then measure it on other text.

    .venv/bin/charlstm data code                                        # data/stdlib
    OMP_NUM_THREADS=1 .venv/bin/charlstm train stdlib --run stdlib-20m --time-budget 20m
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_dynamic.py --run stdlib-20m --json dyn-stdlib.json
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_dynamic.py --run stdlib-20m --run linux-20m --no-report \
        --try 3e-3,1e-3,50 --try 4e-3,5e-3,50          # given settings on the tuning part of each run
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_dynamic.py --run linux-20m --no-tune   # report, defaults only

The validation split of the run's dataset is cut in two: its first `--tune-chars` characters
(default 50,000) choose the settings, the rest is what the results are reported on; no setting is
chosen on the text it is reported on.

1. Tuning (skipped with --no-tune), on the first part, a coordinate search: the step sizes
   (--steps) with decay 0 and segment 50; the decays (--decays) at the best step; the segment
   lengths (--segments) at the best of those; all with the running RMS statistics of
   charlstm.dynamic. Then Krause et al.'s alternative, fixed statistics from 20 x 10 segments of
   the training split (charlstm.dynamic.gradient_ms), with the step sizes again at the best decay
   and segment. `--try STEP,DECAY,SEGMENT` (repeatable) measures the given settings instead, on the
   tuning part of every `--run`, with the sum over runs (how the defaults were picked: the
   coordinate search on one corpus, then its neighbourhood on the tuning parts of both).
2. Report (skipped with --no-report), on the rest: static scoring (charlstm.score.score_ids, what `charlstm eval` does),
   dynamic evaluation with the library's defaults (what `charlstm eval --dynamic` does) and with this
   run's tuned settings, and xz -9e on the same characters (charlstm.baseline). Static and dynamic
   run back to back in this process with the same threads (`--threads`, default 1), timed by wall
   clock. On a machine shared with other jobs one long run each is at the mercy of the load, so the
   cost is measured apart: static and dynamic (defaults) alternately, `--cost-repeats` times each
   (default 3), on the first `--cost-chars` characters of the report part (default 40,000); cost =
   the best dynamic time / the best static time, by wall clock and by this process's CPU time
   (`--cost-only` measures just that).

Prints one line per measurement (stderr) and a Markdown table; --json writes everything.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

import charlstm
from charlstm.baseline import compressor_baseline
from charlstm.config import DynamicSettings
from charlstm.dynamic import dynamic_score_ids, gradient_ms
from charlstm.score import score_ids


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def measure(model, ids, settings: DynamicSettings | None, ms=None) -> dict[str, Any]:
    """Score ids statically (settings None) or dynamically -> bpc, seconds (wall clock), cpu_seconds
    (this process's CPU time: what the work cost, whatever else the machine runs), chars/s."""
    t, c = time.perf_counter(), time.process_time()
    if settings is None:
        r = score_ids(model.module, ids)
    else:
        r = dynamic_score_ids(model.module, ids, settings, ms=ms)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    return {"bpc": r.bpc, "scored": r.scored, "seconds": dt, "cpu_seconds": dc, "chars_per_s": r.scored / dt,
            "settings": settings.as_dict() if settings else None, "stats": "fixed" if ms is not None else "running"}


def log(what: str, r: dict[str, Any]) -> None:
    print(f"{what}: {r['bpc']:.4f} bpc, {r['scored']:,} chars in {r['seconds']:.1f} s "
          f"({r['chars_per_s']:,.0f}/s), load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)


def tune(model, ids, train, steps, decays, segments) -> dict[str, Any]:
    """The coordinate search of the module docstring -> {"trials": [...], "best": settings, "best_bpc",
    "best_fixed": the best step with training-data statistics and its bpc}."""
    trials: list[dict[str, Any]] = []
    seen: dict[tuple, float] = {}

    def bpc(step: float, decay: float, segment: int, ms=None) -> float:
        key = (step, decay, segment, ms is not None)
        if key not in seen:
            r = measure(model, ids, DynamicSettings(step=step, decay=decay, segment=segment), ms)
            trials.append(r)
            log(f"tune {r['stats']} step {step:g} decay {decay:g} segment {segment}", r)
            seen[key] = r["bpc"]
        return seen[key]

    step = min(steps, key=lambda x: bpc(x, 0.0, 50))
    decay = min(decays, key=lambda d: bpc(step, d, 50))
    segment = min(segments, key=lambda g: bpc(step, decay, g))
    out = {"trials": trials, "best": DynamicSettings(step=step, decay=decay, segment=segment).as_dict(),
           "best_bpc": bpc(step, decay, segment), "best_fixed": None}
    if train is not None:
        t = time.perf_counter()
        ms = gradient_ms(model.module, train, segment)
        print(f"gradient statistics from the training split: {time.perf_counter() - t:.1f} s", file=sys.stderr)
        x = min(steps, key=lambda x: bpc(x, decay, segment, ms))
        out["best_fixed"] = {"settings": DynamicSettings(step=x, decay=decay, segment=segment).as_dict(),
                             "bpc": bpc(x, decay, segment, ms)}
    return out


def triple(text: str) -> DynamicSettings:
    step, decay, segment = text.split(",")
    return DynamicSettings(step=float(step), decay=float(decay), segment=int(segment)).validate()


def report(model, report_ids, out: dict[str, Any], a) -> None:
    """Static, dynamic (defaults, and this run's tuned settings) and xz on report_ids; the cost."""
    rep: dict[str, Any] = {}
    rep["static"] = measure(model, report_ids, None)
    log("report static", rep["static"])
    rep["dynamic"] = measure(model, report_ids, DynamicSettings())
    log("report dynamic (defaults)", rep["dynamic"])
    if "tune" in out and out["tune"]["best"] != DynamicSettings().as_dict():
        rep["dynamic_tuned"] = measure(model, report_ids, DynamicSettings(**out["tune"]["best"]))
        log("report dynamic (this run's tuned settings)", rep["dynamic_tuned"])
    xz = compressor_baseline(model.vocab, report_ids, first=1)
    rep["xz"] = xz.as_dict()
    rep.update(cost(model, report_ids, a))
    rep["reduction"] = 1 - rep["dynamic"]["bpc"] / rep["static"]["bpc"]
    out["report"] = rep


def cost(model, report_ids, a) -> dict[str, Any]:
    """Static and dynamic (defaults) alternately on the first --cost-chars characters of the report
    part, --cost-repeats times each -> the best times and their ratios, by wall clock and CPU time."""
    piece = report_ids[:a.cost_chars]
    runs: dict[str, list[dict[str, Any]]] = {"static": [], "dynamic": []}
    for _ in range(a.cost_repeats):
        runs["static"].append(measure(model, piece, None))
        runs["dynamic"].append(measure(model, piece, DynamicSettings()))
    best = {k: {m: min(r[m] for r in v) for m in ("seconds", "cpu_seconds")} for k, v in runs.items()}
    out = {"cost_runs": runs, "cost": best["dynamic"]["seconds"] / best["static"]["seconds"],
           "cost_cpu": best["dynamic"]["cpu_seconds"] / best["static"]["cpu_seconds"]}
    print(f"cost on {len(piece):,} chars, best of {a.cost_repeats} each: static {best['static']['seconds']:.2f} s "
          f"wall / {best['static']['cpu_seconds']:.2f} s CPU, dynamic {best['dynamic']['seconds']:.2f} s / "
          f"{best['dynamic']['cpu_seconds']:.2f} s -> {out['cost']:.2f}x wall, {out['cost_cpu']:.2f}x CPU, "
          f"load {os.getloadavg()[0]:.1f}", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, help="a run name or folder (repeatable)")
    ap.add_argument("--tune-chars", type=int, default=50_000, help="characters of val to tune on (its start)")
    ap.add_argument("--report-chars", type=int, default=None, help="at most this many characters to report on")
    ap.add_argument("--steps", type=floats, default=floats("3e-4,1e-3,3e-3,1e-2"))
    ap.add_argument("--decays", type=floats, default=floats("0,1e-4,1e-3,1e-2"))
    ap.add_argument("--segments", type=lambda t: [int(x) for x in t.split(",")], default=[20, 50, 100])
    ap.add_argument("--try", dest="tries", action="append", type=triple, default=[],
                    metavar="STEP,DECAY,SEGMENT", help="measure these settings on the tuning parts (repeatable)")
    ap.add_argument("--no-tune", action="store_true", help="no tuning: only report, with the library's defaults")
    ap.add_argument("--no-report", action="store_true", help="tune only")
    ap.add_argument("--cost-only", action="store_true", help="only the cost measurement (no tuning, no scores)")
    ap.add_argument("--no-fixed", action="store_true", help="skip the training-data statistics")
    ap.add_argument("--cost-chars", type=int, default=40_000)
    ap.add_argument("--cost-repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write all results here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    results = []
    for run in a.run:
        model = charlstm.load(run)
        val = model.split("val")
        tune_ids = val[:a.tune_chars]
        report_ids = val[a.tune_chars:] if a.report_chars is None else val[a.tune_chars:a.tune_chars + a.report_chars]
        c = model.module.cfg
        print(f"{run}: {c.cell} {c.num_layers}x{c.hidden_size}, {model.module.num_parameters():,} parameters; val "
              f"{len(val):,} chars: tune on the first {len(tune_ids):,}, report on the next {len(report_ids):,}; "
              f"torch {torch.__version__}, {a.threads} thread(s), load {os.getloadavg()[0]:.1f}", file=sys.stderr)
        out: dict[str, Any] = {"run": run, "model": f"{c.cell} {c.num_layers}x{c.hidden_size}",
                               "parameters": model.module.num_parameters(), "val_chars": len(val),
                               "tune_chars": len(tune_ids), "report_chars": len(report_ids), "threads": a.threads,
                               "defaults": DynamicSettings().as_dict()}
        if a.cost_only:
            out.update(cost(model, report_ids, a))
            results.append(out)
            continue
        if a.tries:
            out["static_tune"] = measure(model, tune_ids, None)
            log("tune static", out["static_tune"])
            out["tries"] = []
            for s in a.tries:
                r = measure(model, tune_ids, s)
                log(f"tune try step {s.step:g} decay {s.decay:g} segment {s.segment}", r)
                out["tries"].append(r)
        elif not a.no_tune:
            out["static_tune"] = measure(model, tune_ids, None)
            log("tune static", out["static_tune"])
            train = None if a.no_fixed else model.split("train")
            out["tune"] = tune(model, tune_ids, train, a.steps, a.decays, a.segments)
            print(f"tuned: {out['tune']['best']} -> {out['tune']['best_bpc']:.4f} bpc; fixed statistics: "
                  f"{out['tune']['best_fixed']}", file=sys.stderr)
        if not a.no_report:
            report(model, report_ids, out, a)
        results.append(out)
    if a.tries:
        print("| step | decay | segment | " + " | ".join(f"{r['run']} (static {r['static_tune']['bpc']:.3f})"
                                                     for r in results) + " | sum |")
        print("|---:|---:|---:|" + "---:|" * (len(results) + 1))
        for k, s in enumerate(a.tries):
            bpcs = [r["tries"][k]["bpc"] for r in results]
            print(f"| {s.step:g} | {s.decay:g} | {s.segment} | " + " | ".join(f"{b:.4f}" for b in bpcs)
                  + f" | {sum(bpcs):.4f} |")
    if not a.no_report and not a.cost_only:
        print("| run | report chars | static bpc | dynamic bpc (defaults) | below static | xz -9e bpc | static s | "
              "dynamic s | cost, wall (CPU) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for out in results:
            rep = out["report"]
            print(f"| {out['run']} | {out['report_chars']:,} | {rep['static']['bpc']:.3f} | {rep['dynamic']['bpc']:.3f} | "
                  f"{100 * rep['reduction']:.1f}% | {rep['xz']['bpc']:.3f} | {rep['static']['seconds']:.1f} | "
                  f"{rep['dynamic']['seconds']:.1f} | {rep['cost']:.2f}x ({rep['cost_cpu']:.2f}x) |")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
