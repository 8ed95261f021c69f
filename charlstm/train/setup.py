"""From what a user asked for to the configs a run trains with: presets, a --config file, options,
the settings of a run being resumed, and autosize.

Owns the precedence (options > --config file > preset > defaults; a resumed run starts from its own
config.json) and the decision to autosize. Does not know: the command line's option names (the CLI
hands over config field names) or the loop itself.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from charlstm.config import PRESETS, ModelConfig, TrainConfig, build_configs, merge, read_toml
from charlstm.dataset import Dataset, open_dataset
from charlstm.runs import CONFIG
from charlstm.runtime import resolve_device
from charlstm.train import autosize
from charlstm.train.distributed import from_env
from charlstm.runs import check_run_dir, run_configs


@dataclass
class Setup:
    """What `configure` decided: the dataset (a name, folder, or the Dataset autosize opened), the
    configs, and, when autosize chose them, the line that says what it chose."""

    dataset: Any
    model: ModelConfig
    train: TrainConfig
    autosized: str | None = None


def configure(dataset: str, run_dir: Path, *, preset: str | None = None, config_file: Path | None = None,
              overrides: dict[str, Any] | None = None, resume: bool = False, force: bool = False,
              autosize_flag: bool | None = None, say: Callable[[str], None] = lambda msg: None) -> Setup:
    """The configs for `charlstm train`. overrides: config fields the user gave (None = not given).

    Resuming starts from the run's own settings, and anything given on top must stay compatible.
    With autosize (charlstm.train.autosize.wanted) candidate models are timed on this machine; the
    run folder is checked first, so a refused run costs no timing."""
    overrides = dict(overrides or {})
    file_values = read_toml(config_file) if config_file else {}
    if resume and (run_dir / CONFIG).exists():
        m0, t0 = run_configs(run_dir)
        base = {"model": dataclasses.asdict(m0), "train": dataclasses.asdict(t0)}
        if preset:
            base = merge(base, PRESETS[preset])
        m, t = build_configs(None, merge(base, file_values), overrides)
        return Setup(dataset, m, t)
    if autosize.wanted(autosize_flag, overrides.get("time_budget"), overrides, preset, file_values, resume,
                       from_env().world_size):
        build_configs(None, None, overrides)  # the options given are checked before any timing
        check_run_dir(run_dir, resume=False, force=force)
        ds: Dataset = open_dataset(dataset)  # handed on to train(): opened and verified once
        device = resolve_device(overrides.get("device") or "auto")
        say(f"autosize: timing candidate models on {device} for the {overrides['time_budget']:.0f}s budget ...")
        values, p = autosize.autosized_overrides(ds, overrides["time_budget"], device, overrides)
        m, t = build_configs(None, None, values)
        line = autosize.describe(values, values) + f" ({p.reason}; timing took {p.calibration_seconds:.1f}s)"
        return Setup(ds, m, t, line)
    m, t = build_configs(preset, file_values, overrides)
    return Setup(dataset, m, t)
