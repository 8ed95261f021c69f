"""The four synthetic tasks: formats, ranges, determinism, and their record datasets."""
from __future__ import annotations

import re

import pytest

from charlstm.corpora.synthetic import TASKS, generate, write_synthetic
from charlstm.errors import CharlstmError


def test_counting():
    seqs = generate("counting", 500, seed=1)
    ns = set()
    for s in seqs:
        m = re.fullmatch(r"(a+)X(b+)", s)
        assert m and len(m[1]) == len(m[2])
        ns.add(len(m[1]))
    assert ns == set(range(1, 11))


def test_selective_counting():
    xs = 0
    for s in generate("selective-counting", 500, seed=2):
        m = re.fullmatch(r"([aX]+)Y(b+)", s)
        assert m and m[1].count("a") == len(m[2]) and 1 <= len(m[2]) <= 10
        xs += m[1].count("X")
    assert xs > 0  # distractors do occur


def test_remember():
    firsts = set()
    for s in generate("remember", 300, seed=3):
        m = re.fullmatch(r"([AB])(x{1,10})Y([ab])", s)
        assert m and m[3] == m[1].lower()
        firsts.add(m[1])
    assert firsts == {"A", "B"}


def test_copy():
    seqs = generate("copy", 300, seed=4)
    for s in seqs:
        m = re.fullmatch(r"([abc]{3})X([abc]{3})", s)
        assert m and m[1] == m[2]
    assert len(set(seqs)) > 20
    assert all(len(s) == 11 for s in generate("copy", 20, min_n=5, max_n=5))


def test_ranges_and_determinism():
    assert generate("counting", 50, seed=7) == generate("counting", 50, seed=7)
    assert generate("counting", 50, seed=7) != generate("counting", 50, seed=8)
    assert {len(s) for s in generate("counting", 200, min_n=15, max_n=15)} == {31}
    assert set(TASKS) == {"counting", "selective-counting", "remember", "copy"}


@pytest.mark.parametrize("kw,msg", [(dict(task="nope"), "unknown task 'nope'"), (dict(min_n=0), "--min-n"),
                                    (dict(min_n=5, max_n=2), "--max-n"), (dict(num=0), "--num")])
def test_bad_arguments(kw, msg):
    with pytest.raises(CharlstmError, match=msg):
        generate(**{"task": "counting", "num": 10, **kw})


def test_write_synthetic_is_a_record_dataset():
    ds = write_synthetic("counting", num=200, seed=5)
    assert ds.name == "counting" and ds.meta["records"] is True
    assert ds.vocab.symbols == ["<unk>", "<eot>", "X", "a", "b"]
    assert ds.meta["source"] == {"kind": "synthetic", "task": "counting"}
    assert ds.meta["options"]["num"] == 200 and ds.meta["options"]["seed"] == 5
    recs = []
    for s in ds.splits:
        text = ds.vocab.decode(ds.split(s))
        assert text.endswith("<eot>")
        recs += text.split("<eot>")[:-1]
    assert sorted(recs) == sorted(generate("counting", 200, seed=5))
    assert ds.meta["stats"]["records_per_split"] == {"train": 190, "val": 10}
    with pytest.raises(CharlstmError, match="already exists"):
        write_synthetic("counting")
