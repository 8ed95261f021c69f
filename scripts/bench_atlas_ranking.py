"""How much the atlas's vectorised scoring saves: every unit of a 1x512 LSTM (3,072 columns) against
one feature and 199 shifted copies of it, as `charlstm atlas` does (charlstm.neurons.atlas.scoring:
prepare the columns once, then one matrix product for all shifts), against ranking each copy with
`charlstm.neurons.ranking.rank_units` (what `neurons find` does for one feature), timed on a few
copies and scaled to 199.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_atlas_ranking.py [--rows 10000] [--units 3072]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from charlstm.neurons.atlas.scoring import UnitMatrix, shift_offsets
from charlstm.neurons.ranking import rank_units


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--units", type=int, default=3072)
    ap.add_argument("--controls", type=int, default=199)
    ap.add_argument("--naive", type=int, default=3, help="shifted copies timed the naive way")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    traces = {"layer0.x": rng.normal(size=(a.rows, a.units)).astype(np.float32)}
    features = {"binary": np.repeat(rng.random(a.rows // 20 + 1) < 0.3, 20)[:a.rows].astype(float),
                "continuous": np.cumsum(rng.normal(size=a.rows))}
    offsets = shift_offsets(a.rows, a.controls)
    print(f"{a.rows:,} rows x {a.units:,} units, {a.controls} shifted copies")
    for kind, y in features.items():
        t = time.perf_counter()
        um = UnitMatrix(traces, np.ones(a.rows, bool))
        um.raw(y, kind)
        prep = time.perf_counter() - t
        t = time.perf_counter()
        um.null_best(y, kind, offsets)
        null = time.perf_counter() - t
        t = time.perf_counter()
        for k in offsets[:a.naive]:
            rank_units(traces, np.roll(y, int(k)), kind=kind, top=1)
        naive = (time.perf_counter() - t) / a.naive * a.controls
        print(f"{kind:<10} atlas: {prep:.1f} s to prepare and score, {null:.1f} s for the {a.controls} copies; "
              f"rank_units per copy: {naive:.0f} s (scaled from {a.naive})")


if __name__ == "__main__":
    main()
