"""`charlstm trace` end to end with CliRunner on random-weight runs: outputs, options, and one clear
`Error:` line (no traceback, non-zero exit) for each kind of bad input."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from charlstm.fileio import atomic_write_json
from charlstm.cli import main
from charlstm.dataset import DatasetBuilder
from helpers import assert_error_line, TEXT, make_run


def _invoke(*args, env=None):
    return CliRunner().invoke(main, ["trace", *map(str, args)], env=env, catch_exceptions=False)


@pytest.fixture
def run(tmp_path):
    """A run whose config points at a dataset with a val split of TEXT * 80 (~4,700 characters)."""
    path, model, vocab = make_run(tmp_path / "checkpoints", name="demo")
    with DatasetBuilder(tmp_path / "data" / "ds") as b:
        b.write_split("train", vocab.encode(TEXT).astype(vocab.dtype))
        b.write_split("val", vocab.encode(TEXT * 80).astype(vocab.dtype))
        b.commit(vocab, {"source": {"kind": "test"}, "options": {}, "stats": {}, "records": False})
    cfg = json.loads((path / "config.json").read_text())
    cfg["dataset"] = {"name": "ds", "path": str(tmp_path / "data" / "ds"), "meta": {}}
    atomic_write_json(path / "config.json", cfg)
    return path


def _error(r, *words):
    line = assert_error_line(r)
    assert r.output.strip().splitlines() == [line], r.output  # the one line, nothing else
    for w in words:
        assert w in line, line


def test_make_demo_command(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = _invoke("demo", "--split", "val", "--limit", 3000, "--html", "out/demo-trace.html", "-o", "out/demo-trace.npz")
    assert r.exit_code == 0, r.output
    assert "out/demo-trace.html" in r.stdout and "out/demo-trace.npz" in r.stdout
    z = np.load(tmp_path / "out" / "demo-trace.npz")
    assert z["layer1.c"].shape == (3000, 16) and z["ids"].shape == (3000,)
    page = (tmp_path / "out" / "demo-trace.html").read_text()
    assert page.startswith("<!doctype html>") and len(page) < 2_000_000


def test_text_npz_options(run, tmp_path):
    out = tmp_path / "t.npz"
    r = _invoke(run, "--text", TEXT, "--layers", "1", "--kinds", "c,f", "--dtype", "float16", "-o", out)
    assert r.exit_code == 0, r.output
    z = np.load(out)
    assert sorted(k for k in z.files if k.startswith("layer")) == ["layer1.c", "layer1.f"]
    assert z["layer1.c"].dtype == np.float16
    meta = json.loads(str(z["meta"]))
    assert meta["source"] == {"kind": "text"} and meta["layers"] == [1]


def test_file_and_limit(run, tmp_path):
    f = tmp_path / "in.py"
    f.write_text(TEXT * 3, encoding="utf-8")
    import torch

    threads = torch.get_num_threads()
    try:
        r = _invoke(run, "--file", f, "--limit", 10, "-o", tmp_path / "a.npz", "--threads", 1, "--chunk", 3)
    finally:
        torch.set_num_threads(threads)  # the CLI sets it process-wide; leave other tests alone
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "a.npz")["ids"].shape == (10,)


def test_default_output(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = _invoke(run, "--text", "def f")
    assert r.exit_code == 0 and (tmp_path / "trace.npz").is_file()


def test_show_colours_and_no_color(run):
    r = _invoke(run, "--text", "def f(x):\n", "--show", "layer1.c:3")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("layer1.c:3") and r.stdout.count("\x1b[48;2;") == 10
    r = _invoke(run, "--text", "def f(x):\n", "--show", "layer0.h:0", env={"NO_COLOR": "1"})
    assert "\x1b" not in r.stdout and "9\t\\n\t" in r.stdout


def test_gate_stats_and_plot(run, tmp_path):
    r = _invoke(run, "--text", TEXT, "--gate-stats", "--gate-plot", tmp_path / "p" / "g.png")
    assert r.exit_code == 0, r.output
    assert "layer gate" in r.stdout and r.stdout.count("\n    1    ") == 3
    assert (tmp_path / "p" / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_lstmvis(run, tmp_path):
    pytest.importorskip("h5py")
    r = _invoke(run, "--split", "val", "--limit", 100, "--format", "lstmvis", "-o", tmp_path / "vis")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "vis").iterdir()) == ["lstm.yml", "states.hdf5", "train.dict", "train.hdf5"]


def test_unknown_policies(run, tmp_path):
    _error(_invoke(run, "--text", "déf ☃", "-o", tmp_path / "x.npz"), "'é' at 1", "'☃' at 4", "--unknown")
    assert not (tmp_path / "x.npz").exists()
    r = _invoke(run, "--text", "déf", "--unknown", "skip", "-o", tmp_path / "s.npz")
    assert r.exit_code == 0 and np.load(tmp_path / "s.npz")["ids"].shape == (2,)
    r = _invoke(run, "--text", "déf", "--unknown", "replace", "-o", tmp_path / "r.npz")
    assert r.exit_code == 0 and np.load(tmp_path / "r.npz")["ids"].tolist()[1] == 0  # <unk>


@pytest.mark.parametrize("args,words", [
    (["--text", ""], ["empty"]),
    (["--text", "é", "--unknown", "skip"], ["skipped"]),
    (["--text", "a", "--layers", "5"], ["layer 5", "0..1"]),
    (["--text", "a", "--kinds", "h,q"], ["kind 'q'", "h, c, i, f, g, o"]),
    (["--text", "a", "--show", "layer1.c:99"], ["unit 99", "0..15"]),
    (["--text", "a", "--show", "layer9.c:1"], ["layer 9"]),
    (["--text", "a", "--show", "layer1.z:1"], ["kind 'z'"]),
    (["--text", "a", "--show", "c37"], ["layer1.c:37"]),
    (["--text", "a", "--show", "layer0.c:1", "--layers", "1"], ["--layers"]),
    ([], ["exactly one of --text, --file or --split"]),
    (["--text", "a", "--split", "val"], ["exactly one"]),
    (["--file", "/nonexistent/x.txt"], ["no such file"]),
    (["--text", "a", "--limit", "0"], ["--limit"]),
    (["--text", "a", "--format", "lstmvis"], ["-o FOLDER"]),
    (["--text", "a", "--checkpoint", "last"], ["missing"]),
    (["--split", "test"], ["no 'test' split"]),
    (["--text", "a", "--threads", "0"], ["--threads"]),
    (["--text", "a", "--chunk", "0"], ["--chunk"]),
])
def test_bad_input(run, args, words):
    _error(_invoke(run, *args), *words)


def test_missing_run():
    _error(_invoke("nope", "--text", "a"), "no run named 'nope'")


def test_rnn_has_no_gates(tmp_path):
    path, _, _ = make_run(tmp_path, name="r", cell="rnn")
    _error(_invoke(path, "--text", "def", "--gate-stats"), "no gates")
    r = _invoke(path, "--text", "def", "--html", tmp_path / "r.html")
    assert r.exit_code == 0 and (tmp_path / "r.html").is_file()


def test_not_utf8(run, tmp_path):
    f = tmp_path / "bin.txt"
    f.write_bytes(b"ab\xff\xfe")
    _error(_invoke(run, "--file", f), "not UTF-8")


def test_gru_html(tmp_path):
    path, _, _ = make_run(tmp_path, name="g", cell="gru")
    r = _invoke(path, "--text", TEXT, "--html", tmp_path / "g.html", "--kinds", "h,z")
    assert r.exit_code == 0, r.output
    page = (tmp_path / "g.html").read_text()
    assert '"gates":{"0":{"r"' in page  # saturation of every gate, from the whole trace


def test_byte_units(tmp_path):
    path, _, vocab = make_run(tmp_path, name="b", units="byte")
    r = _invoke(path, "--text", "añ\n<eot>", "-o", tmp_path / "b.npz", "--html", tmp_path / "b.html", "--show", "layer0.h:1")
    assert r.exit_code == 0, r.output
    z = np.load(tmp_path / "b.npz")
    # a literal <eot> in a text is the end-of-record symbol (charlstm.inputs), stored as U+0003 in chars
    assert z["ids"].tolist() == list("añ\n".encode()) + [vocab.eot_id]
    assert z["chars"].tolist() == list("añ\n".encode()) + [3]
    assert "\\xc3" in r.stdout  # a lone UTF-8 byte is spelled out, not printed raw
