"""How fast a dictionary trains, by part: reading states (the Stepper over 64 streams of a random
LSTM of the given width), one training step of the TopK autoencoder (the hand-written sparse
gradients, charlstm.dictionary.train.sparse_step, plus the fused Adam update) and the same step
through autograd on dense tensors (sparse_step_slow, its twin). Random weights cost what trained
ones do. Numbers in docs/benchmarks.md ("Dictionaries").

    OMP_NUM_THREADS=1 python scripts/bench_dictionary.py --hidden 512 --size 4096 --k 32
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from charlstm.config import ModelConfig
from charlstm.dictionary.model import Dictionary
from charlstm.dictionary.states import StateStream
from charlstm.dictionary.step import sparse_step, sparse_step_slow
from charlstm.dictionary.train import _adam
from charlstm.model import CharRNN


def rate(fn, states: int, repeat: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return states * repeat / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(cell="lstm", vocab_size=106, embed_dim=64, hidden_size=a.hidden, num_layers=1)).eval()
    ids = np.random.default_rng(0).integers(0, 106, 1_000_000)
    stream = StateStream(model, ids, 0, "h", streams=a.streams)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); LSTM 1x{a.hidden}, dictionary "
          f"{a.size} features, k {a.k}, {a.batch} states per step")
    print(f"reading states ({a.streams} streams): {rate(lambda: stream.run(256), a.streams * 256, a.repeat):,.0f} states/s")
    d = Dictionary(a.hidden, a.size, a.k, "relu")
    opt = _adam(d.parameters(), 1e-3)
    u = torch.randn(a.batch, a.hidden)
    dead = torch.zeros(a.size, dtype=torch.bool)
    dead[: a.size // 4] = True

    def fast(dead_=None):
        sparse_step(d, u, dead_, 1 / 32)
        opt.step()

    def slow():
        sparse_step_slow(d, u, None, 1 / 32)
        opt.step()

    print(f"training step, sparse gradients + Adam: {rate(fast, a.batch, a.repeat):,.0f} states/s")
    print(f"  with the auxiliary loss (a quarter of the features dead): "
          f"{rate(lambda: fast(dead), a.batch, a.repeat):,.0f} states/s")
    print(f"training step, autograd on dense tensors (the twin) + Adam: {rate(slow, a.batch, a.repeat):,.0f} states/s")


if __name__ == "__main__":
    main()
