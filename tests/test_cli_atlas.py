"""`charlstm atlas` through Click's CliRunner: the summary, the report and the JSON on a tiny run with
its dataset, and one clear `Error:` line (no traceback) for bad input."""
from __future__ import annotations

import json

from click.testing import CliRunner

from charlstm.cli import main
from test_atlas import counter_run, hand_dictionary
from helpers import assert_error_line, make_run


def _run(args: list[str]):
    return CliRunner().invoke(main, args)


def _error(args: list[str], match: str) -> str:
    return assert_error_line(_run(args), match)


def test_atlas_prints_the_summary_and_writes_the_report_and_json(tmp_path, one_thread):
    from charlstm.dictionary import store

    path, m, _ = counter_run(tmp_path)
    where = store.folder(path, "hand")
    where.mkdir(parents=True)
    store.save(where, hand_dictionary(), {"model_sha256": store.model_sha256(m)})
    html, js, pics = tmp_path / "out" / "atlas.html", tmp_path / "out" / "atlas.json", tmp_path / "pics"
    res = _run(["atlas", str(path), "--limit", "800", "--controls", "99", "--untrained", "2", "--ngram", "3",
                "--html", str(html), "--json", str(js), "--pictures", str(pics)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith(f"atlas of {path} (lstm 1x6, 36 units) on 800 characters of split val of counting")
    row = next(ln for ln in lines if ln.startswith("count:a-b "))
    assert row.split()[1] == "layer0.c:0" and row.rstrip().endswith("found")
    assert any(ln.startswith("count:a-b: gates of layer0.c:0 by character read:") for ln in lines)
    assert any(ln.startswith("LSTM ") and "n-gram bpc by order" in ln for ln in lines)
    data = json.loads(js.read_text())
    assert data["format"] == "charlstm-atlas" and data["characters"] == 800 and data["corpus"]["task"] == "counting"
    f = data["features"][0]
    assert f["found"] and f["chance"]["controls"] == 99 and len(f["untrained"]) == 2 and f["probe"]["metric"] == "r2"
    assert {a["mode"] for a in f["ablations"]} <= {"zero", "mean", "mean, together"} and len(f["ablations"]) >= 2
    page = html.read_text()
    assert page.startswith("<!doctype html>") and "layer0.c:0" in page and "http://" not in page.replace(
        "http://www.w3.org/2000/svg", "")
    assert f["dictionary"][0]["unit"] == "dict/hand:1" and f["dictionary"][0]["found"]
    assert "<h2>Dictionary features</h2>" in page and "dict/hand:1" in page
    assert any(ln.startswith("count:a-b") and "dict/hand:1" in ln for ln in lines)
    assert sorted(p.name for p in pics.iterdir()) == ["errors.png", "feature-count-a-b.png", "gate-saturation.png"]


def test_atlas_bad_input(tmp_path):
    path, _, _ = make_run(tmp_path / "checkpoints", name="tiny", hidden=4, layers=1)
    run = str(path)
    _error(["atlas", run, "--feature", "no-such-thing", "--text", "abc"], "unknown feature 'no-such-thing'")
    _error(["atlas", run, "--text", "def f(x):\n", "--split", "val"], "give exactly one of --text, --file or --split")
    _error(["atlas", run, "--text", "def f(x):\n"], "nothing to map")
    (tmp_path / "folder").mkdir()
    _error(["atlas", run, "--text", "x" * 30, "--html", str(tmp_path / "folder")], "--html")
    _error(["atlas", run], "dataset")  # the default --split val: this run's dataset does not exist
    _error(["atlas", str(tmp_path / "nope"), "--text", "x" * 30], "nope")
    res = _run(["atlas", run, "--text", "x" * 30, "--controls", "10"])
    assert res.exit_code == 2 and "--controls" in res.output
