"""`charlstm dictionary train|info|show` through Click's CliRunner on a tiny untrained run with a
dataset, and the dictionary features everywhere a unit goes: `trace --show dict:N` (terminal and
viewer), `neurons find` (features ranked with units), `sample --clamp dict:N=V`. Bad input is one
`Error:` line and nothing half-written."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from charlstm.cli import main
from helpers import assert_error_line, make_data_run

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = ["--chars", "4000", "--batch", "200", "--streams", "8", "--fidelity-chars", "300"]


def _ok(args):
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    return res


def _error(args, match):
    return assert_error_line(CliRunner().invoke(main, args), match)


@pytest.fixture
def run(tmp_path):
    path, _, _ = make_data_run(tmp_path / "checkpoints", hidden=8, layers=2)
    return str(path)


@pytest.fixture
def trained(run):
    _ok(["dictionary", "train", run, "--name", "a", "--size", "16", "--k", "2", *SMALL])
    return run


def test_train_reports_and_info_shows_the_fidelity(trained, tmp_path):
    res = _ok(["dictionary", "info", trained])
    lines = res.output.splitlines()
    assert lines[0].startswith("dictionary a of run drun: layer1.h, 8 units -> 16 features, k = 2, relu code")
    assert re.search(r"variance explained -?\d\.\d{4}", res.output)
    assert re.search(r"bpc \d\.\d{4} -> spliced \d\.\d{4} \([+-]\d\.\d{4}\)", res.output)
    meta = json.loads(_ok(["dictionary", "info", trained, "--json"]).output)
    assert meta["fidelity"]["split"] == "val" and meta["train"]["states"] >= 4000
    _ok(["dictionary", "train", trained, "--name", "b", "--kind", "h", "--layer", "0", "--code", "signed", "--size",
         "8", "--k", "3", *SMALL])
    table = _ok(["dictionary", "info", trained]).output.splitlines()
    assert table[0].split()[:3] == ["NAME", "STATE", "SIZE"] and [ln.split()[0] for ln in table[1:]] == ["a", "b"]
    assert "layer0.h" in table[2] and "signed" in table[2]
    again = _ok(["dictionary", "info", trained, "--name", "b", "--measure", "--fidelity-chars", "200"]).output
    assert "fidelity on " in again
    # a spliced run that overflowed has no spliced bpc: the table says so (it was a traceback)
    from charlstm.dictionary import store

    where = store.folder(trained, "b")
    f = store.read_info(where)["fidelity"]
    store.update_info(where, fidelity={**f, "spliced_bpc": None, "delta_bpc": None, "diverged": True})
    row = _ok(["dictionary", "info", trained]).output.splitlines()[2]
    assert row.split()[0] == "b" and row.endswith(f"{f['bpc']:.3f} -> diverged")
    assert "diverged" in _ok(["dictionary", "info", trained, "--name", "b"]).output


def test_train_refuses_bad_options_before_any_work(run, tmp_path):
    _error(["dictionary", "train", run, "--k", "0"], "--k must be between 1 and the number of features (64)")
    _error(["dictionary", "train", run, "--layer", "5"], "--layer 5 does not exist; the model has layers 0..1")
    _error(["dictionary", "train", run, "--time-budget", "soon"], "cannot read duration 'soon'")
    _error(["dictionary", "train", run, "--resume"], "nothing to resume")
    _error(["dictionary", "train", run, "--name", "../x"], "invalid dictionary name '../x'")
    assert not (tmp_path / "checkpoints" / "drun" / "dictionaries").exists()
    gru, _, _ = make_data_run(tmp_path / "checkpoints", name="g", cell="gru")
    _error(["dictionary", "train", str(gru), "--kind", "c"], "a gru cell's dictionary reads h")
    _error(["dictionary", "info", run], "run drun has no dictionary")


def test_an_existing_dictionary_needs_force_and_show_needs_a_name_among_several(trained, tmp_path):
    _error(["dictionary", "train", trained, "--name", "a", *SMALL], "dictionary 'a' already exists")
    _ok(["dictionary", "train", trained, "--name", "a", "--force", "--size", "16", "--k", "2", *SMALL])
    _ok(["dictionary", "train", trained, "--name", "c", "--size", "8", "--k", "1", *SMALL])
    _error(["dictionary", "show", trained, "--html", str(tmp_path / "p.html")], "has 2 dictionaries (a, c); name one")
    _error(["trace", trained, "--text", "aaXbb", "--show", "dict:1"], "has 2 dictionaries (a, c)")
    _error(["trace", trained, "--text", "aaXbb", "--show", "dict/a:16"], "dict/a has features 0..15")
    assert not (tmp_path / "p.html").exists()


def test_show_writes_a_page_with_every_feature_and_escaped_text(trained, tmp_path):
    page = tmp_path / "dict.html"
    res = _ok(["dictionary", "show", trained, "--html", str(page), "--limit", "200"])
    assert re.match(r"wrote .*dict.html: 16 features of dict/a over 200 characters of split val", res.output)
    html = page.read_text()
    data = json.loads(re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html, re.S).group(1))
    assert len(data["features"]) == 16 and data["dictionary"]["key"] == "dict/a"
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched: self-contained


def test_a_feature_goes_where_a_unit_goes(trained, tmp_path):
    out = _ok(["trace", trained, "--text", "aaaXbbb<eot>aaXbb", "--show", "dict:3"]).output
    assert out.startswith("dict/a:3  min ")
    viewer = tmp_path / "v.html"
    _ok(["trace", trained, "--text", "aaaXbbb<eot>aaXbb", "--show", "dict/a:3", "--html", str(viewer)])
    data = json.loads(re.search(r'id="trace-data">(.*?)</script>', viewer.read_text(), re.S).group(1))
    assert data["select"] == "dict/a:3" and data["dicts"]["dict/a"]["size"] == 16
    page = tmp_path / "find.html"
    found = _ok(["neurons", "find", trained, "--feature", "char:X", "--split", "val", "--top", "40", "--kinds", "h",
                 "--html", str(page)]).output
    ranked = [ln.split()[1] for ln in found.splitlines() if ln.strip()[:1].isdigit()]
    assert any(u.startswith("dict/a:") for u in ranked) and any(u.startswith("layer") for u in ranked)
    data = json.loads(re.search(r'id="trace-data">(.*?)</script>', page.read_text(), re.S).group(1))
    rows = next(iter(data["scores"].values()))
    assert "dict/a" in data["dicts"] and any(r[0] == "dict/a" for r in rows)
    only_units = _ok(["neurons", "find", trained, "--feature", "char:X", "--split", "val", "--top", "40", "--dict",
                      "none"]).output
    assert "dict/" not in only_units
    base = ["sample", trained, "--prime", "aaaX", "-n", "40", "--seed", "1", "--no-stop-at-eot", "-q"]
    plain = _ok(base).output
    out = tmp_path / "s.jsonl"
    steered = _ok(base + ["--clamp", "dict:3=40", "-o", str(out)]).output
    assert steered != plain and json.loads(out.read_text())["options"]["clamp"] == ["dict/a:3=40"]
    _error(base + ["--clamp", "dict:99=1"], "dict/a has features 0..15")
    _error(["neurons", "ablate", trained, "--unit", "dict:3", "--feature", "char:a", "--text", "aaXbb"],
           "ablate holds units")
