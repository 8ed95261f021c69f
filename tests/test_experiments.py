"""The source's synthetic experiments as acceptance tests (slow: each trains a small model on the CPU,
about 20-60 s on a loaded 2-core machine), plus fast tests of the pieces they share."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from charlstm.config import ModelConfig
from charlstm.experiments import EXPERIMENTS, run_experiment
from charlstm.checkpoint import save_model
from charlstm.config import TrainConfig
from charlstm.experiments.common import ExperimentResult, FoundUnit, complete, record_ids
from charlstm.runs import BEST, write_config
from charlstm.experiments.copy import held_out_strings
from charlstm.experiments.report import Check, Report
from charlstm.viz.colors import colours, unit_rows_html
from charlstm.viz.plots import text_png
from charlstm.experiments.selective import primes
from charlstm.model import CharRNN
from charlstm.vocab import Vocab

SEED = 0


# ----------------------------------------------------------------------------------------------
# Fast: the shared pieces


def _tiny(seed: int = 0):
    torch.manual_seed(seed)
    vocab = Vocab.build_char(Counter("abX"))
    return CharRNN(ModelConfig(vocab_size=vocab.size, embed_dim=4, hidden_size=5, num_layers=1)).eval(), vocab


def test_complete_is_a_step_by_step_argmax_from_the_record_start_through_a_loaded_run(tmp_path):
    """The experiments' completions are what a user gets from a run folder (charlstm.load +
    generate), checked against the obvious twin: the model over <eot> + prime, argmax, repeated."""
    torch.manual_seed(0)
    vocab = Vocab.build_char(Counter("abX"))
    model = CharRNN(ModelConfig(vocab_size=vocab.size, embed_dim=4, hidden_size=5, num_layers=1,
                                reset_id=vocab.eot_id)).eval()
    write_config(tmp_path / "run", model.cfg, TrainConfig(), {"name": "t", "path": "", "meta": {}}, vocab.to_json())
    save_model(tmp_path / "run" / BEST, model, {"step": 0})
    primes_ = ["a", "aaX", "abX", "b"]
    got = complete(tmp_path / "run", primes_, 6)
    for p, g in zip(primes_, got):
        ids = [vocab.eot_id] + vocab.encode(p).tolist()
        want = []
        with torch.no_grad():
            for _ in range(6):
                nxt = int(model(torch.tensor([ids]))[0][0, -1].argmax())
                if nxt == vocab.eot_id:
                    break
                want.append(nxt)
                ids.append(nxt)
        assert g == vocab.decode(want)
        assert len(g) <= 6


def test_record_ids_start_and_end_every_record_with_eot():
    _, vocab = _tiny()
    ids, which = record_ids(vocab, ["ab", "X"])
    e = vocab.eot_id
    assert ids.tolist() == [e, *vocab.encode("ab").tolist(), e, *vocab.encode("X").tolist(), e]
    assert which.tolist() == [-1, 0, 0, 0, 1, 1]


def test_selective_primes_have_n_as_and_end_in_y():
    ps = primes(3, 1, 4, 5)
    assert len(ps) == 20
    for n, p in ps:
        assert p.endswith("Y") and p.count("a") == n and set(p[:-1]) <= {"a", "X"} and p.count("X") <= 10
    assert ps == primes(3, 1, 4, 5)


def test_held_out_strings_depend_on_the_seed_only():
    assert held_out_strings(1, 4) == held_out_strings(1, 4) and len(held_out_strings(1, 4)) == 4
    assert held_out_strings(1, 0) == []


def test_colours_follow_the_viewers_map():
    white, = colours(np.array([0.0]), "h")
    assert white == (255, 255, 255)
    neg, pos = colours(np.array([-1.0, 1.0]), "h")
    assert neg[0] > neg[2] and pos[2] > pos[0]  # red for negative, blue for positive
    closed, half, open_ = colours(np.array([0.0, 0.5, 1.0]), "i")  # gates centred at 0.5
    assert half == (255, 255, 255) and closed[0] > closed[2] and open_[2] > open_[0]


def test_report_writes_markdown_and_html_with_pictures(tmp_path):
    rep = Report("A test", tmp_path)
    rep.heading("Part")
    rep.para("Some `code` & <text>.")
    rep.table(["a", "b"], [(1, "x|y")])
    rep.code("x = 1")
    png = text_png(tmp_path / "t.png", [("u", list("abc"), np.array([-1.0, 0.0, 2.0]), "c")], title="t")
    rep.image(png, "coloured")
    rep.coloured(list("ab"), [("u", np.array([0.5, -0.5]), "h")])
    rep.checks([Check("thing", 0.97, ">= 0.9", True), Check("other", 0.1, "> 0.5", False)])
    md, html = rep.write()
    text = md.read_text()
    assert text.startswith("# A test") and "![coloured](t.png)" in text and "**FAIL** other" in text
    page = html.read_text()
    assert "<code>code</code> &amp; &lt;text&gt;." in page and 'src="t.png"' in page
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'title="+0.500"' in unit_rows_html(list("a"), [("u", np.array([0.5]), "h")])


def _fake_result(tmp_path, passed: bool) -> ExperimentResult:
    checks = [Check("greedy completion exact", 10 if passed else 7, "== 10", passed)]
    demo = ("layer0.c:1", list("aaXbb") + ["<eot>"], np.array([1.0, 2.0, 2.5, 1.0, 0.0, 0.0]), "c")
    return ExperimentResult("counting", 3, {}, checks, [FoundUnit("layer0.c:1", 0.98, "|r| with count:a-b")],
                            tmp_path / "run", tmp_path / "report.md", tmp_path / "report.html", 12.0, demo)


@pytest.mark.parametrize("passed", [True, False])
def test_experiment_command_prints_the_summary_and_the_unit(tmp_path, monkeypatch, passed):
    import charlstm.experiments as ex
    from charlstm.cli import main

    calls = []

    def fake(task, out=None, seed=0, quiet=True):
        calls.append((task, out, seed, quiet))
        return _fake_result(tmp_path, passed)

    monkeypatch.setattr(ex, "run_experiment", fake)
    res = CliRunner().invoke(main, ["experiment", "counting", "--out", str(tmp_path / "x"), "--seed", "3"],
                             env={"NO_COLOR": "1"})
    assert calls == [("counting", tmp_path / "x", 3, True)]  # CHARLSTM_QUIET=1 in the tests
    assert "experiment counting (seed 3) in 12s" in res.output
    assert "unit layer0.c:1: |r| with count:a-b = 0.980" in res.output
    assert "pos\tchar\tvalue" in res.output  # the unit over a sequence (NO_COLOR: as a table)
    if passed:
        assert res.exit_code == 0 and "all checks passed" in res.output
    else:
        assert res.exit_code == 1 and "Error: 1 check(s) of experiment counting failed" in res.output


def test_unknown_experiment_is_a_clear_error(tmp_path):
    from charlstm.errors import CharlstmError

    with pytest.raises(CharlstmError, match="unknown experiment 'count'"):
        run_experiment("count", out=tmp_path)
    from charlstm.cli.neurons import experiment_cmd

    assert sorted(experiment_cmd.params[0].type.choices) == sorted(EXPERIMENTS)


# ----------------------------------------------------------------------------------------------
# Slow: the acceptance tests (fixed seed, the thresholds of MISSION.md)


@pytest.mark.slow
def test_counting(tmp_path):
    r = run_experiment("counting", out=tmp_path, seed=SEED)
    m = r.metrics
    assert m["exact_in_range"] == 10  # greedy completion exact for every N in 1..10
    assert m["exact_up_to"] >= 10 and m["largest_exact"] >= 10
    assert abs(m["r"]) >= 0.9 and m["unit"].split(":")[0].endswith((".h", ".c"))
    assert r.passed
    md = r.report_md.read_text()
    assert "largest exact N" in md and m["unit"] in md
    assert (tmp_path / "counting-text.png").exists() and (tmp_path / "counting-hc.png").exists()
    assert (tmp_path / "run" / "model.safetensors").exists()
    # what a user gets: `charlstm sample RUN --prime a..aX --greedy` in a fresh process-like call
    from charlstm.cli import main

    for n in range(1, 11):
        res = CliRunner().invoke(main, ["sample", str(tmp_path / "run"), "--prime", "a" * n + "X", "--greedy", "-q"])
        assert res.exit_code == 0 and res.stdout == "a" * n + "X" + "b" * n + "\n", (n, res.stdout)


@pytest.mark.slow
def test_selective_counting(tmp_path):
    r = run_experiment("selective-counting", out=tmp_path, seed=SEED)
    m = r.metrics
    assert m["exact_in_range"] == 1.0
    assert abs(m["r"]) >= 0.9
    assert m["input_gate_on_x"] < 0.2
    assert r.passed


@pytest.mark.slow
def test_remember(tmp_path):
    r = run_experiment("remember", out=tmp_path, seed=SEED)
    m = r.metrics
    assert m["accuracy"] >= 0.99
    assert max(m["auroc"], 1 - m["auroc"]) >= 0.95
    assert r.passed


@pytest.mark.slow
def test_copy(tmp_path):
    r = run_experiment("copy", out=tmp_path, seed=SEED)
    m = r.metrics
    assert m["copied_all"] >= 0.95
    assert set(m["next_char_units"]) == {"a", "b", "c"}
    assert "which units predict the next character" in r.report_md.read_text().lower()
    assert r.passed
