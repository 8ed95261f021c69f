"""Every command that writes a file or folder checks the path before any work (fileio.check_output):
a file standing where a parent folder would go gives one `Error:` line, a non-zero exit, no
traceback, and nothing written; an OS error during the work (a full disk) is one line too (the CLI
group) and leaves no temporary file."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from charlstm.cli import main
from helpers import TEXT, make_run

# The run does not exist: an error about the output (not about the run) shows it is checked first.
COMMANDS = {
    "sample -o": ["sample", "no-such-run", "-o", "{out}.txt"],
    "eval --per-char": ["eval", "no-such-run", "{src}", "--per-char", "{out}.jsonl"],
    "trace -o": ["trace", "no-such-run", "--text", "def f", "-o", "{out}.npz"],
    "trace --format lstmvis -o": ["trace", "no-such-run", "--text", "def f", "--format", "lstmvis", "-o", "{out}"],
    "trace --html": ["trace", "no-such-run", "--text", "def f", "--html", "{out}.html"],
    "trace --gate-plot": ["trace", "no-such-run", "--text", "def f", "--gate-plot", "{out}.png"],
    "neurons find --json": ["neurons", "find", "no-such-run", "--feature", "indentation", "--text", "x", "--json", "{out}.json"],
    "neurons find --html": ["neurons", "find", "no-such-run", "--feature", "indentation", "--text", "x", "--html", "{out}.html"],
    "bench --json": ["bench", "--quick", "--json", "{out}.json"],
    "data --data-dir": ["data", "synthetic", "counting", "--num", "20", "--data-dir", "{out}"],
}


def _files(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in root.rglob("*")}


def _one_error(res, *fragments: str) -> str:
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and (res.exception is None or isinstance(res.exception, SystemExit))
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("blocked", ["parent", "grandparent"])
@pytest.mark.parametrize("what", list(COMMANDS))
def test_an_output_under_a_file_is_refused_before_any_work(tmp_path, monkeypatch, what, blocked):
    from charlstm import bench

    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: pytest.fail("the benchmark ran"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.py").write_text(TEXT)
    (tmp_path / "blocker").write_text("a file, not a folder\n")
    out = "blocker/out" if blocked == "parent" else "blocker/sub/out"
    before = _files(tmp_path)
    args = [a.format(out=out, src="in.py") for a in COMMANDS[what]]
    res = CliRunner().invoke(main, args)
    _one_error(res, "blocker is a file, not a folder")
    assert _files(tmp_path) == before


def test_a_run_folder_under_a_file_is_refused_before_training(tmp_path, monkeypatch):
    from test_train_helpers import make_dataset

    make_dataset()
    (tmp_path / "blocker").write_text("x")
    monkeypatch.setenv("CHARLSTM_CHECKPOINTS", str(tmp_path / "blocker" / "runs"))
    res = CliRunner().invoke(main, ["train", "toy", "--hidden", "8", "--layers", "1", "--seq-len", "8", "--max-steps", "1"])
    _one_error(res, "cannot write run folder", "blocker is a file, not a folder")
    assert (tmp_path / "blocker").read_text() == "x"


def test_an_os_error_during_the_work_is_one_line_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    """The disk fills up while the output is written (simulated: running as root, a read-only folder
    would not stop the write): the CLI group turns the OSError into one line."""
    run, _, _ = make_run(tmp_path / "checkpoints")
    out = tmp_path / "out"
    out.mkdir()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    res = CliRunner().invoke(main, ["sample", str(run), "--length", "5", "-o", str(out / "s.txt"), "-q"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.splitlines()[-1] == "Error: No space left on device"
    assert list(out.iterdir()) == []  # atomic write: no half-written file, no temporary one
