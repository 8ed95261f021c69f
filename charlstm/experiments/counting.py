"""Experiment 1, counting: ``aaaaaXbbbbb`` (N a's, X, N b's; N in 1..10), one LSTM layer of 10 units.

Measures greedy completion of "a"*N + "X" for N = 1..MAX_N the way a user runs it (the run loaded
with charlstm.load, `generate(prime, greedy=True)` from a fresh start; exact for every N in 1..10 is
required; the report gives how far beyond it stays exact), then finds, over traces of fresh sequences, the
unit whose cell or hidden state tracks the running count #a - #b (feature ``count:a-b``), checks
|r| >= 0.9, shows it, and ablates it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from charlstm.config import ModelConfig, TrainConfig
from charlstm.corpora.synthetic import generate
from charlstm.experiments.common import (ExperimentResult, FoundUnit, Log, complete, model_summary, record_ids,
                                         trace_records, train_task)
from charlstm.experiments.report import Check, Report
from charlstm.viz.plots import series_png, text_png
from charlstm.units import kind_of
from charlstm.inputs import Input
from charlstm.neurons import ablate, find_units, format_ablation

NAME = "counting"
TRAIN_RANGE = (1, 10)
MAX_N = 40  # how far beyond the training range generalisation is measured
NUM = 4000
MODEL = ModelConfig(cell="lstm", embed_dim=8, hidden_size=10, num_layers=1)
TRAIN = TrainConfig(batch_size=32, seq_len=50, lr=1e-2, min_lr=1e-3, warmup_steps=20, max_steps=1500,
                    eval_every=500, log_every=100, sample_chars=0, device="cpu")
FEATURE = "count:a-b"


def run(out: Path, seed: int, log: Log) -> ExperimentResult:
    import dataclasses
    import time

    t0 = time.monotonic()
    tcfg = dataclasses.replace(TRAIN, seed=seed)
    model, vocab, ds, res = train_task(NAME, out, seed, MODEL, tcfg, NUM, log)

    # Generalisation: greedy completion as a user gets it (charlstm.load(run).generate, fresh start).
    ns = list(range(1, MAX_N + 1))
    got = complete(out / "run", ["a" * n + "X" for n in ns], [2 * n + 5 for n in ns])
    exact = {n: g == "b" * n for n, g in zip(ns, got)}
    lo, hi = TRAIN_RANGE
    in_range = sum(exact[n] for n in range(lo, hi + 1))
    all_upto = 0
    while all_upto + 1 in exact and exact[all_upto + 1]:
        all_upto += 1
    largest = max([n for n in ns if exact[n]], default=0)
    first_fail = next((n for n in ns if not exact[n]), None)
    log(f"greedy completion exact for {in_range}/{hi - lo + 1} N in {lo}..{hi}; every N up to {all_upto}")

    # Neurons: rank every unit on fresh sequences against the running count.
    records = generate(NAME, 200, seed=seed + 1000)
    trace, symbols, which = trace_records(model, vocab, records)
    inp = Input(trace.ids, vocab, "200 fresh sequences")
    found = find_units(model, vocab, inp, FEATURE, top=8, trace=trace)
    best = found.best(("h", "c"))
    layer_kind, unit = best.key, best.unit
    other = "layer0.h" if layer_kind.endswith(".c") else "layer0.c"
    r_other = float(np.corrcoef(trace.unit(other, unit), found.values)[0, 1])
    log(f"best counting unit {best.name}: r = {best.r:+.3f} ({other}:{unit} r = {r_other:+.3f})")
    abl = ablate(model, vocab, inp, best.name, FEATURE, mode="zero")

    # Report.
    rep = Report("Experiment: counting (aaaaaXbbbbb)", out)
    rep.para(f"Reproduce with `charlstm experiment counting --seed {seed}`. Sequences of N a's, a delimiter X "
             f"and N b's, N uniform in {lo}..{hi}, each ending in <eot>; the model must learn to count.")
    rep.heading("Setup")
    rep.table(["", ""], model_summary(MODEL, tcfg, res, NUM))
    rep.heading("Generalisation")
    rep.para("Greedy completion of `a`*N + `X` until <eot>, as a user runs it: `charlstm.load(run).generate(prime, "
             "greedy=True)` from a fresh start (the same as `charlstm sample RUN --prime aaaX --greedy`); exact means N "
             "b's then <eot>. "
             f"In the training range: {in_range}/{hi - lo + 1} exact. Exact for every N up to {all_upto}; "
             f"largest exact N up to {MAX_N}: {largest}" + (f"; first failure at N = {first_fail}" if first_fail else "")
             + ".")
    rows = [(n, "yes" if exact[n] else "no", _short(got[n - 1])) for n in ns if n <= all_upto + 3 or exact[n]]
    rep.table(["N", "exact", "completion"], rows)
    rep.heading("The counting neuron (found automatically)")
    rep.para(f"Every unit of every kind (h, c, i, f, g, o) ranked by |Pearson r| with `{FEATURE}` (#a - #b since the "
             f"record start) over {len(inp):,} characters of 200 fresh sequences:")
    rep.code("\n".join(_table(found)))
    rep.para(f"Found: `{best.name}` with r = {best.r:+.3f}; the same unit's {other.split('.')[1]} has r = {r_other:+.3f}. "
             "The cell counts the a's up and the b's down; the hidden state is a squashed (tanh, gated) copy of it.")
    demo = [records[i] for i in _pick(records, [3, 7, 10])]
    lines = []
    for r in demo:
        seq_trace = _record_slice(trace, which, records.index(r))
        lines.append((best.name, list(r) + ["<eot>"], seq_trace[layer_kind][:, unit], kind_of(best.name)))
    png1 = text_png(out / "counting-text.png", lines, title=f"{best.name} (blue positive, red negative)")
    rep.image(png1, f"fresh sequences coloured by {best.name}")
    rep.coloured(lines[-1][1], [(lab, v, k) for lab, _, v, k in lines[-1:]])
    long_n = min(max(all_upto, hi) + 2, MAX_N)
    seq = "a" * long_n + "X" + "b" * long_n
    from charlstm.trace import trace_ids

    ids_l, _ = record_ids(vocab, [seq])
    tl = trace_ids(model, vocab, ids_l)
    chars = list(seq) + ["<eot>"]
    png2 = series_png(out / "counting-hc.png", chars,
                      [(f"layer0.c:{unit}", tl["layer0.c"][1:, unit]), (f"layer0.h:{unit}", tl["layer0.h"][1:, unit])],
                      title=f"unit {unit} over N = {long_n}")
    rep.image(png2, f"h and c of unit {unit} over a sequence with N = {long_n}")
    rep.heading("Ablation")
    rep.para(f"`charlstm neurons ablate RUN --unit {best.name} --feature {FEATURE}` on the same sequences: zeroing the "
             "unit at every step (explicit cells) changes the bits per character where the count is non-zero:")
    rep.code(format_ablation(abl))
    checks = [Check(f"greedy completion exact for every N in {lo}..{hi}", in_range, f"== {hi - lo + 1}",
                    in_range == hi - lo + 1),
              Check(f"|r| of {best.name} with {FEATURE}", abs(best.r), ">= 0.9", abs(best.r) >= 0.9)]
    rep.heading("Checks")
    rep.checks(checks)
    md, html = rep.write()
    metrics = {"exact_in_range": in_range, "exact_up_to": all_upto, "largest_exact": largest, "first_failure": first_fail,
               "unit": best.name, "r": best.r, "r_other_state": r_other, "val_bpc": res.best_val_bpc,
               "train_seconds": res.elapsed, "ablation_active_change": abl.groups["active"].change}
    unit_found = FoundUnit(best.name, abs(best.r), f"|r| with {FEATURE}", {"r": best.r, f"r {other}": r_other})
    return ExperimentResult(NAME, seed, metrics, checks, [unit_found], out / "run", md, html, time.monotonic() - t0,
                            demo=lines[-1])


def _short(s: str, n: int = 30) -> str:
    return s if len(s) <= n else s[:n] + f"... ({len(s)} chars)"


def _table(found) -> list[str]:
    lines = [f"{'rank':>4}  {'unit':<12} {'r':>7}"]
    lines += [f"{k:>4}  {u.name:<12} {u.r:>+7.3f}" for k, u in enumerate(found.ranking, 1)]
    return lines


def _pick(records: list[str], ns: list[int]) -> list[int]:
    """Indices of the first record with each N (count of a's), when present."""
    out = []
    for n in ns:
        for i, r in enumerate(records):
            if r.count("a") == n and i not in out:
                out.append(i)
                break
    return out


def _record_slice(trace, which: np.ndarray, k: int) -> dict[str, np.ndarray]:
    sel = np.flatnonzero(which == k)
    return {key: arr[sel[0]:sel[-1] + 1] for key, arr in trace.arrays.items()}
