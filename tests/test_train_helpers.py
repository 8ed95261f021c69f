"""Tiny datasets for the training tests, built directly with DatasetBuilder (no corpus module needed)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from charlstm.dataset import DatasetBuilder, open_dataset
from charlstm.dataset import data_root
from charlstm.vocab import Vocab

TEXT = ("def add(a, b):\n    return a + b\n\nclass Box:\n    def __init__(self, x):\n        self.x = x\n\n"
        "for i in range(10):\n    print(i, 'even' if i % 2 == 0 else \"odd\")\n")


def make_dataset(name: str = "toy", text: str = TEXT, repeat: int = 30, val_frac: float = 0.1,
                 root: Path | None = None) -> Path:
    """A char dataset data/<name> of `text` * repeat; the last val_frac of it is the validation split."""
    full = text * repeat
    vocab = Vocab.build_char(Counter(full))
    ids = vocab.encode(full).astype(vocab.dtype)
    cut = int(len(ids) * (1 - val_frac))
    out = (root or data_root()) / name
    with DatasetBuilder(out) as b:
        b.write_split("train", ids[:cut])
        b.write_split("val", ids[cut:])
        b.commit(vocab, {"records": False, "source": {"kind": "test"}, "options": {}, "stats": {}})
    return out


def test_make_dataset_opens_and_verifies():
    path = make_dataset()
    ds = open_dataset("toy")
    assert ds.path == path
    n = ds.meta["splits"]["train"]["tokens"] + ds.meta["splits"]["val"]["tokens"]
    assert n == len(TEXT) * 30
    assert np.array_equal(ds.vocab.encode(TEXT[:20]), ds.split("train")[:20].astype(np.int64))
