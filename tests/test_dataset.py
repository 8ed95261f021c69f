"""Dataset folders: atomic builds, checksums, reading, listing."""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from charlstm.dataset import DatasetBuilder, list_datasets, open_dataset, symbol_counts
from charlstm.errors import CharlstmError
from charlstm.dataset import data_root
from charlstm.vocab import Vocab


def _build(out, text="hello world\n", force=False):
    v = Vocab.build_char(Counter(text))
    ids = v.encode(text).astype(v.dtype)
    with DatasetBuilder(out, force=force) as b:
        b.write_split("train", ids[:8])
        b.write_split("val", ids[8:])
        return b.commit(v, {"records": False, "source": {"kind": "test"}, "options": {}, "stats": {}})


def test_build_and_open(tmp_path):
    ds = _build(data_root() / "hello")
    again = open_dataset("hello")
    assert again.splits == ["train", "val"] and again.meta == ds.meta
    assert again.vocab.decode(np.concatenate([again.split("train"), again.split("val")])) == "hello world\n"
    meta = json.loads((ds.path / "meta.json").read_text())
    for key in ("format", "version", "name", "units", "vocab_size", "dtype", "eot_id", "unk_id", "records",
                "source", "options", "stats", "splits"):
        assert key in meta
    with pytest.raises(CharlstmError, match="no 'test' split"):
        again.split("test")


def test_failure_leaves_nothing(tmp_path):
    out = tmp_path / "d" / "x"
    with pytest.raises(RuntimeError):
        with DatasetBuilder(out) as b:
            b.write_split("train", np.zeros(3, np.uint8))
            raise RuntimeError("boom")
    assert list((tmp_path / "d").iterdir()) == []


@pytest.mark.parametrize("where", ["mkdir", "chmod"])
def test_ctrl_c_as_the_build_starts_leaves_nothing(tmp_path, monkeypatch, where):
    """The temporary folder belongs to the cleanup from the instant it exists: an interruption
    while it is being made (before the `with` block runs) removes it too."""
    real = {"mkdir": Path.mkdir, "chmod": os.chmod}[where]

    def interrupted(path, *a, **k):
        real(path, *a, **k)
        if str(path).endswith(".tmp"):
            raise KeyboardInterrupt  # just after the folder was made

    monkeypatch.setattr(*((Path, "mkdir") if where == "mkdir" else (os, "chmod")), interrupted)
    with pytest.raises(KeyboardInterrupt):
        with DatasetBuilder(tmp_path / "d" / "x") as b:
            b.write_split("train", np.zeros(3, np.uint8))
    assert list((tmp_path / "d").iterdir()) == []


def test_ctrl_c_through_the_cli_leaves_nothing(monkeypatch):
    from click.testing import CliRunner

    from charlstm.cli import main

    real = os.chmod

    def interrupted(path, *a, **k):
        real(path, *a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "chmod", interrupted)
    res = CliRunner().invoke(main, ["data", "synthetic", "counting", "--num", "50"])
    assert res.exit_code == 130 and res.output.strip() == "Interrupted."
    assert list(data_root().iterdir()) == []


def test_existing_is_refused_unless_force(tmp_path):
    out = tmp_path / "x"
    _build(out)
    with pytest.raises(CharlstmError, match="already exists"):
        _build(out, "other text\n")
    ds = _build(out, "other text\n", force=True)
    assert ds.vocab.decode(open_dataset(out).split("train")) == "other te"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]  # no .old or temp folder left


def test_verify_detects_corruption_and_truncation(tmp_path):
    ds = _build(tmp_path / "x")
    f = ds.path / "train.bin"
    data = bytearray(f.read_bytes())
    data[0] ^= 1
    f.write_bytes(bytes(data))
    with pytest.raises(CharlstmError, match="checksum"):
        open_dataset(ds.path)
    f.write_bytes(bytes(data[:-1]))
    with pytest.raises(CharlstmError, match="truncated"):
        open_dataset(ds.path)
    open_dataset(ds.path, verify=False)  # still readable when asked not to verify


def test_missing_dataset_is_a_clear_error():
    with pytest.raises(CharlstmError, match="no dataset named 'nope'"):
        open_dataset("nope")


def test_list_and_symbol_counts(tmp_path):
    assert list_datasets() == []
    _build(data_root() / "b")
    _build(data_root() / "a", "aaa b\n")
    (data_root() / ".a.123.tmp").mkdir()  # an interrupted build is not listed
    (data_root() / "broken").mkdir()
    (data_root() / "broken" / "meta.json").write_text("{")
    found = list_datasets()
    assert [d.name for d in found[:2]] == ["a", "b"]
    assert isinstance(found[2], tuple) and found[2][0].name == "broken"
    ds = open_dataset("a")
    c = symbol_counts(ds, "train", chunk=2)
    assert c.tolist() == np.bincount(ds.split("train"), minlength=ds.vocab.size).tolist()
