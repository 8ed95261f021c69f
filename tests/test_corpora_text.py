"""Text corpora: files, folders, order, binary and unreadable files, hub text columns."""
from __future__ import annotations

import json

import pytest

from charlstm.corpora import files, text as text_mod
from charlstm.corpora.build import EncodeOptions
from charlstm.corpora.text import write_text
from charlstm.errors import CharlstmError
from charlstm.dataset import data_root

NO_VAL = EncodeOptions(val_frac=0)


def _text(ds) -> str:
    return "".join(ds.vocab.decode(ds.split(s)) for s in ds.splits)


def test_files_and_folders_in_order(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "2.txt").write_text("chapter two\n")
    (tmp_path / "book" / "1.txt").write_text("chapter one — naïve 😀")  # newline added at the end
    (tmp_path / "book" / ".notes.txt").write_text("hidden\n")
    (tmp_path / "book" / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    (tmp_path / "intro.txt").write_text("intro\n")
    ds = write_text([tmp_path / "intro.txt", tmp_path / "book"], opts=NO_VAL)
    assert ds.name == "text"
    assert _text(ds) == "intro\nchapter one — naïve 😀\nchapter two\n"
    assert ds.meta["stats"]["files"] == 3 and ds.meta["stats"]["skipped"] == {"binary": 1}
    one = write_text([tmp_path / "book"], exts="txt", opts=NO_VAL)
    assert one.name == "book" and one.meta["stats"]["skipped"] == {"extension": 1}


def test_large_file_streams_in_pieces(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "PIECE", 64)
    body = "".join(f"line {i}: héllo wörld\n" for i in range(500))
    (tmp_path / "big.txt").write_text(body)
    ds = write_text([tmp_path / "big.txt"], opts=EncodeOptions(val_frac=0.1))
    assert ds.name == "big" and _text(ds) == body
    assert ds.vocab.decode(ds.split("val")) == body[-round(len(body) * 0.1):]
    assert ds.meta["split"] == {"by": "contiguous"}  # one file: a single running text keeps its tail


def test_several_files_split_by_whole_files(tmp_path):
    for i in range(20):
        (tmp_path / f"ch{i:02}.txt").write_text(f"chapter {i:02}\n" * 10)
    ds = write_text([tmp_path], opts=EncodeOptions(val_frac=0.1, seed=2))
    val = ds.vocab.decode(ds.split("val"))
    names = ds.meta["split"]["names"]["val"]
    assert len(names) == 2 and all(n.startswith(f"{tmp_path}/ch") for n in names)
    assert val == "".join(f"chapter {n[-6:-4]}\n" * 10 for n in names)


def test_unreadable_file_is_skipped_with_a_warning(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("aaa\n")
    (tmp_path / "b.txt").write_text("bbb\n")

    def fake_open(path, mode="r", *a, **k):
        if str(path).endswith("a.txt"):
            raise PermissionError(13, "Permission denied")
        return open(path, mode, *a, **k)

    monkeypatch.setattr(text_mod, "open", fake_open, raising=False)
    warnings = []
    ds = write_text([tmp_path], opts=NO_VAL, on_warning=warnings.append)
    assert _text(ds) == "bbb\n" and ds.meta["stats"]["skipped"] == {"unreadable": 1}
    assert len(warnings) == 1 and "a.txt (Permission denied)" in warnings[0]


def test_hub_text_column_from_a_local_file(tmp_path):
    rows = [{"id": i, "body": f"row {i} ü"} for i in range(20)] + [{"id": 99, "body": None}]
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ds = write_text(hub=str(tmp_path / "corpus.jsonl"), opts=NO_VAL)
    assert ds.name == "corpus" and ds.meta["source"]["column"] == "body"
    assert _text(ds) == "".join(f"row {i} ü\n" for i in range(20))
    held = write_text(hub=str(tmp_path / "corpus.jsonl"), name="held", opts=EncodeOptions(val_frac=0.2, seed=1))
    split = held.meta["split"]
    assert split["by"] == "document" and split["document"] == "row" and split["documents"]["val"] == 4
    assert held.vocab.decode(held.split("val")) == "".join(f"row {i} ü\n" for i in split["names"]["val"])
    with pytest.raises(CharlstmError, match="no column 'nope'"):
        write_text(hub=str(tmp_path / "corpus.jsonl"), column="nope", name="x")
    with pytest.raises(CharlstmError, match="holds int values"):
        write_text(hub=str(tmp_path / "corpus.jsonl"), column="id", name="y")


def test_bad_text_inputs(tmp_path):
    (tmp_path / "bin.dat").write_bytes(b"\0\1\2")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "emptydir").mkdir()
    cases = [([tmp_path / "missing.txt"], "no such file or folder"),
             ([tmp_path / "bin.dat"], r"no usable text files \(skipped: 1 binary\)"),
             ([tmp_path / "empty.txt"], "is empty"), ([tmp_path / "emptydir"], "no usable text files"),
             ([], "give text files/folders or --hub")]
    for paths, msg in cases:
        with pytest.raises(CharlstmError, match=msg):
            write_text(paths)
    assert not data_root().exists()
