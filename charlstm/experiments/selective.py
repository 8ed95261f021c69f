"""Experiment 2, selective counting: ``aaXaXaaYbbbbb`` (N a's mixed at random with 0..10 distractor
X's, a delimiter Y, then N b's; N in 1..10), one small LSTM layer.

Measures greedy completion of random primes (a's and X's, then Y) for every N in the training range
and beyond it, then finds the counting unit: among the units whose cell or hidden state tracks
#a - #b (``count:a-b``, |r| >= 0.9) the best whose input gate stays nearly closed on the X's (mean
< 0.2): the unit ignores the distractor. It also looks, at the Y's only, for the unit that best
encodes how many a's were seen (the source's "fires on Y but encodes the count").
"""
from __future__ import annotations

import dataclasses
import random
import time
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
from charlstm.neurons import find_units
from charlstm.neurons import rank_units

NAME = "selective-counting"
TRAIN_RANGE = (1, 10)
BEYOND = (11, 15)
PER_N = 20  # random primes per N
NUM = 4000
# 8 units: with 16, the count spreads over several units and the cell learns to ignore the X's
# through its candidate (g near 0) rather than its input gate; 8 gives one clean counter whose input
# gate closes on X, as in the source.
MODEL = ModelConfig(cell="lstm", embed_dim=8, hidden_size=8, num_layers=1)
TRAIN = TrainConfig(batch_size=32, seq_len=50, lr=2e-2, min_lr=1e-3, warmup_steps=20, max_steps=3000,
                    eval_every=500, log_every=100, sample_chars=0, device="cpu")
FEATURE = "count:a-b"
R_MIN, GATE_MAX = 0.9, 0.2


def primes(seed: int, lo: int, hi: int, per_n: int, max_x: int = 10) -> list[tuple[int, str]]:
    """(N, prime) pairs: per N in lo..hi, `per_n` random mixes of N a's and 0..max_x X's, then Y."""
    rng = random.Random(seed)
    out = []
    for n in range(lo, hi + 1):
        for _ in range(per_n):
            body = ["a"] * n + ["X"] * rng.randint(0, max_x)
            rng.shuffle(body)
            out.append((n, "".join(body) + "Y"))
    return out


def _accuracy(run: Path, pairs: list[tuple[int, str]]) -> dict[int, float]:
    got = complete(run, [p for _, p in pairs], [n + 5 for n, _ in pairs])
    by_n: dict[int, list[bool]] = {}
    for (n, _), g in zip(pairs, got):
        by_n.setdefault(n, []).append(g == "b" * n)
    return {n: float(np.mean(v)) for n, v in sorted(by_n.items())}


def run(out: Path, seed: int, log: Log) -> ExperimentResult:
    t0 = time.monotonic()
    tcfg = dataclasses.replace(TRAIN, seed=seed)
    model, vocab, ds, res = train_task(NAME, out, seed, MODEL, tcfg, NUM, log)

    lo, hi = TRAIN_RANGE
    acc_in = _accuracy(out / "run", primes(seed + 2000, lo, hi, PER_N))
    acc_out = _accuracy(out / "run", primes(seed + 3000, *BEYOND, PER_N // 2))
    exact_ns = sum(v == 1.0 for v in acc_in.values())
    overall = float(np.mean(list(acc_in.values())))
    log(f"greedy completion: {overall:.1%} exact in {lo}..{hi} ({exact_ns}/{hi - lo + 1} N always exact)")

    records = generate(NAME, 200, seed=seed + 1000)
    trace, symbols, which = trace_records(model, vocab, records)
    inp = Input(trace.ids, vocab, "200 fresh sequences")
    found = find_units(model, vocab, inp, FEATURE, top=None, trace=trace)
    is_x = np.array([s == "X" for s in symbols])
    candidates = []
    for u in found.ranking:
        if u.key.rsplit(".", 1)[-1] in ("h", "c") and u.score >= R_MIN:
            gate = float(trace.unit(f"layer{u.key[5:].split('.')[0]}.i", u.unit)[is_x].mean())
            candidates.append((u, gate))
    best_hc = found.best(("h", "c"))
    if candidates:
        chosen, gate_x = next(((u, g) for u, g in candidates if g < GATE_MAX), candidates[0])
    else:
        chosen = best_hc
        gate_x = float(trace.unit("layer0.i", chosen.unit)[is_x].mean())
    is_a = np.array([s == "a" for s in symbols])
    gate_a = float(trace.unit("layer0.i", chosen.unit)[is_a].mean())
    log(f"counting unit {chosen.name}: r = {chosen.r:+.3f}, input gate mean {gate_x:.3f} on X, {gate_a:.3f} on a")

    # At the Y's only: which unit encodes how many a's were read?
    is_y = np.array([s == "Y" for s in symbols])
    y_rank = rank_units({k: v for k, v in trace.arrays.items() if k.endswith((".h", ".c"))}, found.values,
                        kind="continuous", top=3, mask=is_y)

    rep = Report("Experiment: selective counting (aaXaXaaYbbbbb)", out)
    rep.para(f"Reproduce with `charlstm experiment selective-counting --seed {seed}`. N a's mixed at random with 0..10 "
             f"distractor X's, a delimiter Y, then N b's (N uniform in {lo}..{hi}); the model must count the a's and "
             "ignore the X's.")
    rep.heading("Setup")
    rep.table(["", ""], model_summary(MODEL, tcfg, res, NUM))
    rep.heading("Generalisation")
    rep.para("Greedy completion of random primes (a's and X's, then Y) as a user runs it (`charlstm.load(run)."
             "generate(prime, greedy=True)` from a fresh start); exact means N b's then "
             f"<eot>. {PER_N} primes per N in the training range, {PER_N // 2} per N beyond it.")
    rep.table(["N", "exact"], [(n, f"{v:.0%}") for n, v in {**acc_in, **acc_out}.items()])
    rep.heading("The counting neuron (found automatically)")
    rep.para(f"All units ranked by |r| with `{FEATURE}` over {len(inp):,} characters of 200 fresh sequences; for the "
             f"cell and hidden states with |r| >= {R_MIN} the mean input gate on the X's (closed = ignores them):")
    rows = [(u.name, f"{u.r:+.3f}", f"{g:.3f}") for u, g in candidates[:8]] or [(best_hc.name, f"{best_hc.r:+.3f}", "-")]
    rep.table(["unit", "r", "input gate on X"], rows)
    rep.para(f"Found: `{chosen.name}`, r = {chosen.r:+.3f}; its input gate averages {gate_x:.3f} on X and {gate_a:.3f} "
             "on a: it opens for the a's and stays nearly shut for the distractors.")
    kind = chosen.key
    demo = [i for i, r in enumerate(records) if r.count("X") >= 3][:3]
    lines = []
    for i in demo:
        sel = np.flatnonzero(which == i)
        chars = list(records[i]) + ["<eot>"]
        lines.append((chosen.name, chars, trace[kind][sel, chosen.unit], kind_of(chosen.name)))
        lines.append((f"layer0.i:{chosen.unit}", chars, trace["layer0.i"][sel, chosen.unit], "i"))
    png1 = text_png(out / "selective-text.png", lines[:4], title=f"{chosen.name} and its input gate layer0.i:{chosen.unit}")
    rep.image(png1, f"sequences coloured by {chosen.name} and by its input gate")
    rep.coloured(lines[0][1], [(lab, v, k) for lab, _, v, k in lines[:2]])
    seq = "aXaaXXaXaaYbbbbbb"
    ids_s, _ = record_ids(vocab, [seq])
    from charlstm.trace import trace_ids

    ts = trace_ids(model, vocab, ids_s)
    png2 = series_png(out / "selective-hc.png", list(seq) + ["<eot>"],
                      [(f"layer0.c:{chosen.unit}", ts["layer0.c"][1:, chosen.unit]),
                       (f"layer0.h:{chosen.unit}", ts["layer0.h"][1:, chosen.unit]),
                       (f"layer0.i:{chosen.unit}", ts["layer0.i"][1:, chosen.unit])],
                      title=f"unit {chosen.unit} over {seq}")
    rep.image(png2, f"c, h and input gate of unit {chosen.unit}")
    rep.para("At the Y's only, the units whose value best encodes how many a's were read (|r| with the count): "
             + ", ".join(f"`{u.name}` r = {u.r:+.3f}" for u in y_rank) + ".")
    checks = [Check(f"greedy completion exact for every N in {lo}..{hi} ({PER_N} primes each)", overall, "== 1",
                    overall == 1.0),
              Check(f"|r| of {chosen.name} with {FEATURE}", abs(chosen.r), f">= {R_MIN}", abs(chosen.r) >= R_MIN),
              Check(f"mean input gate of {chosen.name} on X", gate_x, f"< {GATE_MAX}", gate_x < GATE_MAX)]
    rep.heading("Checks")
    rep.checks(checks)
    md, html = rep.write()
    metrics = {"exact_in_range": overall, "exact_by_n": acc_in, "exact_beyond": acc_out, "unit": chosen.name,
               "r": chosen.r, "input_gate_on_x": gate_x, "input_gate_on_a": gate_a,
               "y_units": [(u.name, u.r) for u in y_rank], "val_bpc": res.best_val_bpc, "train_seconds": res.elapsed}
    units = [FoundUnit(chosen.name, abs(chosen.r), f"|r| with {FEATURE}", {"r": chosen.r, "input gate on X": gate_x}),
             FoundUnit(y_rank[0].name, y_rank[0].score, "|r| with the count of a's at the Y's", {"r": y_rank[0].r})]
    return ExperimentResult(NAME, seed, metrics, checks, units, out / "run", md, html, time.monotonic() - t0,
                            demo=lines[0])
