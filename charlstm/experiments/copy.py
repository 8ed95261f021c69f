"""Experiment 4, copying: ``baaXbaa`` (a 3-letter string over {a, b, c}, X, the same string again),
two LSTM layers.

Measures the fraction of the 27 strings whose greedy completion after the X is the string then
<eot>. As in the source, every string occurs in training; HELD_OUT > 0 keeps that many strings out of
the training data entirely, to measure copying of strings never seen (with 4 held out, this 2x32
LSTM copied only 2 of the 4 on seeds 0 and 1: trained this briefly, it learns the set of strings
it saw as much as the copy). Then, on the steps where the next character is a copied one (the X and the first two
copies), every unit is ranked by AUROC against "the next character is a" / "b" / "c" (features
``next:a``, ``next:b``, ``next:c``), and each character's best unit is also scored at each of the
three positions separately: a unit that is good at all three predicts "the next character is b"
rather than storing the letter of one position.
"""
from __future__ import annotations

import dataclasses
import itertools
import random
import time
from pathlib import Path

import numpy as np

from charlstm.config import ModelConfig, TrainConfig
from charlstm.corpora.synthetic import generate
from charlstm.experiments.common import (ExperimentResult, FoundUnit, Log, complete, model_summary, trace_records,
                                         train_task)
from charlstm.experiments.report import Check, Report
from charlstm.viz.colors import VALUE
from charlstm.viz.plots import text_png
from charlstm.neurons import compute
from charlstm.units import kind_of
from charlstm.inputs import Input
from charlstm.neurons import find_units
from charlstm.neurons.ranking import auroc_columns

NAME = "copy"
LENGTH = 3
HELD_OUT = 0  # strings kept out of training (0: the source's setup, all 27 are trained on)
NUM = 4000
MODEL = ModelConfig(cell="lstm", embed_dim=8, hidden_size=32, num_layers=2)
TRAIN = TrainConfig(batch_size=32, seq_len=64, lr=1e-2, min_lr=1e-3, warmup_steps=20, max_steps=800,
                    eval_every=500, log_every=100, sample_chars=0, device="cpu")
COPY_MIN = 0.95
POSITIONS = ("X", "copy 1", "copy 2")  # the steps whose next character is copied


def held_out_strings(seed: int, k: int = HELD_OUT) -> list[str]:
    """The k strings (of the 27) kept out of training, chosen by the seed."""
    every = ["".join(p) for p in itertools.product("abc", repeat=LENGTH)]
    return sorted(random.Random(seed + 4000).sample(every, k)) if k else []


def run(out: Path, seed: int, log: Log) -> ExperimentResult:
    t0 = time.monotonic()
    tcfg = dataclasses.replace(TRAIN, seed=seed)
    held = held_out_strings(seed, HELD_OUT)
    records = [r for r in generate(NAME, NUM, seed=seed) if r[:LENGTH] not in held]
    model, vocab, ds, res = train_task(NAME, out, seed, MODEL, tcfg, len(records), log, records=records)

    every = ["".join(p) for p in itertools.product("abc", repeat=LENGTH)]
    got = complete(out / "run", [s + "X" for s in every], LENGTH + 3)
    ok = {s: g == s for s, g in zip(every, got)}
    acc_all = float(np.mean(list(ok.values())))
    acc_held = float(np.mean([ok[s] for s in held])) if held else None
    log(f"copied exactly: {acc_all:.1%} of the 27 strings"
        + (f"; {acc_held:.0%} of the held-out {', '.join(held)}" if held else ""))

    fresh = generate(NAME, 300, seed=seed + 1000)
    trace, symbols, which = trace_records(model, vocab, fresh)
    inp = Input(trace.ids, vocab, "300 fresh sequences")
    # Step k of a record: 0..2 the string, 3 the X, 4..6 the copy, 7 <eot>.
    pos = np.full(len(symbols), -1)
    for k in np.unique(which[which >= 0]):
        sel = np.flatnonzero(which == k)
        pos[sel] = np.arange(len(sel))
    copy_steps = (pos >= LENGTH) & (pos <= 2 * LENGTH - 1)
    per_char = {}
    for ch in "abc":
        f = find_units(model, vocab, inp, f"next:{ch}", top=5, mask=copy_steps, trace=trace)
        best = f.ranking[0]
        col = trace.unit(best.key, best.unit)
        by_pos = []
        for j in range(LENGTH):
            m = pos == LENGTH + j
            by_pos.append(float(auroc_columns(col[m][:, None], f.values[m])[0]))
        per_char[ch] = (best, by_pos, f.ranking)
        log(f"next character {ch!r}: {best.name} AUROC {best.auroc:.3f} "
            f"(X {by_pos[0]:.3f}, copy 1 {by_pos[1]:.3f}, copy 2 {by_pos[2]:.3f})")

    rep = Report("Experiment: copying (baaXbaa)", out)
    rep.para(f"Reproduce with `charlstm experiment copy --seed {seed}`. A {LENGTH}-letter string over {{a, b, c}}, a "
             "delimiter X, then the same string again; two layers. "
             + (f"{len(held)} of the 27 strings never occur in the training data: {', '.join(held)}." if held else
                "As in the source, all 27 strings occur in the training data."))
    rep.heading("Setup")
    rep.table(["", ""], model_summary(MODEL, tcfg, res, len(records)))
    rep.heading("Generalisation")
    rep.para("Greedy completion of each string + X as a user runs it (`charlstm.load(run).generate(prime, "
             "greedy=True)` from a fresh start, the same as `charlstm sample RUN --prime abcX --greedy`); exact means "
             f"the string then <eot>: {sum(ok.values())}/27 strings ({acc_all:.1%})"
             + (f"; held-out strings {acc_held:.0%}." if held else "."))
    shown = [(s, "yes" if s in held else "", got[i], "yes" if ok[s] else "no") for i, s in enumerate(every)
             if s in held or not ok[s]]
    if shown:
        rep.table(["string", "held out", "completion", "exact"], shown)
    rep.heading("Which units predict the next character (found automatically)")
    rep.para(f"On the steps whose next character is copied (the X and the first two copies: "
             f"{int(copy_steps.sum()):,} steps of 300 fresh sequences), every unit of both layers ranked by AUROC "
             "against next:a, next:b and next:c. The best unit for each character, and its AUROC at each position "
             "alone:")
    rep.table(["next char", "best unit", "AUROC", "at X", "at copy 1", "at copy 2", "runners-up"],
              [(ch, b.name, f"{b.auroc:.3f}", *(f"{v:.3f}" for v in bp),
                ", ".join(f"{u.name} {u.auroc:.2f}" for u in rk[1:4])) for ch, (b, bp, rk) in per_char.items()])
    rep.para("An AUROC near 0 or 1 separates perfectly (near 0: the unit is low when that character comes next). A unit "
             "that separates at all three positions predicts \"the next character is ...\" whatever the position, as "
             "the source observed, rather than storing the letter of one position.")
    demo = [i for i, r in enumerate(fresh) if len(set(r[:LENGTH])) == LENGTH][:2] + \
           [i for i, r in enumerate(fresh) if r[:LENGTH].count("b") >= 2][:1]
    lines = []
    b_unit = per_char["b"][0]
    for i in demo:
        sel = np.flatnonzero(which == i)
        chars = list(fresh[i]) + ["<eot>"]
        lines.append((b_unit.name, chars, trace[b_unit.key][sel, b_unit.unit], kind_of(b_unit.name)))
        lines.append(("next:b", chars, compute("next:b", chars), VALUE))
    png = text_png(out / "copy-text.png", lines, title=f"{b_unit.name} (the best next:b unit) and the feature")
    rep.image(png, f"sequences coloured by {b_unit.name} and by next:b")
    rep.coloured(lines[0][1], [(lab, v, k) for lab, _, v, k in lines[:2]])
    if held:
        checks = [Check(f"held-out strings copied exactly ({', '.join(held)})", acc_held, f">= {COPY_MIN}",
                        acc_held >= COPY_MIN)]
    else:
        checks = [Check("strings copied exactly (all 27, fresh from a record start)", acc_all, f">= {COPY_MIN}",
                        acc_all >= COPY_MIN)]
    rep.heading("Checks")
    rep.checks(checks)
    md, html = rep.write()
    metrics = {"held_out": held, "copied_held_out": acc_held, "copied_all": acc_all,
               "val_bpc": res.best_val_bpc,
               "train_seconds": res.elapsed,
               "next_char_units": {ch: (b.name, b.auroc, bp) for ch, (b, bp, _) in per_char.items()}}
    units = [FoundUnit(b.name, b.score, f"AUROC score for next:{ch} on the copy steps",
                       {"auroc": b.auroc, **{f"auroc at {p}": v for p, v in zip(POSITIONS, bp)}})
             for ch, (b, bp, _) in per_char.items()]
    return ExperimentResult(NAME, seed, metrics, checks, units, out / "run", md, html, time.monotonic() - t0,
                            demo=lines[0])
