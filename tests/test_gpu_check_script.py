"""scripts/gpu_check.sh: every step runs on the CPU at test size (GPU_CHECK_QUICK=1), writes what the
summary reads, and the summary says so; failures and skips are recorded, never silent."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.sh"
STEPS = ["env", "install", "cuda_tests", "bench", "target", "data", "train", "eval", "sample", "sample_b1",
         "sample_b256", "amp_bf16", "amp_fp32", "scaling_model", "scaling_shape"]


def run_script(tmp: Path, timeout: float = 400, **settings: str) -> subprocess.CompletedProcess:
    (tmp / "tmp").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPU_CHECK_", "CHARLSTM_")) and k != "OUT"}
    env.update({"TMPDIR": str(tmp / "tmp"), "GPU_CHECK_PYTHON": sys.executable, **settings})
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=timeout)


def finite_positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def repo_outputs() -> set[str]:
    return {str(p.relative_to(REPO)) for d in ("data", "checkpoints") for p in (REPO / d).glob("*")}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu-check")
    before = repo_outputs()
    r = run_script(tmp, GPU_CHECK_DEVICE="cpu", GPU_CHECK_QUICK="1", OUT=str(tmp / "out"))
    out = tmp / "out"
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else None
    return {"proc": r, "out": out, "logs": out / "logs", "summary": summary, "tmp": tmp,
            "repo_unchanged": repo_outputs() == before}


def result(quick, name) -> dict:
    [step] = [s for s in quick["summary"]["steps"] if s["name"] == name]
    return step["result"]


@pytest.mark.slow
def test_every_step_runs_and_is_ok(quick):
    r, s = quick["proc"], quick["summary"]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert s["ok"] is True and s["device"] == "cpu" and s["quick"] is True
    assert [(st["name"], st["status"], st["exit"]) for st in s["steps"]] == [(n, "ok", 0) for n in STEPS]
    text = (quick["out"] / "summary.txt").read_text()
    assert f"{len(STEPS)} of {len(STEPS)} steps ok" in text and text in r.stdout
    for name in STEPS:
        assert f"\n{name} " in text
    # the temp folder (datasets, runs, the install) is gone, and nothing was written into the repository
    assert not list((quick["tmp"] / "tmp").glob("charlstm-gpu-check.*")) and quick["repo_unchanged"]


@pytest.mark.slow
def test_install_leaves_torch_alone_and_cuda_tests_are_selected(quick):
    env, inst, tests = result(quick, "env"), result(quick, "install"), result(quick, "cuda_tests")
    assert env["cuda_available"] is False and env["torch"] == inst["torch"]
    assert inst["torch_file"] == env["torch_file"] and not inst["missing"]
    assert not inst["charlstm_file"].startswith(str(REPO)) and "charlstm-gpu-check." in inst["charlstm_file"]
    # on the CPU the CUDA tests are selected by the marker and skipped (on a GPU a skip fails the step)
    assert tests["tests"] >= 2 and tests["skipped"] == tests["tests"] and tests["failures"] == tests["errors"] == 0
    assert any(n.endswith("::test_cuda_graph_sampling_equals_the_eager_loop") for n in tests["names"])


@pytest.mark.slow
def test_bench_and_scaling_json(quick):
    logs = quick["logs"]
    bench = json.loads((logs / "bench.json").read_text())
    [p] = bench["presets"]
    assert bench["device"]["type"] == "cpu" and p["preset"] == "tiny"
    assert finite_positive(p["train"]["charlstm_chars_per_s"]) and finite_positive(p["sample"]["batch1_chars_per_s"])
    axes = {name: [(row["axis"], row["value"]) for row in json.loads((logs / f"{name}.json").read_text())["rows"]]
            for name in ("target", "scaling_model", "scaling_shape")}
    assert axes == {"target": [("batch_size", 8)], "scaling_model": [("hidden_size", 32), ("num_layers", 2)],
                    "scaling_shape": [("batch_size", 8), ("seq_len", 8)]}
    assert all(finite_positive(row["chars_per_s"]) for row in result(quick, "scaling_shape")["rows"])


@pytest.mark.slow
def test_training_eval_and_sampling(quick):
    train, ev = result(quick, "train"), result(quick, "eval")
    assert train["steps"] > 0 and finite_positive(train["chars_per_s"]) and "autosize" in train
    # eval scores the trained run's best checkpoint on the same val split the run reported
    assert ev["source"] == "val split" and abs(ev["bpc"] - train["best_val_bpc"]) < 0.1
    assert result(quick, "sample")["text"].startswith("def ")
    b1, b256 = result(quick, "sample_b1"), result(quick, "sample_b256")
    assert b1["chars"] == 500 and b256["chars"] == 256 * 100
    assert finite_positive(b1["chars_per_s"]) and finite_positive(b256["chars_per_s"])
    assert "characters in" in (quick["logs"] / "sample_b256.log").read_text()


@pytest.mark.slow
def test_amp_and_fp32_train_equal_steps(quick):
    bf16, fp32, amp = result(quick, "amp_bf16"), result(quick, "amp_fp32"), quick["summary"]["amp"]
    assert (bf16["precision"], fp32["precision"]) == ("bf16", "fp32") and bf16["steps"] == fp32["steps"] == 20
    assert amp["steps"] == [20, 20] and finite_positive(amp["speedup"])
    assert finite_positive(amp["bf16_val_bpc"]) and finite_positive(amp["fp32_val_bpc"])


@pytest.mark.slow
def test_the_archive_holds_every_step_file(quick):
    logs = quick["logs"]
    with tarfile.open(quick["out"] / "logs.tar.gz") as tar:
        archived = {Path(n).name for n in tar.getnames() if n != "."}
    assert archived == {p.name for p in logs.iterdir()}
    assert {f"{n}.log" for n in STEPS} <= archived and "steps.tsv" in archived


def test_a_failing_step_is_recorded_and_the_run_goes_on(tmp_path):
    # no machine has a 100th GPU: env fails, every step after it is skipped, the summaries are written
    r = run_script(tmp_path, timeout=120, GPU_CHECK_DEVICE="cuda:99", GPU_CHECK_QUICK="1", OUT=str(tmp_path / "o"))
    assert r.returncode == 1, r.stdout + r.stderr
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    statuses = {st["name"]: st["status"] for st in s["steps"]}
    assert statuses.pop("env") == "failed (exit 1)" and s["ok"] is False
    assert list(statuses) == STEPS[1:] and all(st.startswith("skipped: needs ") for st in statuses.values())
    assert statuses["bench"] == "skipped: needs env" and statuses["eval"] == "skipped: needs train"
    assert "cuda:99 asked for" in (tmp_path / "o" / "logs" / "env.log").read_text()
    assert s["machine"]["torch"]  # what env found is reported even though it failed
    assert f"0 of {len(STEPS)} steps ok; not ok: env, install" in (tmp_path / "o" / "summary.txt").read_text()


def test_only_the_chosen_steps_run(tmp_path):
    r = run_script(tmp_path, timeout=120, GPU_CHECK_DEVICE="cpu", GPU_CHECK_QUICK="1", OUT=str(tmp_path / "o"),
                   GPU_CHECK_STEPS="env install data eval")
    assert r.returncode == 1, r.stdout + r.stderr
    statuses = {st["name"]: st["status"] for st in json.loads((tmp_path / "o" / "summary.json").read_text())["steps"]}
    assert [n for n, st in statuses.items() if st == "ok"] == ["env", "install", "data"]
    assert statuses["train"] == "skipped: not in GPU_CHECK_STEPS" and statuses["eval"] == "skipped: needs train"


@pytest.mark.parametrize("settings, message", [
    ({}, "set OUT to the folder for the results"),
    ({"GPU_CHECK_QUICK": "yes"}, "GPU_CHECK_QUICK must be 0 or 1, got 'yes'"),
    ({"GPU_CHECK_DEVICE": "tpu"}, "GPU_CHECK_DEVICE must be cuda, cuda:N or cpu, got 'tpu'"),
    ({"GPU_CHECK_BUDGET": "8m"}, "GPU_CHECK_BUDGET must be whole seconds, got '8m'"),
    ({"GPU_CHECK_PYTHON": "no-such-python"}, "no Python 'no-such-python'"),
    ({"GPU_CHECK_STEPS": "env benchmark"}, "unknown step 'benchmark' in GPU_CHECK_STEPS; the steps: env install"),
    ({"earlier": "1"}, "already holds results: give a new or empty folder"),
])
def test_bad_settings_are_one_line(tmp_path, settings, message):
    settings = dict(settings)
    if settings:
        settings["OUT"] = str(tmp_path / "o")
    if settings.pop("earlier", None):
        (tmp_path / "o").mkdir()
        (tmp_path / "o" / "summary.json").write_text("{}")
    r = run_script(tmp_path, timeout=30, **settings)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("gpu_check.sh: error: ") and message in r.stderr and r.stderr.count("\n") == 1, r.stderr


SUMMARY = REPO / "scripts" / "gpu_check_summary.py"


def summarize(logs: Path, out: Path, rows: list[str], status_of: str) -> str:
    (logs / "steps.tsv").write_text("step\tstatus\texit\tseconds\tcommand\n" + "".join(r + "\n" for r in rows))
    r = subprocess.run([sys.executable, str(SUMMARY), "--logs", str(logs), "--out", str(out), "--device", "cuda",
                        "--budget", "470", "--elapsed", "100", "--status-of", status_of],
                       capture_output=True, text=True, check=True)
    return r.stdout.strip()


def test_a_step_that_exits_0_without_its_results_has_failed(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "bench.log").write_text("charlstm bench: ...\n")
    (logs / "sample_b1.log").write_text("some text\n")
    status = summarize(logs, tmp_path, ["bench\tok\t0\t12.5\tcharlstm bench", "sample_b1\tok\t0\t3.0\tcharlstm sample"],
                       "bench")
    assert status == "failed: bench.json was not written"
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["ok"] is False and [st["status"] for st in s["steps"]] == [
        "failed: bench.json was not written", "failed: no 'seed ... characters in ... s' line"]


def test_the_targets_are_read_from_the_steps_that_measure_them(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    row = dict(num_layers=3, hidden_size=512, seq_len=128, mfu=0.5, peak_memory_mb=900.0)
    (logs / "target.json").write_text(json.dumps({"rows": [
        {**row, "axis": "batch_size", "value": 64, "batch_size": 64, "charlstm_chars_per_s": 4e5, "bare_chars_per_s": 4e5,
         "ratio": 1.0},
        {**row, "axis": "batch_size", "value": 256, "batch_size": 256, "charlstm_chars_per_s": 1.2e6,
         "bare_chars_per_s": 1.5e6, "ratio": 0.8}]}))
    (logs / "target.log").write_text("")
    (logs / "sample_b1.log").write_text("def f():\nseed 1 · 20,000 characters in 1.60 s (12,500/s) · ended by length\n")
    summarize(logs, tmp_path, ["target\tok\t0\t30.0\tcharlstm bench --scaling", "sample_b1\tok\t0\t5.0\tcharlstm sample",
                               "sample_b256\tskipped: needs train\t-\t0\t"], "target")
    targets = json.loads((tmp_path / "summary.json").read_text())["targets"]
    assert [(t["measured"], t["met"]) for t in targets] == [(1.2e6, True), (0.8, False), (12_500, True), (None, None)]
    text = (tmp_path / "summary.txt").read_text()
    assert "training 3x512, batch 256 (target step, charlstm), chars/s >= 1,000,000: 1,200,000 (met)" in text
    assert "charlstm / bare cuDNN >= 0.95: 0.8 (not met)" in text
    assert "sampling batch 1 (sample_b1, the gpu3m run), chars/s >= 10,000: 12,500 (met)" in text
    assert "sampling batch 256 (sample_b256, the gpu3m run), chars/s >= 200,000: not measured" in text
