"""Units against dictionary features: which library features does some single unit track, and which
does some dictionary feature track? (docs/experiments.md, "Dictionaries on a code model")

For a run and one of its dictionaries, over the first --chars characters of the held-out split:
every named library feature that varies there (charlstm.neurons.features) is scored against every
unit of the traced kinds (charlstm.neurons.ranking.rank_units: |r| or max(AUROC, 1 - AUROC)) and
against every dictionary feature (from the sparse code, charlstm.neurons.sparse). A feature is
"matched" when the best score reaches --binary (0.95) or --continuous (0.8).

    OMP_NUM_THREADS=1 CHARLSTM_CHECKPOINTS=/work/kernel/checkpoints CHARLSTM_DATA=/work/kernel/data \
        python scripts/dictionary_compare.py linux-60m --name layer0.c-4096 --chars 80000

Prints a Markdown table and the two counts.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


from charlstm.api import load
from charlstm.dictionary import store
from charlstm.inputs import step_symbols
from charlstm.neurons.features import FEATURES, compute
from charlstm.neurons.ranking import infer_kind, rank_units
from charlstm.neurons.sparse import rank_sparse
from charlstm.runs import resolve_run
from charlstm.trace import trace_ids


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--name", help="the dictionary (default: the run's only one)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--chars", type=int, default=80_000)
    ap.add_argument("--kinds", default="h,c", help="unit kinds to compare with (all: every state and gate)")
    ap.add_argument("--binary", type=float, default=0.95)
    ap.add_argument("--continuous", type=float, default=0.8)
    ap.add_argument("--units-cache", type=Path, help="a JSON file keeping the units' best scores between runs "
                                                      "(they do not depend on the dictionary)")
    a = ap.parse_args()
    cache = json.loads(a.units_cache.read_text()) if a.units_cache and a.units_cache.exists() else {}
    tag = f"{a.run}|{a.split}|{a.chars}|{a.kinds}"
    units = cache.get(tag, {})
    t0 = time.time()
    m = load(a.run)
    path = resolve_run(a.run)
    d, _ = store.load(path, a.name, model=m.module)
    ids = m.split(a.split)[:a.chars]
    kinds = None if a.kinds == "all" else a.kinds.split(",")
    tr = trace_ids(m.module, m.vocab, ids, kinds=kinds)
    vals, idx = d.codes(tr.arrays[f"layer{d.layer}.{d.kind}"])
    symbols = step_symbols(m.vocab, ids)
    print(f"run {path.name}, dictionary {d.key} (layer{d.layer}.{d.kind}, {d.size} features, k {d.k}, {d.code}); "
          f"{len(ids):,} characters of {a.split}; units: {', '.join(tr.kinds)} of every layer")
    print("| feature | kind | best unit | score | best dictionary feature | score |")
    print("|---|---|---|---|---|---|")
    won = {"unit": 0, "dict": 0}
    for name, feat in FEATURES.items():
        y = compute(feat, symbols)
        if y.max() == y.min():
            continue
        kind = feat.kind if feat.kind != "auto" else infer_kind(y)
        if name not in units:
            best = rank_units(tr.arrays, y, kind=kind, top=1)[0]
            units[name] = [best.name, best.score]
        u_name, u_score = units[name]
        f = rank_sparse(d.key, vals, idx, d.size, y, kind=kind, top=1)[0]
        bar = a.binary if kind == "binary" else a.continuous
        won["unit"] += u_score >= bar
        won["dict"] += f.score >= bar
        mark = lambda s: f"**{s:.3f}**" if s >= bar else f"{s:.3f}"  # noqa: E731
        print(f"| {name} | {kind} | {u_name} | {mark(u_score)} | {f.name} | {mark(f.score)} |", flush=True)
    if a.units_cache:
        cache[tag] = units
        a.units_cache.write_text(json.dumps(cache, indent=1))
    print(f"\nmatched (AUROC-score >= {a.binary}, |r| >= {a.continuous}): by a single unit {won['unit']}, "
          f"by a dictionary feature {won['dict']} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
