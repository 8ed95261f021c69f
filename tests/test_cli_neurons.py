"""`charlstm neurons find|ablate|features` and `charlstm experiment` through Click's CliRunner:
real output on a tiny untrained run, and one clear `Error:` line (no traceback) for bad input."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from charlstm.checkpoint import save_model
from charlstm.runs import BEST, write_config
from charlstm.cli import main
from charlstm.config import ModelConfig, TrainConfig
from charlstm.model import CharRNN
from helpers import assert_error_line, TEXT, make_run


@pytest.fixture
def run(tmp_path):
    path, _, _ = make_run(tmp_path / "checkpoints", name="tiny", hidden=8, layers=2)
    return str(path)


def _ok(args: list[str]):
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    return res


def _error(args: list[str], match: str):
    return assert_error_line(CliRunner().invoke(main, args), match)


def test_find_prints_a_ranking_and_writes_html_and_json(run, tmp_path):
    html, js, png = tmp_path / "top.html", tmp_path / "top.json", tmp_path / "top.png"
    res = _ok(["neurons", "find", run, "--feature", "string", "--text", TEXT, "--top", "3",
               "--html", str(html), "--json", str(js), "--png", str(png)])
    assert png.read_bytes()[:4] == b"\x89PNG"
    lines = res.output.splitlines()
    assert lines[0].startswith("feature string (binary, ranked by AUROC")
    assert lines[1].split()[:3] == ["rank", "unit", "score"]
    assert len([ln for ln in lines if ln.strip()[:1].isdigit()]) == 3
    data = json.loads(js.read_text())
    assert data["feature"] == "string" and len(data["units"]) == 3 and data["characters"] == len(TEXT)
    assert data["units"][0]["unit"] in html.read_text()


def test_find_with_regex_kinds_layers_and_probe(run):
    res = _ok(["neurons", "find", run, "--regex", "[a-z]+", "--text", TEXT, "--kinds", "h,c", "--layers", "1",
               "--probe", "l1", "--max-units", "2", "--top", "4"])
    ranked = [ln.split()[1] for ln in res.output.splitlines() if ln.strip()[:1].isdigit() and "layer" in ln]
    assert ranked and all(u.startswith(("layer1.h:", "layer1.c:")) for u in ranked)
    assert "L1 probe (logistic" in res.output


def test_find_on_a_split_of_the_runs_dataset(tmp_path):
    from charlstm.corpora.synthetic import write_synthetic

    ds = write_synthetic("counting", num=100, seed=0)
    torch.manual_seed(0)
    mcfg = ModelConfig(vocab_size=ds.vocab.size, embed_dim=4, hidden_size=6, num_layers=1)
    path = tmp_path / "checkpoints" / "count"
    write_config(path, mcfg, TrainConfig(), {"name": ds.name, "path": str(ds.path), "meta": ds.meta}, ds.vocab.to_json())
    save_model(path / BEST, CharRNN(mcfg), {"step": 0})
    res = _ok(["neurons", "find", "count", "--feature", "count:a-b", "--split", "val", "--limit", "60"])
    assert "on 60 characters of split val of counting (truncated: --limit)" in res.output
    res = _ok(["neurons", "ablate", "count", "--unit", "layer0.c:2", "--feature", "count:a-b", "--split", "val"])
    assert "ablating layer0.c:2 (set to 0)" in res.output


def test_ablate_prints_the_groups_and_the_check(run):
    res = _ok(["neurons", "ablate", run, "--unit", "layer1.c:3", "--feature", "comment", "--text", TEXT,
               "--mode", "mean"])
    out = res.output
    assert "ablating layer1.c:3 (set to its mean" in out
    for group in ("active", "inactive", "all"):
        assert any(ln.startswith(group) for ln in out.splitlines())
    assert "check: the unablated explicit run gives" in out


def test_features_lists_named_and_parameterised_features():
    out = _ok(["neurons", "features"]).output
    assert "indentation" in out and "count:P-N" in out and "regex:PATTERN" in out


def test_unknown_feature_lists_the_known_ones(run):
    line = _error(["neurons", "find", run, "--feature", "indentaton", "--text", TEXT], "unknown feature 'indentaton'")
    assert "Did you mean 'indentation'" in line and "double-quote" in line


def test_bad_unit_spec(run):
    _error(["neurons", "ablate", run, "--unit", "layer1-c-3", "--feature", "string", "--text", TEXT], "cannot read unit 'layer1-c-3'")
    _error(["neurons", "ablate", run, "--unit", "layer1.c:99", "--feature", "string", "--text", TEXT], "unit 99 does not exist")
    _error(["neurons", "ablate", run, "--unit", "layer1.z:1", "--feature", "string", "--text", TEXT],
           "a lstm cell has no kind 'z'")


def test_missing_run():
    _error(["neurons", "find", "nope", "--feature", "string", "--text", "abc"], "no run named 'nope'")


def test_empty_text_and_missing_sources(run, tmp_path):
    _error(["neurons", "find", run, "--feature", "string", "--text", ""], "the text is empty")
    _error(["neurons", "find", run, "--feature", "string"], "give exactly one of --text, --file or --split")
    _error(["neurons", "find", run, "--feature", "string", "--text", "a", "--file", "x"], "got --text and --file")
    _error(["neurons", "find", run, "--text", "abc"], "give either --feature NAME or --regex PATTERN")
    _error(["neurons", "find", run, "--feature", "string", "--file", str(tmp_path / "missing.py")], "no such file")
    _error(["neurons", "find", run, "--feature", "string", "--text", "def ~~"], "not in the model's vocabulary")
    _error(["neurons", "find", run, "--feature", "string", "--split", "val"], "is not found")


def test_constant_feature(run):
    _error(["neurons", "find", run, "--feature", "hashtag", "--text", TEXT], "the feature is constant")


def test_experiment_rejects_an_unknown_task():
    res = CliRunner().invoke(main, ["experiment", "counting2"])
    assert res.exit_code == 2 and "Invalid value for 'TASK'" in res.output
