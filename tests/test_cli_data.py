"""`charlstm data ...` end to end through click's CliRunner: every source, info/list, and every bad
input giving one `Error:` line, a non-zero exit, no traceback and nothing left behind."""
from __future__ import annotations

import json
import subprocess

import pytest
from click.testing import CliRunner

from charlstm.cli import main
from charlstm.dataset import open_dataset
from charlstm.dataset import data_root


def run(*args: str, ok: bool = True):
    res = CliRunner().invoke(main, ["data", *args])
    if ok:
        assert res.exit_code == 0, res.output
    return res


def _git_repo(root):
    root.mkdir()
    (root / "hello.py").write_text("print('hello')\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                       check=True, capture_output=True)
    return root


def test_code_from_local_repo_and_file_url(tmp_path):
    repo = _git_repo(tmp_path / "proj")
    out = run("code", str(repo), "--val-frac", "0.2").output
    assert out.startswith(f"Wrote {data_root() / 'proj'}: ") and "tokens: train" in out
    run("code", f"file://{repo}", "--name", "cloned", "--units", "byte")
    ds = open_dataset("cloned")
    assert ds.meta["units"] == "byte" and ds.meta["source"]["url"] == f"file://{repo}"
    assert bytes(ds.split("train")) + bytes(ds.split("val")) == b"==> hello.py <==\nprint('hello')\n"


def test_stdlib_default():
    """The real default, no arguments: the whole stdlib (a few MB, about a second)."""
    out = run("code", "-q").output
    assert out.count("\n") == 1 and out.startswith(f"Wrote {data_root() / 'stdlib'}: ")  # --quiet: one line
    ds = open_dataset("stdlib")
    assert ds.meta["stats"]["files"] > 300 and 3_000_000 < ds.meta["stats"]["characters"] < 30_000_000


def test_tweets_text_and_synthetic(tmp_path, monkeypatch):
    monkeypatch.delenv("CHARLSTM_QUIET")  # show the cleaning counts
    (tmp_path / "t.csv").write_text('handle,text,is_retweet\nme,"hello, world",False\nme,second one,False\n'
                                    'you,"RT @me: hello, world",True\n')
    out = run("tweets", str(tmp_path / "t.csv"), "--handle", "me", "--val-frac", "0.5").output
    assert "tweets: read=3, kept=2, retweets=0, duplicates=0, empty=0, other_authors=1" in out
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps({"text": f"r{i}"}) for i in range(5)) + "\n")
    run("tweets", "--hub", str(tmp_path / "rows.jsonl"), "--name", "hubtweets")
    (tmp_path / "a.txt").write_text("some text\n" * 20)
    run("text", str(tmp_path / "a.txt"), "--test-frac", "0.1")
    assert open_dataset("a").splits == ["train", "val", "test"]
    run("text", "--hub", str(tmp_path / "rows.jsonl"), "--column", "text", "--name", "hubtext")
    run("synthetic", "selective-counting", "--num", "50", "--seed", "3")
    ds = open_dataset("selective-counting")
    assert ds.meta["records"] and ds.meta["options"]["num"] == 50


def test_list_and_info(tmp_path):
    assert "No datasets" in run("list").output
    run("synthetic", "counting", "--num", "100")
    run("synthetic", "copy", "--num", "100", "--name", "cp", "--test-frac", "0.1")
    lines = run("list").output.splitlines()
    assert lines[0].split()[:6] == ["NAME", "UNITS", "VOCAB", "TRAIN", "VAL", "TEST"]
    assert [ln.split()[0] for ln in lines[1:]] == ["counting", "cp"]
    info = run("info", "counting", "--verify").output
    for field in ("name:", "source:", "units:", "records:", "tokens:", "options:", "stats:", "checksums: ok", "top:"):
        assert field in info
    assert "'a'" in info and "'<eot>'" in info


def test_info_and_the_build_report_show_how_the_splits_were_chosen(tmp_path, monkeypatch):
    monkeypatch.delenv("CHARLSTM_QUIET")
    for d in ("app", "lib", "tests"):
        for i in range(5):
            (tmp_path / "proj" / d).mkdir(parents=True, exist_ok=True)
            (tmp_path / "proj" / d / f"m{i}.py").write_text(f"x = {i}\n" * 10)
    out = run("code", str(tmp_path / "proj"), "--val-frac", "0.2", "--seed", "3").output
    split = open_dataset("proj").meta["split"]
    val = split["names"]["val"]
    assert len(val) == 3 and split["documents"] == {"train": 12, "val": 3, "test": 0}
    line = f"by document, seed 3: val 3 files, test 0, train 12; val: {', '.join(val)}"
    assert f"  split: {line}\n" in out
    assert f"split:     {line}\n" in run("info", "proj").output
    (tmp_path / "one.txt").write_text("some running text\n" * 20)
    run("text", str(tmp_path / "one.txt"), "-q")
    assert "split:     contiguous: val (then test) is the end of the stream\n" in run("info", "one").output
    run("synthetic", "counting", "--num", "50", "--seed", "4", "-q")
    assert "split:     by record, seed 4: whole records dealt at random\n" in run("info", "counting").output


def test_data_dir_option_and_force(tmp_path):
    d = tmp_path / "elsewhere"
    run("synthetic", "remember", "--num", "20", "--data-dir", str(d))
    assert (d / "remember" / "meta.json").is_file() and not (data_root() / "remember").exists()
    assert "remember" in run("list", "--data-dir", str(d)).output
    assert "vocabulary" in run("info", "remember", "--data-dir", str(d)).output
    res = run("synthetic", "remember", "--num", "20", "--data-dir", str(d), ok=False)
    assert res.exit_code == 1 and "already exists" in res.output
    run("synthetic", "remember", "--num", "30", "--data-dir", str(d), "--force")
    assert open_dataset(d / "remember").meta["options"]["num"] == 30
    assert sorted(p.name for p in d.iterdir()) == ["remember"]


def _bad_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "x.py").write_bytes(b"\0\1\2")
    (tmp_path / "bin.dat").write_bytes(b"\0\1\2")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "t.csv").write_text("text\nhello\nworld\n")
    (tmp_path / "bad.json").write_text("[{")
    (tmp_path / "extra.csv").write_text("handle,text\nme,hello\nme,hello, world\n")
    (tmp_path / "unclosed.csv").write_text('handle,text\nme,"hello\nme,world\n')
    return {
        "missing path": ["code", str(tmp_path / "nope")],
        "empty folder": ["code", str(tmp_path / "empty")],
        "binary only code": ["code", str(tmp_path / "bin")],
        "failing clone": ["code", "file:///nonexistent/repo.git"],
        "missing text": ["text", str(tmp_path / "nope.txt")],
        "empty text": ["text", str(tmp_path / "empty.txt")],
        "binary only text": ["text", str(tmp_path / "bin.dat")],
        "no text source": ["text"],
        "missing tweets": ["tweets", str(tmp_path / "nope.csv")],
        "unknown column": ["tweets", str(tmp_path / "t.csv"), "--column", "nope"],
        "unknown hub column": ["text", "--hub", str(tmp_path / "t.csv"), "--column", "nope"],
        "invalid json": ["tweets", str(tmp_path / "bad.json")],
        "csv row with extra fields": ["tweets", str(tmp_path / "extra.csv")],
        "csv quote never closed": ["tweets", str(tmp_path / "unclosed.csv")],
        "unknown handle": ["tweets", str(tmp_path / "t.csv"), "--handle", "x"],
        "missing hub file": ["tweets", "--hub", str(tmp_path / "nope.jsonl")],
        "unknown task": ["synthetic", "nope"],
        "bad range": ["synthetic", "counting", "--min-n", "5", "--max-n", "2"],
        "bad fraction": ["synthetic", "counting", "--val-frac", "1.5"],
        "nan fraction": ["text", str(tmp_path / "t.csv"), "--val-frac", "nan"],
        "negative seed": ["synthetic", "counting", "--seed", "-1"],
        "negative seed, running text": ["text", str(tmp_path / "t.csv"), "--seed", "-1"],
        "fractions sum": ["text", str(tmp_path / "t.csv"), "--val-frac", "0.6", "--test-frac", "0.4"],
        "bad name": ["synthetic", "counting", "--name", "../escape"],
        "unknown dataset": ["info", "nope"],
    }


def test_bad_inputs_give_one_error_line_and_leave_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    for what, args in _bad_inputs(tmp_path).items():
        res = run(*args, ok=False)
        errors = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
        assert res.exit_code != 0, what
        assert len(errors) == 1 and res.output.strip() == errors[0], (what, res.output)
        assert "Traceback" not in res.output and isinstance(res.exception, SystemExit), (what, res.exception)
        assert not data_root().exists() or list(data_root().iterdir()) == [], what
        assert list((tmp_path / "tmp").iterdir()) == [], what  # no clone or cache left


def test_existing_name_is_refused():
    run("synthetic", "counting", "--num", "20")
    before = (data_root() / "counting" / "train.bin").read_bytes()
    res = run("synthetic", "counting", "--num", "40", "--seed", "9", ok=False)
    assert res.exit_code == 1 and res.output.startswith("Error: dataset 'counting' already exists")
    assert (data_root() / "counting" / "train.bin").read_bytes() == before
    assert sorted(p.name for p in data_root().iterdir()) == ["counting"]


@pytest.mark.parametrize("cmd", ["code", "tweets", "text", "synthetic", "info", "list"])
def test_help_has_an_example(cmd):
    out = run(cmd, "-h").output
    assert "Example" in out and f"charlstm data {cmd}" in out
