"""`charlstm sample` and `charlstm eval` end to end with CliRunner, bad input included."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import charlstm
from charlstm.cli import main
from charlstm.config import DynamicSettings
from charlstm.dataset import DatasetBuilder
from charlstm.fileio import atomic_write_json
from charlstm.runs import open_run

from helpers import assert_error_line, TEXT, make_run


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path / "checkpoints")


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def _error(result, match: str) -> None:
    """One clear line on stderr, non-zero exit, no traceback."""
    assert_error_line(result, match)


def test_sample_streams_one_sample(run):
    r = invoke("sample", "tiny", "--prime", "def ", "-n", 40, "--seed", 3, "--no-stop-at-eot", "-q")
    assert r.exit_code == 0, r.output
    want = charlstm.load("tiny").generate("def ", length=40, seed=3, stop_at_eot=False)
    assert r.stdout == "def " + want + "\n"
    assert r.stderr == ""
    again = invoke("sample", "tiny", "--prime", "def ", "-n", 40, "--seed", 3, "--no-stop-at-eot", "-q")
    assert again.stdout == r.stdout


def test_sample_reports_the_seed(run, monkeypatch):
    monkeypatch.setenv("CHARLSTM_QUIET", "0")
    r = invoke("sample", "tiny", "-n", 10, "--no-stop-at-eot", "--seed", 12)
    assert r.exit_code == 0 and "seed 12" in r.stderr and "10 characters" in r.stderr


def test_several_samples_are_separated(run):
    r = invoke("sample", "tiny", "--prime", "def ", "-n", 20, "-N", 3, "--greedy", "--no-stop-at-eot", "-q")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert [x for x in lines if x.startswith("────")] == [f"──── sample {i}/3 ────" for i in (1, 2, 3)]
    text = charlstm.load("tiny").generate("def ", length=20, greedy=True, stop_at_eot=False)
    assert r.stdout.count("def " + text) == 3


def test_prime_file_and_stop_escapes(run, tmp_path):
    (tmp_path / "p.txt").write_text("class K:\n", encoding="utf-8")
    m = charlstm.load("tiny")
    full = m.generate("class K:\n", length=60, seed=2, stop_at_eot=False)
    stop = full[20:22]
    shown = stop.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    r = invoke("sample", "tiny", "--prime-file", tmp_path / "p.txt", "-n", 60, "--seed", 2, "--no-stop-at-eot",
               "--stop", shown, "-q")
    assert r.exit_code == 0, r.output
    assert r.stdout == "class K:\n" + full[:full.index(stop) + 2] + "\n"
    r = invoke("sample", "tiny", "--prime-file", "-", "-n", 5, "--seed", 2, "-q", "--no-stop-at-eot", input="class K:\n")
    assert r.stdout == "class K:\n" + full[:5] + "\n"


def test_output_jsonl_and_text(run, tmp_path):
    out = tmp_path / "s.jsonl"
    r = invoke("sample", "tiny", "-p", "def ", "-n", 15, "-N", 2, "--seed", 5, "--top-k", 4, "--top-p", 0.9,
               "-t", 0.7, "--clamp", "layer1.c:2=0.5", "-o", out, "-q", "--no-stop-at-eot")
    assert r.exit_code == 0, r.output
    recs = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    want = charlstm.load("tiny").generate("def ", length=15, seed=5, top_k=4, top_p=0.9, temperature=0.7,
                                          num_samples=2, clamp="layer1.c:2=0.5", stop_at_eot=False)
    assert [x["text"] for x in recs] == want
    assert [x["sample"] for x in recs] == [0, 1] and recs[0]["prime"] == "def " and recs[0]["run"] == "tiny"
    o = recs[0]["options"]
    assert (o["seed"], o["top_k"], o["top_p"], o["temperature"], o["clamp"], o["length"]) == \
        (5, 4, 0.9, 0.7, ["layer1.c:2=0.5"], 15)
    assert recs[0]["stop_reason"] == "length"
    txt = tmp_path / "s.txt"
    r = invoke("sample", "tiny", "-p", "def ", "-n", 15, "--seed", 5, "-o", txt, "-q", "--no-stop-at-eot")
    assert r.exit_code == 0 and txt.read_text(encoding="utf-8") == r.stdout[:-1]


def test_byte_model_sample(tmp_path):
    make_run(tmp_path / "checkpoints", name="bytes", units="byte")
    r = invoke("sample", "bytes", "-p", "héllo 😀 ", "-n", 30, "--seed", 1, "-q")
    assert r.exit_code == 0 and r.stdout.startswith("héllo 😀 ")


@pytest.mark.parametrize("args,match", [
    (["-t", "0"], "temperature must be a positive number"),
    (["-t", "-1"], "temperature"),
    (["--top-p", "0"], "top-p must be in (0, 1]"),
    (["--top-p", "1.5"], "top-p"),
    (["--top-k", "0"], "top-k must be at least 1"),
    (["-n", "-5"], "length must be 0 or more"),
    (["-N", "0"], "num-samples"),
    (["--prime-file", "/nonexistent/p.txt"], "cannot read prime file /nonexistent/p.txt"),
    (["--clamp", "layer9.c:1=1"], "layer 9 does not exist"),
    (["--clamp", "layer1.q:1=1"], "a lstm cell has no kind 'q'"),
    (["--clamp", "layer1.c:99=1"], "unit 99 does not exist"),
    (["--clamp", "c37"], "cannot read clamp 'c37'"),
    (["--prime", "déf"], "'é' at 1"),
    (["--prime", "a", "--prime-file", "x"], "not both"),
    (["--device", "tpu"], "unknown device"),
    (["--checkpoint", "last"], "is missing"),
])
def test_sample_bad_input(run, args, match):
    _error(invoke("sample", "tiny", *args), match)


def test_sample_unreadable_or_binary_prime_file(run, tmp_path):
    d = tmp_path / "adir"
    d.mkdir()
    _error(invoke("sample", "tiny", "--prime-file", d), "is a directory")
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    _error(invoke("sample", "tiny", "--prime-file", tmp_path / "bin"), "not UTF-8")


def test_missing_run_and_bad_weights(run):
    path, _, _ = run
    _error(invoke("sample", "nope"), "no run named 'nope'")
    _error(invoke("eval", "nope", "x"), "no run named 'nope'")
    w = path / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 1
    w.write_bytes(bytes(data))
    _error(invoke("sample", "tiny"), "does not match its checksum")
    w.write_bytes(bytes(data[:100]))
    _error(invoke("sample", "tiny"), "truncated or corrupted")
    _error(invoke("eval", "tiny", "x"), "truncated or corrupted")


# ----------------------------------------------------------------------------- eval
@pytest.mark.parametrize("damage", ["not json", '{"model": 3}', None])
def test_a_damaged_tokenizer_in_the_run_says_the_runs_copy_is_damaged(run, damage):
    path = run[0] / "tokenizer.json"
    if damage is None:
        path.unlink()
    else:
        path.write_text(damage)
    res = invoke("sample", run[0], "--length", "5")
    _error(res, "the run's copy is damaged: retrain it, or copy the dataset's tokenizer.json over it")
    assert str(path) in res.stderr


def test_eval_file_and_per_char(run, tmp_path):
    f = tmp_path / "t.py"
    f.write_text(TEXT, encoding="utf-8")
    r = invoke("eval", "tiny", f, "-q")
    bpc = charlstm.load("tiny").score(TEXT)
    assert r.exit_code == 0 and r.stdout.startswith(f"{bpc:.4f} bits per character ({len(TEXT) - 1:,} characters")
    pc = tmp_path / "pc.jsonl"
    r = invoke("eval", "tiny", f, "--per-char", pc, "--top", 3, "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert abs(res["bpc"] - bpc) < 1e-9 and res["scored"] == len(TEXT) - 1
    lines = [json.loads(x) for x in pc.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(TEXT) - 1 and len(lines[0]["top"]) == 3
    assert "".join(x["char"] for x in lines) == TEXT[1:]
    r = invoke("eval", "tiny", "-", "-q", input=TEXT)
    assert r.stdout.startswith(f"{bpc:.4f}")


def test_eval_split(run, tmp_path):
    path, _, vocab = run
    out = tmp_path / "data" / "ds"
    with DatasetBuilder(out) as b:
        b.write_split("train", vocab.encode(TEXT).astype(vocab.dtype))
        b.write_split("val", vocab.encode(TEXT[:30]).astype(vocab.dtype))
        b.commit(vocab, {"records": False, "source": {"kind": "test"}, "options": {}, "stats": {}})
    _, cfg = open_run(path)
    cfg["dataset"] = {"name": "ds", "path": str(out), "meta": {}}
    atomic_write_json(path / "config.json", cfg)
    m = charlstm.load("tiny")
    r = invoke("eval", "tiny", "-q", "--json")
    assert r.exit_code == 0, r.output
    assert abs(json.loads(r.stdout)["bpc"] - m.score(TEXT[:30])) < 1e-6
    r = invoke("eval", "tiny", "--split", "train", "--json")
    assert abs(json.loads(r.stdout)["bpc"] - m.score(TEXT)) < 1e-6
    _error(invoke("eval", "tiny", "--split", "test"), "no 'test' split")


@pytest.mark.parametrize("args,match", [
    (["--split", "val"], "dataset 'synthetic-test' is not found"),
    ([], "dataset 'synthetic-test' is not found"),
    (["/nonexistent.txt"], "cannot read file /nonexistent.txt"),
    (["x.txt", "--split", "val"], "not both"),
    (["--chunk", "0"], "0"),
])
def test_eval_bad_input(run, args, match):
    _error(invoke("eval", "tiny", *args), match)


def test_eval_unknown_characters(run, tmp_path):
    f = tmp_path / "u.txt"
    f.write_text("déf ù", encoding="utf-8")
    _error(invoke("eval", "tiny", f), "2 character(s) not in the model's vocabulary: 'é' at 1, 'ù' at 4")
    assert invoke("eval", "tiny", f, "--unknown", "skip", "-q").stdout.startswith(
        f"{charlstm.load('tiny').score('df '):.4f}")
    _error(invoke("eval", "tiny", tmp_path / "nothing.txt"), "cannot read file")
    (tmp_path / "one.txt").write_text("d", encoding="utf-8")
    _error(invoke("eval", "tiny", tmp_path / "one.txt"), "nothing to score")


def test_threads_option(run):
    a = invoke("sample", "tiny", "-p", "def ", "-n", 20, "--seed", 1, "-q", "--threads", 2, "--no-stop-at-eot")
    b = invoke("sample", "tiny", "-p", "def ", "-n", 20, "--seed", 1, "-q", "--no-stop-at-eot")
    assert a.exit_code == 0 and a.stdout == b.stdout
    _error(invoke("sample", "tiny", "--threads", 0), "--threads")


# ----------------------------------------------------------------------------- dynamic evaluation, baseline
def _checksums(folder):
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_eval_prints_the_compressor_baseline(run, tmp_path):
    import lzma

    f = tmp_path / "t.py"
    f.write_text(TEXT, encoding="utf-8")
    xz = len(lzma.compress(TEXT[1:].encode(), preset=9 | lzma.PRESET_EXTREME))
    lines = invoke("eval", "tiny", f, "-q").stdout.splitlines()
    assert len(lines) == 2
    assert lines[1] == f"{8 * xz / (len(TEXT) - 1):.4f} bits per character for xz -9e on the same characters ({xz:,} bytes)"
    assert len(invoke("eval", "tiny", f, "-q", "--no-baseline").stdout.splitlines()) == 1
    res = json.loads(invoke("eval", "tiny", f, "--json").stdout)
    assert res["baseline"]["scored"] == res["scored"] == len(TEXT) - 1 and res["baseline"]["compressed_bytes"] == xz
    assert "baseline" not in json.loads(invoke("eval", "tiny", f, "--json", "--no-baseline").stdout)


def test_eval_dynamic(run, tmp_path):
    path = run[0]
    f = tmp_path / "abc.txt"
    text = "abc" * 300
    f.write_text(text, encoding="utf-8")
    before = _checksums(path)
    static = json.loads(invoke("eval", "tiny", f, "--json").stdout)
    r = invoke("eval", "tiny", f, "--dynamic", "--step-size", "0.03", "--segment", "20", "--decay", "0", "-q")
    assert r.exit_code == 0, r.output
    dyn = charlstm.load("tiny").score(text, dynamic={"step": 0.03, "segment": 20, "decay": 0.0})
    assert r.stdout.splitlines()[0] == (f"{dyn:.4f} bits per character (899 characters of {f} scored; dynamic "
                                        "evaluation: step size 0.03, decay 0, segment 20)")
    assert dyn < 0.5 * static["bpc"]
    pc = tmp_path / "pc.jsonl"
    res = json.loads(invoke("eval", "tiny", f, "--dynamic", "--decay", "0.01", "--per-char", pc, "--json").stdout)
    assert res["dynamic"] == {**DynamicSettings().as_dict(), "decay": 0.01}
    lines = [json.loads(x) for x in pc.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == res["scored"] == 899
    assert sum(x["bits"] for x in lines) == pytest.approx(res["bits"], abs=899 * 1e-4)
    assert _checksums(path) == before  # nothing on disk changed


@pytest.mark.parametrize("args,match", [
    (["--dynamic", "--step-size", "0"], "step size must be a positive, finite number, got 0.0"),
    (["--dynamic", "--step-size", "-1e-3"], "step size must be a positive"),
    (["--dynamic", "--step-size", "nan"], "step size must be a positive"),
    (["--dynamic", "--step-size", "inf"], "step size must be a positive"),
    (["--dynamic", "--decay", "-0.1"], "decay must be between 0 and 1"),
    (["--dynamic", "--decay", "1.5"], "decay must be between 0 and 1"),
    (["--dynamic", "--segment", "0"], "segment must be at least 1 symbol"),
    (["--dynamic", "--segment", "2.5"], "--segment"),
    (["--step-size", "1e-3"], "--step-size is a setting of dynamic evaluation; it needs --dynamic"),
    (["--segment", "10"], "--segment is a setting of dynamic evaluation; it needs --dynamic"),
])
def test_eval_dynamic_bad_settings(run, tmp_path, args, match):
    f = tmp_path / "t.py"
    f.write_text(TEXT, encoding="utf-8")
    _error(invoke("eval", "tiny", f, *args), match)


def test_sample_adapt_continues_the_file_and_changes_nothing(run, tmp_path, monkeypatch):
    monkeypatch.delenv("CHARLSTM_QUIET")
    path = run[0]
    f = tmp_path / "abc.txt"
    f.write_text("abc" * 300, encoding="utf-8")
    before = _checksums(path)
    base = ["sample", "tiny", "-p", "abc", "--greedy", "-n", 30, "--no-stop-at-eot"]
    plain = invoke(*base, "-q")
    r = invoke(*base, "--adapt", f, "--step-size", "0.03", "--segment", "20")
    assert r.exit_code == 0, r.output
    assert r.stdout == "abc" + "abc" * 10 + "\n" != plain.stdout
    assert r.stderr.startswith(f"adapted to {f}: 899 characters read by dynamic evaluation at ")
    assert invoke(*base, "-q").stdout == plain.stdout  # a fresh process: the trained weights
    assert _checksums(path) == before
    out = tmp_path / "s.jsonl"
    invoke(*base, "--adapt", f, "--step-size", "0.03", "-o", out, "-q")
    opts = json.loads(out.read_text(encoding="utf-8"))["options"]
    assert opts["adapt"] == str(f) and opts["adapt_settings"] == {**DynamicSettings().as_dict(), "step": 0.03}
    _error(invoke(*base, "--adapt", tmp_path / "none.txt"), "cannot read file to adapt to")
    _error(invoke(*base, "--decay", "0.1"), "--decay is a setting of dynamic evaluation; it needs --adapt FILE")
    _error(invoke(*base, "--adapt", f, "--step-size", "-1"), "step size must be a positive")
