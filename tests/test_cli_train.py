"""`charlstm train` / `charlstm runs` end to end: output, config precedence, errors, SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from charlstm.checkpoint import load_tensors
from charlstm.cli import main
from test_train_helpers import make_dataset

TINY = ["--hidden", "16", "--embed", "8", "--layers", "1", "--batch-size", "4", "--seq-len", "16", "--warmup", "2"]


pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def ckpt() -> Path:
    return Path(os.environ["CHARLSTM_CHECKPOINTS"])


def assert_one_error(res, *fragments):
    assert res.exit_code != 0
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    assert len(errors) == 1, res.output
    assert "Traceback" not in res.output
    for f in fragments:
        assert f in errors[0], errors[0]


def test_train_then_runs_lists_it():
    make_dataset()
    res = invoke("train", "toy", *TINY, "--max-steps", "20", "--eval-every", "10")
    assert res.exit_code == 0, res.output
    assert "Run 'toy' done: 20 steps" in res.output and "best val" in res.output
    run = ckpt() / "toy"
    assert {"config.json", "tokenizer.json", "model.safetensors", "last.safetensors", "metrics.jsonl"} <= {
        p.name for p in run.iterdir()}
    res = invoke("runs")
    assert res.exit_code == 0
    header, row = res.output.splitlines()[:2]
    assert header.split() == ["RUN", "DATASET", "MODEL", "PARAMS", "STEPS", "BEST", "VAL", "BPC"]
    assert row.split()[:5] == ["toy", "toy", "lstm", "1x16", f"{_params(run) / 1000:.1f}k"] and "(step 20)" in row
    js = json.loads(invoke("runs", "--json").output.splitlines()[0])
    assert js["steps"] == 20 and js["dataset"] == "toy" and js["best_step"] == 20


def _params(run):
    return sum(v.numel() for v in load_tensors(run / "model.safetensors")[0].values())


def test_runs_with_none():
    res = invoke("runs")
    assert res.exit_code == 0 and "No runs" in res.output


def test_options_override_the_config_file_which_overrides_the_preset(tmp_path):
    make_dataset()
    toml = tmp_path / "run.toml"
    toml.write_text('[model]\nhidden_size = 24\nnum_layers = 1\n[train]\nseq_len = 12\nlr = 0.005\nbatch_size = 4\n')
    res = invoke("train", "toy", "--run", "p", "--preset", "tiny", "--config", str(toml), "--lr", "0.004",
                 "--max-steps", "3")
    assert res.exit_code == 0, res.output
    cfg = json.loads((ckpt() / "p" / "config.json").read_text())
    assert cfg["model"]["hidden_size"] == 24 and cfg["model"]["embed_dim"] == 32  # file, then preset
    assert cfg["train"]["seq_len"] == 12 and cfg["train"]["lr"] == 0.004  # file, then option


def test_resume_continues_and_uses_the_runs_own_settings():
    make_dataset()
    assert invoke("train", "toy", *TINY, "--max-steps", "10").exit_code == 0
    res = invoke("train", "toy", "--resume", "--max-steps", "15")  # no model options: taken from the run
    assert res.exit_code == 0, res.output
    assert "15 steps" in res.output
    assert load_tensors(ckpt() / "toy" / "last.safetensors")[1]["step"] == 15


@pytest.mark.parametrize("args,fragments", [
    (["nope"], ["no dataset named 'nope'"]),
    (["toy", "--lr", "-1"], ["learning rates must be positive"]),
    (["toy", "--batch-size", "0"], ["batch-size must be at least 1"]),
    (["toy", "--dropout", "1.5"], ["dropout must be in [0, 1)"]),
    (["toy", "--time-budget", "soon"], ["cannot read duration 'soon'"]),
    (["toy", "--seq-len", "100000"], ["too few"]),
    (["toy", "--resume"], ["no run at"]),
    (["toy", "--resume", "--force"], ["contradict"]),
    (["toy", "--lr", "nan"], ["learning rates must be positive and finite", "lr=nan"]),
    (["toy", "--min-lr", "nan"], ["learning rates must be positive and finite", "min-lr=nan"]),
    (["toy", "--lr", "inf"], ["learning rates must be positive and finite", "lr=inf"]),
    (["toy", "--max-epochs", "nan"], ["max-epochs must be a positive, finite number, got nan"]),
    (["toy", "--max-epochs", "0"], ["max-epochs must be a positive, finite number, got 0"]),
    (["toy", "--time-budget", "nan"], ["a duration must be a positive, finite number", "'nan'"]),
    (["toy", "--time-budget", "inf"], ["a duration must be a positive, finite number", "'inf'"]),
    (["toy", "--weight-decay", "-1"], ["weight-decay must be a finite number >= 0, got -1.0"]),
    (["toy", "--weight-decay", "nan"], ["weight-decay must be a finite number >= 0, got nan"]),
    (["toy", "--warmup", "-1"], ["warmup-steps (--warmup) must be at least 0, got -1"]),
    (["toy", "--eval-chars", "-5"], ["eval-max-chars (--eval-chars) must be at least 1, got -5"]),
    (["toy", "--eval-every", "0"], ["eval-every must be at least 1, got 0"]),
    (["toy", "--dropout", "nan"], ["dropout must be in [0, 1), got nan"]),
    (["toy", "--grad-clip", "nan"], ["grad-clip must be a finite number >= 0 (0: no clipping), got nan"]),
    (["toy", "--grad-clip", "-1"], ["grad-clip must be a finite number >= 0"]),
    (["toy", "--grad-accum", "0"], ["grad-accum must be at least 1, got 0"]),
    (["toy", "--max-steps", "0"], ["max-steps must be at least 1, got 0"]),
    (["toy", "--hidden", "0"], ["hidden-size (--hidden) must be at least 1, got 0"]),
    (["toy", "--layers", "-2"], ["num-layers (--layers) must be at least 1, got -2"]),
    (["toy", "--embed", "0"], ["embed-dim (--embed) must be at least 1, got 0"]),
    (["toy", "--seed", str(2**64)], ["seed must fit in 64 bits"]),
])
def test_bad_input_gives_one_error_line_and_writes_nothing(args, fragments):
    make_dataset()
    res = invoke("train", *args)
    assert_one_error(res, *fragments)
    assert not ckpt().exists() or list(ckpt().iterdir()) == []  # no run folder, no config.json with NaN


@pytest.mark.parametrize("option", ["--step-gamma", "--step-every"])
def test_step_schedule_settings_come_from_a_config_file(tmp_path, option):
    """The step schedule's settings have no option of their own: a TOML file sets them, checked alike."""
    make_dataset()
    assert invoke("train", "toy", option, "1").exit_code == 2  # click: no such option
    toml = tmp_path / "step.toml"
    for value, fragment in (("nan", "step-gamma must be in (0, 1], got nan"), ("0.0", "step-gamma must be in (0, 1]"),
                            ("2", "step-gamma must be in (0, 1], got 2.0")):
        toml.write_text(f"[train]\nschedule = \"step\"\nstep_gamma = {value}\n")
        assert_one_error(invoke("train", "toy", "--config", str(toml)), fragment)
    toml.write_text("[train]\nstep_every = 0\n")
    assert_one_error(invoke("train", "toy", "--config", str(toml)), "step-every must be at least 1, got 0")
    assert not ckpt().exists() or list(ckpt().iterdir()) == []


@pytest.mark.parametrize("args", [["--run", "../evil"], ["--run", "a/b"], ["--run", ".hidden"], ["--run", ""]])
def test_run_names_follow_the_dataset_name_rule_and_nothing_is_written(tmp_path, args, monkeypatch):
    make_dataset()
    monkeypatch.chdir(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert_one_error(invoke("train", "toy", *TINY, "--max-steps", "2", *args), "invalid run name",
                     "use letters, digits, '.', '_', '+' and '-' (not starting with '.' or '-')")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert not ckpt().exists() and not (ckpt().parent / "evil").exists()


def test_bad_config_files(tmp_path):
    make_dataset()
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nhidden = ")
    assert_one_error(invoke("train", "toy", "--config", str(bad)), "not valid TOML")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[model]\nwidth = 3\n")
    assert_one_error(invoke("train", "toy", "--config", str(unknown)), "unknown model setting 'width'")
    for body, fragment in (('[model]\nhidden_size = "big"\n', "model setting 'hidden_size' must be an integer, got 'big'"),
                           ('[train]\nlr = "fast"\n', "train setting 'lr' must be a number, got 'fast'"),
                           ("[model]\nlayers = 2.5\n", "unknown model setting 'layers'"),
                           ("[model]\nnum_layers = 2.5\n", "model setting 'num_layers' must be an integer, got 2.5"),
                           ("[train]\nprecision = 1\n", "train setting 'precision' must be a string, got 1"),
                           ("[train]\nmax_steps = [3]\n", "train setting 'max_steps' must be an integer, got [3]"),
                           ("[train]\nlr = nan\n", "learning rates must be positive and finite (lr=nan")):
        wrong = tmp_path / "wrong.toml"
        wrong.write_text(body)
        assert_one_error(invoke("train", "toy", "--config", str(wrong)), fragment)
    assert not ckpt().exists() or list(ckpt().iterdir()) == []


def test_existing_run_incompatible_resume_and_corrupt_dataset_change_nothing(tmp_path):
    path = make_dataset()
    assert invoke("train", "toy", *TINY, "--max-steps", "6").exit_code == 0
    run = ckpt() / "toy"
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert_one_error(invoke("train", "toy", *TINY), "already exists", "--resume", "--force")
    assert_one_error(invoke("train", "toy", "--resume", "--hidden", "32"), "cannot resume", "hidden 16, not 32")
    assert_one_error(invoke("train", "toy", "--resume", "--seq-len", "8"), "seq-len 16, not 8")
    data = bytearray((path / "train.bin").read_bytes())
    data[10] ^= 1
    (path / "train.bin").write_bytes(bytes(data))
    assert_one_error(invoke("train", "toy", "--resume"), "does not match its checksum")
    assert_one_error(invoke("train", "toy", "--force"), "does not match its checksum")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is absent")
def test_cuda_asked_for_but_absent():
    make_dataset()
    assert_one_error(invoke("train", "toy", "--device", "cuda"), "device 'cuda' is not available", "no CUDA")
    assert not (ckpt() / "toy").exists()


def test_sigterm_saves_a_checkpoint_says_how_to_resume_and_resumes_exactly(tmp_path):
    """A real process killed with SIGTERM mid-run; its resume matches an uninterrupted run."""
    make_dataset()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # A constant schedule (no warm-up) does not depend on the run's length, so the interrupted run can be
    # compared with an uninterrupted one of however many steps it ends up doing.
    opts = [*TINY, "--schedule", "constant", "--warmup", "0", "--eval-every", "1000000"]
    proc = subprocess.Popen([sys.executable, "-m", "charlstm", "train", "toy", "--run", "sig", *opts,
                             "--max-steps", "1000000"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    metrics = ckpt() / "sig" / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "SIGTERM received" in out
    assert "Resume with: charlstm train toy --run sig --resume" in out
    assert "Traceback" not in out
    stopped = load_tensors(ckpt() / "sig" / "last.safetensors")[1]["step"]
    assert stopped >= 20
    res = invoke("train", "toy", "--run", "sig", "--resume", "--max-steps", str(stopped + 7))
    assert res.exit_code == 0, res.output
    res = invoke("train", "toy", "--run", "ref", *opts, "--max-steps", str(stopped + 7))
    assert res.exit_code == 0, res.output
    a = load_tensors(ckpt() / "sig" / "last.safetensors")[0]
    b = load_tensors(ckpt() / "ref" / "last.safetensors")[0]
    for k in a:
        if k.startswith(("model.", "optim.", "state.")):
            assert torch.equal(a[k], b[k]), k


def test_a_killed_run_resumes_from_its_clock_checkpoint_exactly(tmp_path):
    """SIGKILL (no chance to save) after a --save-every checkpoint: the run resumes from it and ends
    with the very weights of an uninterrupted run, although no evaluation ever happened."""
    make_dataset()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    opts = [*TINY, "--schedule", "constant", "--warmup", "0", "--eval-every", "1000000", "--save-every", "20"]
    proc = subprocess.Popen([sys.executable, "-m", "charlstm", "train", "toy", "--run", "kill", *opts,
                             "--max-steps", "1000000"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = ckpt() / "kill" / "last.safetensors"
    deadline = time.time() + 60
    while time.time() < deadline and not (last.exists() and load_tensors(last)[1]["step"] >= 40):
        time.sleep(0.1)
    proc.kill()
    proc.wait(timeout=30)
    saved = load_tensors(last)[1]["step"]
    assert saved >= 40 and saved % 20 == 0  # written on the step clock, not at an evaluation
    res = invoke("train", "toy", "--run", "kill", "--resume", "--max-steps", str(saved + 10))
    assert res.exit_code == 0, res.output
    res = invoke("train", "toy", "--run", "ref", *opts, "--max-steps", str(saved + 10))
    assert res.exit_code == 0, res.output
    a, b = load_tensors(last)[0], load_tensors(ckpt() / "ref" / "last.safetensors")[0]
    for k in a:
        if k.startswith(("model.", "optim.", "state.")):
            assert torch.equal(a[k], b[k]), k


def test_without_a_terminal_progress_comes_as_plain_lines(monkeypatch):
    """stderr not a terminal (a log file, nohup, CI): no bar, but lines with step, progress, loss,
    speed and ETA at a modest cadence, and every evaluation."""
    from charlstm.train import progress as P

    make_dataset()
    monkeypatch.setenv("CHARLSTM_QUIET", "0")
    monkeypatch.setattr(P, "PLAIN_EVERY", 0.0)  # every log point here; 30 s in real runs
    res = CliRunner().invoke(main, ["train", "toy", *TINY, "--max-steps", "40", "--eval-every", "20"],
                             catch_exceptions=False)  # a log point every 10 steps
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("step ")]
    assert [ln.split(":")[0] for ln in lines] == ["step 10/40 (25%)", "step 20/40 (50%)", "step 30/40 (75%)",
                                                  "step 40/40 (100%)"]
    assert "bpc" in lines[0] and "chars/s" in lines[0] and "ETA" in lines[0] and "elapsed" in lines[-1]
    assert "val " in lines[1] and "ETA" not in lines[-1]
    quiet = CliRunner().invoke(main, ["train", "toy", "--run", "q", *TINY, "--max-steps", "10", "-q"])
    assert not [ln for ln in quiet.stderr.splitlines() if ln.startswith("step ")]


def test_runs_survives_a_damaged_checkpoint():
    make_dataset()
    assert invoke("train", "toy", *TINY, "--max-steps", "3").exit_code == 0
    (ckpt() / "toy" / "model.safetensors").write_bytes(b"not a safetensors file")
    res = invoke("runs")
    assert res.exit_code == 0
    row = res.output.splitlines()[1].split()
    assert row[0] == "toy" and row[-1] == "-"  # no best score readable; still listed



def test_runs_lists_a_run_whose_config_is_broken_as_unreadable():
    from helpers import make_run

    make_run(ckpt(), "good")
    make_run(ckpt(), "broken")
    (ckpt() / "broken" / "config.json").write_text("{not json")
    (ckpt() / "notarun").mkdir()  # no config.json: not a run, not listed
    res = invoke("runs")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert [ln.split()[0] for ln in lines[1:]] == ["broken", "good"]
    assert lines[1].split()[1] == "(unreadable)" and "cannot read" in lines[1]
    js = [json.loads(ln) for ln in invoke("runs", "--json").output.splitlines()]
    assert js[0]["name"] == "broken" and js[0]["error"].startswith("cannot read") and js[1]["error"] is None


def _run_config(name: str = "toy") -> dict:
    return json.loads((ckpt() / name / "config.json").read_text())


def test_time_budget_alone_autosizes_the_model_and_its_schedule(monkeypatch):
    from charlstm.train import autosize

    monkeypatch.setattr(autosize, "LADDER", ((1, 8), (1, 16)))  # keep the timing of candidates short
    make_dataset()
    res = invoke("train", "toy", "--time-budget", "4s")
    assert res.exit_code == 0, res.output
    assert "autosize: 1x" in res.output and "LSTM (embed" in res.output
    assert "time budget used" in res.output
    cfg = _run_config()
    assert (cfg["model"]["num_layers"], cfg["model"]["hidden_size"]) in autosize.LADDER
    # the timing came out of the budget, and the schedule anneals to what is left of it
    assert 1.0 <= cfg["train"]["time_budget"] < 4.0 and cfg["train"]["schedule"] == "cosine"
    assert cfg["train"]["lr"] == pytest.approx(autosize.lr_for(cfg["model"]["num_layers"], cfg["model"]["hidden_size"]), rel=1e-2)


def test_explicit_sizes_turn_autosize_off_unless_asked_and_then_still_win(monkeypatch):
    from charlstm.train import autosize

    monkeypatch.setattr(autosize, "LADDER", ((1, 8), (1, 16)))
    make_dataset()
    res = invoke("train", "toy", *TINY, "--time-budget", "2s")
    assert res.exit_code == 0, res.output
    assert "autosize" not in res.output and _run_config()["model"]["hidden_size"] == 16
    res = invoke("train", "toy", "--run", "asked", "--autosize", "--time-budget", "3s", "--seq-len", "8", "--lr", "0.004")
    assert res.exit_code == 0, res.output
    assert "autosize:" in res.output
    cfg = _run_config("asked")
    assert cfg["train"]["seq_len"] == 8 and cfg["train"]["lr"] == 0.004 and cfg["train"]["time_budget"] < 3.0
    res = invoke("train", "toy", "--run", "plain", "--no-autosize", "--time-budget", "2s", "--eval-chars", "50")
    assert res.exit_code == 0 and "autosize" not in res.output
    assert _run_config("plain")["model"]["hidden_size"] == 256  # the defaults, as asked


@pytest.mark.parametrize("args, fragments", [
    (["--autosize"], ["add --time-budget"]),
    (["--autosize", "--time-budget", "5s", "--preset", "tiny"], ["replaces --preset"]),
    (["--autosize", "--time-budget", "5s", "--resume"], ["--resume continues"]),
])
def test_autosize_bad_combinations(args, fragments):
    make_dataset()
    assert_one_error(invoke("train", "toy", *args), *fragments)
    assert not (ckpt() / "toy").exists()


def test_autosize_refuses_an_existing_run_before_timing_anything(monkeypatch):
    make_dataset()
    monkeypatch.setenv("CHARLSTM_QUIET", "0")  # so that a timing would say so
    assert invoke("train", "toy", *TINY, "--max-steps", "3").exit_code == 0
    res = invoke("train", "toy", "--time-budget", "5s")
    assert_one_error(res, "already exists")
    assert "timing" not in res.output


def test_autosize_is_one_process_only(monkeypatch):
    from charlstm.train.autosize import wanted

    monkeypatch.setenv("WORLD_SIZE", "2")
    make_dataset()
    assert_one_error(invoke("train", "toy", "--autosize", "--time-budget", "5s"), "for one process")
    # without the flag, a torchrun job with only a budget trains the defaults, as before autosize
    assert wanted(None, 5.0, {"time_budget": 5.0}, world_size=2) is False
    assert wanted(None, 5.0, {"time_budget": 5.0}, world_size=1) is True
