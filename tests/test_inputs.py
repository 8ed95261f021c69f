"""charlstm.inputs: the one rule every command and the API use to turn a text, a file or a split into
ids: <eot>, unknown characters, encodings, and the dataset checks."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from charlstm.dataset import DatasetBuilder
from charlstm.errors import CharlstmError
from charlstm.inputs import check_one_source, encode, read_file, read_input, split_ids, step_symbols
from charlstm.vocab import Vocab
from helpers import TEXT, make_run


def _vocab() -> Vocab:
    return Vocab.build_char(Counter("abcXYx\n "))


def test_a_literal_eot_is_the_boundary_id():
    v = _vocab()
    ids = encode(v, "ab<eot>c<eot>")
    assert ids.tolist() == [v.encode("a")[0], v.encode("b")[0], v.eot_id, v.encode("c")[0], v.eot_id]
    assert step_symbols(v, ids) == ["a", "b", "<eot>", "c", "<eot>"]
    # the characters of "<eot>" are not in this vocabulary: as a boundary they are no error
    assert "<" not in v.symbols


def test_a_vocabulary_without_eot_reads_it_as_five_characters():
    v = Vocab.build_byte(records=False)
    assert encode(v, "a<eot>").tolist() == list(b"a<eot>")


def test_unknown_characters_are_named_at_their_place_in_the_whole_text():
    v = _vocab()
    with pytest.raises(CharlstmError, match=r"2 character\(s\) not in the model's vocabulary: 'z' at 2, 'q' at 9"):
        encode(v, "abz<eot>aq")
    assert step_symbols(v, encode(v, "abz<eot>aq", "skip")) == ["a", "b", "<eot>", "a"]
    assert step_symbols(v, encode(v, "az", "replace")) == ["a", "<unk>"]
    with pytest.raises(CharlstmError, match="policy must be error, skip or replace"):
        encode(v, "ab", "drop")


def test_step_symbols_of_a_byte_vocabulary_are_one_character_each():
    v = Vocab.build_byte(records=True)
    ids = np.array([104, 195, 169, 256])
    assert step_symbols(v, ids) == ["h", "\ufffd", "\ufffd", "<eot>"]


def test_files_are_utf8_for_char_models_and_any_bytes_for_byte_models(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"ab\xff<eot>")
    with pytest.raises(CharlstmError, match="not UTF-8 text"):
        read_file(f, "char")
    text = read_file(f, "byte")
    v = Vocab.build_byte(records=True)
    assert encode(v, text).tolist() == [97, 98, 255, v.eot_id]
    with pytest.raises(CharlstmError, match="cannot read file .*missing.txt: no such file"):
        read_file(tmp_path / "missing.txt")
    with pytest.raises(CharlstmError, match="is a folder"):
        read_file(tmp_path)


def test_read_input_needs_exactly_one_source_and_some_text(tmp_path):
    v = _vocab()
    with pytest.raises(CharlstmError, match="exactly one of --text, --file or --split"):
        read_input(v)
    with pytest.raises(CharlstmError, match="got --text and --split"):
        read_input(v, text="ab", split="val")
    with pytest.raises(CharlstmError, match="the text is empty"):
        read_input(v, text="")
    with pytest.raises(CharlstmError, match="no such file"):
        read_input(v, file=tmp_path / "missing.txt")
    (tmp_path / "e.txt").write_text("")
    with pytest.raises(CharlstmError, match="the file e.txt is empty"):
        read_input(v, file=tmp_path / "e.txt")
    with pytest.raises(CharlstmError, match="not in the model's vocabulary"):
        read_input(v, text="abz")
    inp = read_input(v, text="abzc", unknown="skip")
    assert inp.symbols == ["a", "b", "c"] and inp.source == "--text"
    with pytest.raises(CharlstmError, match="at least 2 are needed"):
        read_input(v, text="a", min_len=2, what="analyse")
    with pytest.raises(CharlstmError, match="every character was skipped"):
        read_input(v, text="zz", unknown="skip")
    check_one_source(file="f")


def test_read_input_limit_truncates_and_says_so():
    inp = read_input(_vocab(), text="abc" * 10, limit=7)
    assert len(inp) == 7 and inp.truncated


def test_read_input_reads_a_split_of_the_runs_dataset(tmp_path):
    from charlstm.corpora.synthetic import write_synthetic

    ds = write_synthetic("counting", num=50, seed=1, data_dir=tmp_path / "data")
    cfg = {"dataset": {"name": ds.name, "path": str(ds.path)}}
    inp = read_input(ds.vocab, cfg, split="val", limit=30)
    assert len(inp) == min(30, ds.meta["splits"]["val"]["tokens"])
    assert inp.ids.tolist() == np.asarray(ds.split("val")[:len(inp)]).tolist()
    assert inp.source == "split val of counting"
    with pytest.raises(CharlstmError, match="not found"):
        read_input(ds.vocab, {}, split="val")


def _dataset_for(tmp_path, vocab, text):
    ids = vocab.encode(text).astype(vocab.dtype)
    with DatasetBuilder(tmp_path / "ds", force=True) as b:
        b.write_split("train", ids)
        b.write_split("val", ids)
        return b.commit(vocab, {"records": False, "source": {"kind": "test"}, "options": {}, "stats": {}})


def test_split_ids_reads_the_runs_dataset(tmp_path):
    path, m, v = make_run(tmp_path)
    ds = _dataset_for(tmp_path, v, TEXT)
    cfg = {"dataset": {"name": "ds", "path": str(ds.path)}}
    ids = split_ids(cfg, v, "val")
    assert np.array_equal(np.asarray(ids), v.encode(TEXT))
    with pytest.raises(CharlstmError, match="no 'test' split"):
        split_ids(cfg, v, "test")
    with pytest.raises(CharlstmError, match="not found"):
        split_ids({"dataset": {"name": "gone", "path": str(tmp_path / "gone")}}, v, "val")
    data = bytearray((ds.path / "val.bin").read_bytes())
    data[3] ^= 1
    (ds.path / "val.bin").write_bytes(bytes(data))
    with pytest.raises(CharlstmError, match="corrupted"):
        split_ids(cfg, v, "val")
    (ds.path / "val.bin").write_bytes(bytes(data[:-2]))
    with pytest.raises(CharlstmError, match="truncated"):
        split_ids(cfg, v, "val")


def test_a_rebuilt_dataset_with_the_same_vocabulary_size_is_refused(tmp_path):
    """The split reader compares the symbols, not only their number (neurons once compared sizes)."""
    _, m, v = make_run(tmp_path)
    shifted = Vocab(units="char", symbols=list(v.symbols[:2]) + [chr(ord(c) + 1) if c not in "\n " else c
                                                                  for c in v.symbols[2:]], eot_id=1, unk_id=0)
    assert shifted.size == v.size and shifted.symbols != v.symbols
    ds = _dataset_for(tmp_path, shifted, "".join(s for s in shifted.symbols[2:]))
    with pytest.raises(CharlstmError, match="vocabulary"):
        split_ids({"dataset": {"name": "ds", "path": str(ds.path)}}, v, "val")


def test_split_with_another_vocabulary_is_refused(tmp_path):
    _, m, v = make_run(tmp_path)
    _, _, other = make_run(tmp_path, name="other", text="xyz")
    ds = _dataset_for(tmp_path, other, "xyzzy")
    with pytest.raises(CharlstmError, match="vocabulary"):
        split_ids({"dataset": {"name": "ds", "path": str(ds.path)}}, v, "val")
