"""Where datasets and runs live, and how a name or a path resolves to one.

Defaults are ./data and ./checkpoints (relative to the working directory), overridable with the
environment variables CHARLSTM_DATA and CHARLSTM_CHECKPOINTS (tests point both at temp dirs).
"""
from __future__ import annotations

import os
from pathlib import Path

from charlstm.errors import CharlstmError


def data_root() -> Path:
    return Path(os.environ.get("CHARLSTM_DATA", "data"))


def runs_root() -> Path:
    return Path(os.environ.get("CHARLSTM_CHECKPOINTS", "checkpoints"))


def resolve_dataset(name_or_path: str | os.PathLike) -> Path:
    """A dataset folder: an existing path containing meta.json, else data_root()/name."""
    p = Path(name_or_path)
    if (p / "meta.json").is_file():
        return p
    q = data_root() / str(name_or_path)
    if (q / "meta.json").is_file():
        return q
    raise CharlstmError(
        f"no dataset named '{name_or_path}' (looked in {p} and {q}); "
        "create one with `charlstm data ...` or run `charlstm data list`"
    )


def resolve_run(name_or_path: str | os.PathLike) -> Path:
    """A run folder: an existing path containing config.json, else runs_root()/name."""
    p = Path(name_or_path)
    if (p / "config.json").is_file():
        return p
    q = runs_root() / str(name_or_path)
    if (q / "config.json").is_file():
        return q
    raise CharlstmError(
        f"no run named '{name_or_path}' (looked in {p} and {q}); "
        "train one with `charlstm train DATASET --run NAME` or list them with `charlstm runs`"
    )
