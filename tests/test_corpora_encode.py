"""The streaming encoder and the two builds: ids equal Vocab.encode and tokenizers, split rules,
piece boundaries, invalid UTF-8, NFC, determinism."""
from __future__ import annotations

import io
import unicodedata

import numpy as np
import pytest
from tokenizers import Tokenizer

from charlstm.corpora import files
from charlstm.corpora.build import (EncodeOptions, dataset_dir, plan_split, split_sizes, write_records,
                                   write_stream)
from charlstm.corpora.encode import PieceCodec, PieceEncoder, PieceStats, build_vocab, byte_counts
from charlstm.dataset import open_dataset
from charlstm.errors import CharlstmError

MIXED = ("def f(x):\n    return x  # ascii line\n" * 50 + "naïve café e\u0301 Жизнь 中文 😀🇫🇷\n" * 20
         + "tabs\tand\r\nCRLF\n" * 10)


class Pieces:
    """A StreamCorpus over fixed pieces, all of one document (a single running text)."""

    document = "document"

    def __init__(self, pieces):
        self._p, self.total_bytes = list(pieces), None

    def pieces(self):
        return ((0, p) for p in self._p)

    def names(self):
        return ["only"]

    def stats(self):
        return {"documents": 1}


def _pieces(data: bytes, size: int) -> list[bytes]:
    return list(files.read_pieces(io.BytesIO(data), size))


def _all_ids(ds) -> np.ndarray:
    return np.concatenate([ds.split(s) for s in ds.splits])


@pytest.mark.parametrize("units", ["char", "byte"])
def test_stream_ids_equal_vocab_encode_and_tokenizers(tmp_path, units):
    data = MIXED.encode()
    ds = write_stream(tmp_path / "d", Pieces(_pieces(data, 97)), EncodeOptions(units=units, nfc=False),
                      source={}, options={})
    ids = _all_ids(ds)
    assert ids.tolist() == ds.vocab.encode(MIXED).tolist()
    tok = Tokenizer.from_file(str(ds.path / "tokenizer.json"))
    assert tok.encode(MIXED).ids == ids.tolist()
    assert ds.vocab.decode(ids) == MIXED


@pytest.mark.parametrize("size,nfc", [(64, True), (7, False)])
def test_piece_size_does_not_change_the_dataset(tmp_path, size, nfc):
    """Pieces cut at newlines change nothing; a line longer than a piece may be cut inside, which
    only NFC could notice (a combining accent cut from its letter), documented in files.py."""
    data = MIXED.encode()
    a = write_stream(tmp_path / "a", Pieces(_pieces(data, size)), EncodeOptions(nfc=nfc), source={}, options={})
    b = write_stream(tmp_path / "b", Pieces([data]), EncodeOptions(nfc=nfc), source={}, options={})
    for f in ("train.bin", "val.bin", "tokenizer.json"):
        assert (a.path / f).read_bytes() == (b.path / f).read_bytes()


def test_running_text_splits_are_contiguous(tmp_path):
    text = "".join(f"line {i}\n" for i in range(1000))
    ds = write_stream(tmp_path / "d", Pieces([text.encode()]), EncodeOptions(val_frac=0.1, test_frac=0.05),
                      source={}, options={})
    n = len(text)
    tr, va, te = (ds.vocab.decode(ds.split(s)) for s in ("train", "val", "test"))
    assert (len(va), len(te)) == (round(n * 0.1), round(n * 0.05))
    assert tr + va + te == text and text.endswith(te) and text[len(tr):].startswith(va)
    assert ds.meta["stats"]["characters"] == n and ds.meta["records"] is False


def test_single_running_text_keeps_the_contiguous_tail(tmp_path):
    text = "".join(f"line {i}\n" for i in range(1000))
    ds = write_stream(tmp_path / "d", Pieces([text.encode()]), EncodeOptions(val_frac=0.1, seed=5), source={}, options={})
    assert text.endswith(ds.vocab.decode(ds.split("val"))) and ds.meta["split"] == {"by": "contiguous"}


class Docs(Pieces):
    """A StreamCorpus of several documents, each given as a list of pieces."""

    def __init__(self, docs):
        super().__init__([])
        self.docs = docs

    def pieces(self):
        return ((i, p) for i, doc in enumerate(self.docs) for p in doc)

    def names(self):
        return [f"doc{i}" for i in range(len(self.docs))]


@pytest.mark.parametrize("units", ["char", "byte"])
def test_documents_are_routed_whole_to_their_split(tmp_path, units):
    """Many small non-ASCII documents share each encoding batch; every split holds exactly the ids
    of its documents, in corpus order."""
    lines = MIXED.splitlines(keepends=True)
    docs = ["".join(lines[i:i + 3]) for i in range(0, len(lines), 3)]
    ds = write_stream(tmp_path / "d", Docs([_pieces(d.encode(), 40) for d in docs]),
                      EncodeOptions(units=units, val_frac=0.2, test_frac=0.1, seed=4), source={}, options={})
    names = ds.meta["split"]["names"]
    held = {split: [int(n[3:]) for n in names[split]] for split in ("val", "test")}
    held["train"] = sorted(set(range(len(docs))) - set(held["val"]) - set(held["test"]))
    for split, chosen in held.items():
        text = unicodedata.normalize("NFC", "".join(docs[i] for i in chosen))
        assert ds.split(split).tolist() == ds.vocab.encode(text).tolist(), split
    assert ds.meta["split"]["documents"] == {k: len(v) for k, v in held.items()}


def test_plan_split_spreads_every_split_over_the_corpus():
    """5 folders x 8 equal files, val 20%: for every seed each folder gives val a file, and the
    quota is met exactly; test takes other files; seeds differ."""
    lengths = np.full(40, 100, dtype=np.int64)
    choices = set()
    for seed in range(50):
        plan = plan_split(lengths, 800, 400, seed)
        assert plan.by == "document" and plan.sizes == (2800, 800, 400)
        val = np.flatnonzero(plan.assign == 1)
        assert len(val) == 8 and set(val // 8) == set(range(5)), (seed, val)
        assert len(np.flatnonzero(plan.assign == 2)) == 4
        choices.add(tuple(val))
    assert len(choices) > 40


def test_plan_split_by_units_with_uneven_documents():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 5000, 300)
    lengths[7] = 0  # an empty document is never chosen
    total = int(lengths.sum())
    n_val, n_test = round(total * 0.05), round(total * 0.1)
    plan = plan_split(lengths, n_val, n_test, 3)
    assert plan.by == "document" and plan.assign[7] == 0
    for k, quota in ((1, n_val), (2, n_test)):
        got = int(lengths[plan.assign == k].sum())
        assert abs(got - quota) <= lengths.max() / 2  # half a document at most
    assert sum(plan.sizes) == total
    # a prefix of a random order: the held-out documents are not the short ones
    held = lengths[plan.assign > 0]
    assert 0.5 < np.median(held) / np.median(lengths[lengths > 0]) < 2


def test_plan_split_falls_back_to_the_tail_with_a_note():
    assert plan_split(np.array([1000]), 50, 0, 0).note is None  # one document: the rule, no note
    few = plan_split(np.array([100, 100, 100]), 15, 0, 0, "file")
    assert few.by == "contiguous" and few.sizes == (285, 15, 0)
    assert few.note == "3 files are too few or too large to fill half of the val split's 15 characters with whole files"
    assert plan_split(np.array([100, 100, 100]), 0, 0, 0).by == "document"  # nothing held out
    greedy = plan_split(np.array([100, 100]), 160, 0, 0, "file")  # val would take both files
    assert greedy.by == "contiguous" and greedy.note == "whole files for val and test would leave no file to train on"


def test_records_split_by_whole_records(tmp_path):
    recs = [f"rec{i}" for i in range(100)]
    ds = write_records(tmp_path / "d", recs, EncodeOptions(val_frac=0.1, test_frac=0.2, seed=3),
                       source={}, options={}, stats={})
    got = {}
    for s in ds.splits:
        text = ds.vocab.decode(ds.split(s))
        assert text.endswith("<eot>")
        got[s] = text[:-len("<eot>")].split("<eot>")
    assert (len(got["val"]), len(got["test"]), len(got["train"])) == (10, 20, 70)
    assert sorted(sum(got.values(), [])) == sorted(recs)
    assert got["train"] != sorted(got["train"], key=lambda r: int(r[3:]))  # shuffled by the seed
    assert ds.meta["records"] is True and ds.meta["stats"]["records_per_split"] == {"train": 70, "val": 10, "test": 20}
    other = write_records(tmp_path / "e", recs, EncodeOptions(val_frac=0.1, test_frac=0.2, seed=4),
                          source={}, options={}, stats={})
    assert other.vocab.decode(other.split("val")) != ds.vocab.decode(ds.split("val"))


@pytest.mark.parametrize("units", ["char", "byte"])
def test_records_ids_match_vocab_and_tokenizers(tmp_path, units):
    recs = ["héllo 😀", "wörld", "a\nb"]
    ds = write_records(tmp_path / "d", recs, EncodeOptions(units=units, val_frac=0), source={}, options={}, stats={})
    ids = ds.split("train")
    assert ds.vocab.decode(ids).count("<eot>") == 3 and ids[-1] == ds.vocab.eot_id
    text = ds.vocab.decode(ids)
    pieces = text.split("<eot>")[:-1]
    assert sorted(pieces) == sorted(recs)
    assert ds.meta["dtype"] == ("uint8" if units == "char" else "uint16")


def test_invalid_utf8_policy(tmp_path):
    data = b"ok \xff\xfe bad, real \xef\xbf\xbd kept\n"
    ch = write_stream(tmp_path / "c", Pieces([data]), EncodeOptions(val_frac=0), source={}, options={})
    assert ch.vocab.decode(ch.split("train")) == "ok \ufffd\ufffd bad, real \ufffd kept\n"
    assert ch.meta["stats"]["invalid_utf8"] == 2
    by = write_stream(tmp_path / "b", Pieces([data]), EncodeOptions(units="byte", val_frac=0), source={}, options={})
    assert bytes(by.split("train")) == data  # raw bytes kept


def test_nfc(tmp_path):
    decomposed = "cafe\u0301\n"
    on = write_stream(tmp_path / "on", Pieces([decomposed.encode()]), EncodeOptions(val_frac=0), source={}, options={})
    off = write_stream(tmp_path / "off", Pieces([decomposed.encode()]), EncodeOptions(val_frac=0, nfc=False),
                       source={}, options={})
    assert on.vocab.decode(on.split("train")) == unicodedata.normalize("NFC", decomposed)
    assert off.vocab.decode(off.split("train")) == decomposed


def test_min_count_and_stats(tmp_path):
    ds = write_stream(tmp_path / "d", Pieces([b"aaaa bbb c\n\n"]), EncodeOptions(min_count=2, val_frac=0),
                      source={}, options={})
    assert ds.vocab.decode(ds.split("train")) == "aaaa bbb <unk>\n\n"
    assert ds.meta["stats"]["unknown"] == 1 and ds.meta["stats"]["distinct_chars"] == 5


def test_byte_counts_and_piece_stats():
    for d in (b"", b"a", b"ab", b"abc\x00\xff\x7f"):
        assert byte_counts(d).tolist() == np.bincount(np.frombuffer(d, np.uint8), minlength=256).tolist()
    st = PieceStats()
    codec = PieceCodec("char", nfc=True)
    for p in (b"ab\n", "é😀\n".encode()):
        codec.count(p, st)
    assert st.units == 6 and st.char_counts() == {"\n": 2, "a": 1, "b": 1, "é": 1, "😀": 1}


def test_piece_encoder_paths_agree():
    """uint8 translate path, uint16 gather path and the non-ASCII path all equal Vocab.encode."""
    for text in ("just ascii\n", MIXED, MIXED + "".join(chr(0x4E00 + i) for i in range(300))):
        st = PieceStats()
        PieceCodec("char", False).count(text.encode(), st)
        v = build_vocab("char", st, 1, records=False)
        enc = PieceEncoder(v, nfc=False)
        for line in text.splitlines(keepends=True)[:40]:
            assert enc.encode(line.encode()).tolist() == v.encode(line).tolist()
            assert enc.encode(line.encode()).dtype == v.dtype


def test_read_pieces_never_split_utf8():
    data = ("é" * 10 + "\n" + "😀" * 9 + "x\n" + "a" * 30).encode()
    for size in (4, 5, 7, 64):
        pieces = _pieces(data, size)
        assert b"".join(pieces) == data
        for p in pieces:
            p.decode("utf-8")


def test_same_input_same_bytes(tmp_path):
    paths = []
    for d in ("a", "b"):
        ds = write_stream(tmp_path / d, Pieces([MIXED.encode()]), EncodeOptions(test_frac=0.1), source={"x": 1}, options={})
        paths.append(ds.path)
    for f in ("train.bin", "val.bin", "test.bin", "tokenizer.json"):
        assert (paths[0] / f).read_bytes() == (paths[1] / f).read_bytes()
    m = [(p / "meta.json").read_text().replace(f'"{p.name}"', '"N"') for p in paths]
    assert m[0] == m[1]


def test_bad_options_and_tiny_corpora(tmp_path):
    for opts, msg in ((EncodeOptions(units="word"), "unknown units"), (EncodeOptions(val_frac=1.5), "--val-frac"),
                      (EncodeOptions(val_frac=0.5, test_frac=0.5), "sum < 1"), (EncodeOptions(min_count=0), "--min-count"),
                      (EncodeOptions(seed=-1), "--seed must be a whole number >= 0"),
                      (EncodeOptions(test_frac=float("nan")), r"--test-frac must be in \[0, 1\)")):
        with pytest.raises(CharlstmError, match=msg):
            write_stream(tmp_path / "d", Pieces([b"abc"]), opts, source={}, options={})
    with pytest.raises(CharlstmError, match="empty"):
        write_stream(tmp_path / "d", Pieces([]), EncodeOptions(), source={}, options={})
    with pytest.raises(CharlstmError, match="too small"):
        write_stream(tmp_path / "d", Pieces([b"a"]), EncodeOptions(), source={}, options={})
    with pytest.raises(CharlstmError, match="too small"):
        write_records(tmp_path / "d", ["one"], EncodeOptions(), source={}, options={}, stats={})
    with pytest.raises(CharlstmError, match="no records"):
        write_records(tmp_path / "d", [], EncodeOptions(), source={}, options={}, stats={})
    assert not (tmp_path / "d").exists()
    assert split_sizes(100, 0.05, 0) == (95, 5, 0) and split_sizes(3, 0.01, 0.01) == (1, 1, 1)


def test_source_changing_between_passes_is_an_error(tmp_path):
    class Growing(Pieces):
        calls = 0

        def pieces(self):
            self.calls += 1
            return ((0, p) for p in [b"abc\n"] * self.calls)

    with pytest.raises(CharlstmError, match="changed while"):
        write_stream(tmp_path / "d", Growing([]), EncodeOptions(val_frac=0), source={}, options={})
    assert list(tmp_path.iterdir()) == []


def test_dataset_names(tmp_path):
    assert dataset_dir("ok-name_1.2", tmp_path) == tmp_path / "ok-name_1.2"
    for bad in ("", "../x", "a/b", ".hidden", "-x"):
        with pytest.raises(CharlstmError, match="invalid dataset name"):
            dataset_dir(bad, tmp_path)
    (tmp_path / "taken").mkdir()
    with pytest.raises(CharlstmError, match="already exists"):
        dataset_dir("taken", tmp_path)
    assert dataset_dir("taken", tmp_path, force=True) == tmp_path / "taken"
    ds = write_stream(tmp_path / "x", Pieces([b"some text\n"]), EncodeOptions(), source={}, options={})
    assert open_dataset(ds.path).meta["stats"]["documents"] == 1
