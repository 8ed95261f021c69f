"""Dictionaries on the synthetic tasks: does one feature carry the task's variable?

For a run made by `charlstm experiment TASK --out DIR`, train dictionaries over a grid of codes,
sizes, k and seeds on the run's training split (charlstm.dictionary.session.train, the same path as
`charlstm dictionary train`), and score every feature against the task's variable on fresh records
(|Pearson r| for the count, AUROC for the A/B memory): the best feature, the next ones, the
variance explained and the spliced bpc. With --explain, also print how the variable is spread over
the features of the last dictionary (which counts each one fires on).

    OMP_NUM_THREADS=1 python scripts/dictionary_synthetic.py /tmp/dict-exp/counting counting \
        --codes relu,signed --sizes 8,16,64 --ks 2,3 --seeds 0,1,2 --chars 1000000

Prints one Markdown table row per dictionary (the numbers in docs/experiments.md, "Dictionaries").
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from charlstm.api import load
from charlstm.corpora.synthetic import generate
from charlstm.dictionary import session
from charlstm.dictionary.train import TrainOptions
from charlstm.experiments.common import record_ids
from charlstm.inputs import step_symbols
from charlstm.neurons import compute, rank_units
from charlstm.trace import trace_ids

VARIABLE = {"counting": "count:a-b", "selective-counting": "count:a-b", "remember": "regex:A[xY]*"}
#: Where the variable is scored (as in the experiment): the remember task's memory from the first
#: letter through the x's to the Y; everywhere for the others.
SPAN = {"remember": "regex:[AB][xY]*"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="the --out folder of `charlstm experiment` (holds run/)")
    ap.add_argument("task", choices=sorted(VARIABLE))
    ap.add_argument("--kind", default="c")
    ap.add_argument("--codes", default="relu,signed")
    ap.add_argument("--sizes", default="8,16,64")
    ap.add_argument("--ks", default="2,3")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--chars", type=int, default=1_000_000)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--records", type=int, default=300, help="fresh records to score the features on")
    ap.add_argument("--explain", action="store_true", help="show how the variable is spread over the features")
    a = ap.parse_args()
    run = a.out / "run"
    m = load(run)
    feature = VARIABLE[a.task]
    records = generate(a.task, a.records, seed=4242)
    ids, _ = record_ids(m.vocab, records)
    tr = trace_ids(m.module, m.vocab, ids, kinds=["h", "c"])
    symbols = step_symbols(m.vocab, ids)
    values = compute(feature, symbols)
    mask = compute(SPAN[a.task], symbols) > 0 if a.task in SPAN else None
    states = tr.arrays[f"layer0.{a.kind}"]
    unit = rank_units({f"layer0.{a.kind}": states}, values, top=1, mask=mask)[0]
    where = f" on {SPAN[a.task]}" if a.task in SPAN else ""
    print(f"task {a.task}, variable {feature}{where}; best single unit {unit.name}: {unit.score:.3f}", flush=True)
    print("| code | size | k | seed | var. explained | bpc -> spliced | alive | best feature | next two |")
    print("|---|---|---|---|---|---|---|---|---|")
    d = None
    for code in a.codes.split(","):
        for size in map(int, a.sizes.split(",")):
            for k in map(int, a.ks.split(",")):
                for seed in map(int, a.seeds.split(",")):
                    o = TrainOptions(name="sweep", kind=a.kind, size=size, k=k, code=code, chars=a.chars, lr=a.lr,
                                     batch=a.batch, streams=32, seed=seed, fidelity_chars=20_000)
                    t0 = time.time()
                    res, fid = session.train(run, o, force=True)
                    d = res.dictionary
                    acts = d.activations(states)
                    ranked = rank_units({"dict": acts}, values, top=3, mask=mask)
                    alive = int((np.abs(acts).max(0) > 0).sum())
                    print(f"| {code} | {size} | {k} | {seed} | {fid['variance_explained']:.4f} | {fid['bpc']:.3f} -> "
                          f"{fid['spliced_bpc']:.3f} | {alive} | {ranked[0].name} {ranked[0].score:.3f} | "
                          + ", ".join(f"{u.score:.2f}" for u in ranked[1:]) + f" |  <!-- {time.time() - t0:.0f}s -->",
                          flush=True)
    if a.explain and d is not None:
        explain(d, states, values, symbols)
    return 0


def explain(d, states: np.ndarray, values: np.ndarray, symbols: list[str]) -> None:
    """Per alive feature: its r with the variable, how often it fires, and its mean activation at
    each value of the variable after reading each symbol (a table: which counts it covers)."""
    acts = d.activations(states)
    alive = np.flatnonzero(np.abs(acts).max(0) > 0)
    sym = np.array(symbols)
    levels = np.unique(values)
    print(f"\nhow the variable is spread over the {len(alive)} alive features of the last dictionary "
          f"(mean activation per value of the variable, after reading a / b / other):")
    print("feature  r      fires   " + " ".join(f"{v:>5g}" for v in levels))
    for f in alive:
        a = acts[:, f]
        r = float(np.corrcoef(a, values)[0, 1]) if a.std() > 0 else 0.0
        for s, mask in (("a", sym == "a"), ("b", sym == "b"), ("other", (sym != "a") & (sym != "b"))):
            row = [a[mask & (values == v)].mean() if (mask & (values == v)).any() else np.nan for v in levels]
            head = f"{f:>7} {r:+.2f}  {np.mean(a != 0):5.1%}" if s == "a" else " " * 21
            print(f"{head} {s:<5} " + " ".join("    ." if np.isnan(x) or abs(x) < 1e-3 else f"{x:5.2f}" for x in row))


if __name__ == "__main__":
    sys.exit(main())
