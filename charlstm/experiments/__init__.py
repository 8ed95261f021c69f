"""The source's synthetic experiments as one command each (`charlstm experiment TASK`).

Each experiment module (counting, selective, remember, copy) generates its task's data, trains the
model the source used with charlstm.train, measures generalisation, finds the responsible neurons
automatically (charlstm.neurons: ranking over traces against the right feature) and writes a report
(report.md and report.html with pictures) into its output folder:

    from charlstm.experiments import run_experiment
    result = run_experiment("counting", out="out/experiments/counting", seed=0)
    print(result.summary())
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from charlstm.errors import CharlstmError
from charlstm.experiments.common import ExperimentResult, stderr_log
from charlstm.runtime import one_thread

__all__ = ["EXPERIMENTS", "ExperimentResult", "default_out", "run_experiment"]

#: experiment name -> module implementing `run(out, seed, log) -> ExperimentResult`.
EXPERIMENTS: dict[str, str] = {
    "counting": "charlstm.experiments.counting",
    "selective-counting": "charlstm.experiments.selective",
    "remember": "charlstm.experiments.remember",
    "copy": "charlstm.experiments.copy",
}


def default_out(name: str) -> Path:
    """Where an experiment writes by default: out/experiments/<name>."""
    return Path("out") / "experiments" / name


def run_experiment(name: str, out: str | os.PathLike | None = None, seed: int = 0,
                   quiet: bool = True) -> ExperimentResult:
    """Run one experiment end to end into `out` (default `default_out(name)`; its data/, run/ and
    report files are replaced). Progress goes to stderr unless quiet."""
    if name not in EXPERIMENTS:
        raise CharlstmError(f"unknown experiment '{name}'; choose one of: {', '.join(EXPERIMENTS)}")
    folder = Path(out) if out is not None else default_out(name)
    if folder.exists() and not folder.is_dir():
        raise CharlstmError(f"--out {folder} is a file; give a folder")
    folder.mkdir(parents=True, exist_ok=True)
    module = importlib.import_module(EXPERIMENTS[name])
    with one_thread():
        return module.run(folder, seed, stderr_log(quiet))
