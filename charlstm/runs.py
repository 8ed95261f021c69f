"""Listing training runs: what `charlstm runs` shows, read from each run folder's files only.

A run's summary comes from config.json (dataset, model) and the safetensors headers and metadata
of model.safetensors (best val bpc and its step) and last.safetensors (steps done); parameter
counts are summed from the tensor shapes in the header, so no weights are loaded.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charlstm.checkpoint import BEST, LAST
from charlstm.paths import runs_root


@dataclass
class RunInfo:
    name: str
    path: Path
    dataset: str
    model: str  # e.g. "lstm 2x256"
    parameters: int | None
    steps: int | None
    best_val_bpc: float | None
    best_step: int | None

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["path"] = str(self.path)
        return d


def _header(path: Path) -> tuple[dict[str, Any], int] | None:
    """(decoded metadata, number of model parameters) from a safetensors header, or None if unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            md = {}
            for k, v in (f.metadata() or {}).items():
                try:
                    md[k] = json.loads(v)
                except ValueError:
                    md[k] = v
            keys = list(f.keys())
            prefixed = any(k.startswith("model.") for k in keys)
            n = sum(math.prod(f.get_slice(k).get_shape()) for k in keys
                    if not prefixed or k.startswith("model."))
        return md, n
    except Exception:  # a damaged file is shown as unknown here; loading it reports the error
        return None


def run_info(path: str | os.PathLike) -> RunInfo | None:
    """Summary of one run folder, or None when it has no readable config.json."""
    path = Path(path)
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if cfg.get("format") != "charlstm-run":
        return None
    m = cfg.get("model", {})
    best = _header(path / BEST) if (path / BEST).exists() else None
    last = _header(path / LAST) if (path / LAST).exists() else None
    steps = (last or best or ({}, None))[0].get("step")
    params = (best or last or ({}, None))[1]
    return RunInfo(name=path.name, path=path, dataset=cfg.get("dataset", {}).get("name", "?"),
                   model=f"{m.get('cell', '?')} {m.get('num_layers', '?')}x{m.get('hidden_size', '?')}",
                   parameters=params, steps=steps,
                   best_val_bpc=best[0].get("val_bpc") if best else None,
                   best_step=best[0].get("step") if best else None)


def list_runs(root: str | os.PathLike | None = None) -> list[RunInfo]:
    """Every run under `root` (default: paths.runs_root()), sorted by name."""
    root = Path(root) if root is not None else runs_root()
    if not root.is_dir():
        return []
    out = [run_info(p) for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    return [r for r in out if r is not None]
