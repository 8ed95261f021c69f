"""Trace files: the streamed .npz equals the in-memory trace, reads back without pickle, leaves
no temporary files; LSTMVis folders have what LSTMVis reads."""
import json

import numpy as np
import pytest

from charlstm.errors import CharlstmError
from charlstm.inputs import encode as encode_text
from charlstm.trace import MemorySink, Trace, run_trace, save_npz, trace_text
from charlstm.trace.files import LstmVisWriter, NpzWriter, codepoint_table, load_trace, lstmvis_words
from helpers import TEXT, make_run


@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path, text=TEXT + "é\t")


def test_streamed_npz_equals_memory(run, tmp_path):
    _, model, vocab = run
    ids = encode_text(vocab, TEXT * 3)
    mem = MemorySink(["h", "c", "f"])
    out = tmp_path / "sub" / "t.npz"
    w = NpzWriter(out, ["h", "c", "f"], np.float16, {"run": "x"})
    run_trace(model, ids, [mem, w], chunk=17, vocab=vocab)
    tr = mem.trace()
    z = np.load(out, allow_pickle=False)
    assert sorted(z.files) == sorted(["layer0.h", "layer0.c", "layer0.f", "layer1.h", "layer1.c", "layer1.f", "ids",
                                      "chars", "next_prob", "top_ids", "top_probs", "symbols", "meta"])
    for k in tr.arrays:
        assert z[k].dtype == np.float16 and z[k].shape == (len(ids), 16)
        np.testing.assert_allclose(z[k], tr.arrays[k], atol=2e-3, rtol=1e-3)
    np.testing.assert_array_equal(z["ids"], ids)
    assert "".join(map(chr, z["chars"])) == TEXT * 3
    assert "".join(z["symbols"][z["ids"]]) == TEXT * 3
    np.testing.assert_allclose(z["next_prob"], tr.next_prob, equal_nan=True)
    np.testing.assert_array_equal(z["top_ids"], tr.top_ids)
    meta = json.loads(str(z["meta"]))
    assert meta["format"] == "charlstm-trace" and meta["run"] == "x" and meta["kinds"] == ["h", "c", "f"]
    assert meta["characters"] == len(ids) and meta["dtype"] == "float16"
    assert list(out.parent.iterdir()) == [out]  # no temporary files left


def test_save_and_load_roundtrip(run, tmp_path):
    _, model, vocab = run
    tr = trace_text(model, vocab, TEXT, kinds="h,o", layers=[1])
    save_npz(tmp_path / "a.npz", tr)
    back = load_trace(tmp_path / "a.npz")
    assert isinstance(back, Trace) and back.kinds == ["h", "o"] and back.layers == [1]
    assert back.text == TEXT and back.chars == tr.chars
    for k in tr.arrays:
        np.testing.assert_array_equal(back.arrays[k], tr.arrays[k])
    np.testing.assert_array_equal(back.top_probs, tr.top_probs)


def test_failed_trace_leaves_nothing(run, tmp_path):
    _, model, vocab = run

    class Boom(MemorySink):
        def head(self, *a):
            raise RuntimeError("boom")

    out = tmp_path / "o" / "t.npz"
    with pytest.raises(RuntimeError):
        with NpzWriter(out, ["h"]) as w:
            run_trace(model, encode_text(vocab, TEXT), [w, Boom(["h"])], vocab=vocab)
    assert list((tmp_path / "o").iterdir()) == []


def test_codepoints_of_specials():
    from charlstm.vocab import Vocab

    v = Vocab.build_char({"a": 1})
    assert codepoint_table(v).tolist() == [0xFFFD, 0x0003, ord("a")]
    b = Vocab.build_byte(records=True)
    assert codepoint_table(b)[65] == 65 and codepoint_table(b)[256] == 3


def test_lstmvis_folder(run, tmp_path):
    h5py = pytest.importorskip("h5py")
    _, model, vocab = run
    ids = encode_text(vocab, TEXT)
    folder = tmp_path / "vis"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with LstmVisWriter(folder, ["h", "c", "i"]) as w:
        run_trace(model, ids, [w], chunk=10, vocab=vocab)
    assert (folder / "keep.txt").read_text() == "mine"  # never deletes what it did not write
    with h5py.File(folder / "states.hdf5", "r") as f:
        assert f["layer1.c"].shape == (len(ids), 16) and f["layer0.i"].dtype == np.float32
    with h5py.File(folder / "train.hdf5", "r") as f:
        np.testing.assert_array_equal(f["word_ids"][:], ids)
    lines = (folder / "train.dict").read_text(encoding="utf-8").splitlines()
    pairs = [line.split() for line in lines]
    assert all(len(p) == 2 for p in pairs) and [int(p[1]) for p in pairs] == list(range(vocab.size))
    assert len({p[0] for p in pairs}) == vocab.size
    yml = (folder / "lstm.yml").read_text(encoding="utf-8")
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:
        cfg = yaml.safe_load(yml)
        assert cfg["word_sequence"] == {"file": "train", "path": "word_ids", "dict_file": "words"}
        assert {"type": "state", "layer": 2, "path": "layer1.c"} in cfg["states"]["types"]
        assert cfg["files"]["states"] == "states.hdf5"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_lstmvis_words_are_unique_and_whitespace_free():
    from charlstm.vocab import Vocab

    v = Vocab.build_char({" ": 1, "\n": 1, "\t": 1, "\u2423": 1, "\x0b": 1, "a": 1})
    words = lstmvis_words(v)
    assert len(set(words)) == len(words)
    assert all(w.split() == [w] for w in words)
    assert words[v.symbols.index(" ")] == "\u2423"


def test_load_rejects_other_files(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3), meta=np.array("{}"))
    with pytest.raises(CharlstmError):
        load_trace(tmp_path / "x.npz")
    with pytest.raises(CharlstmError):
        load_trace(tmp_path / "missing.npz")
