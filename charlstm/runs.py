"""Everything about a run folder: where runs live, how a name becomes a folder, config.json, listing.

A run folder holds config.json (format "charlstm-run": the model and training settings and the
dataset it was trained on), tokenizer.json (its own copy of the vocabulary), model.safetensors (the
best weights), last.safetensors (everything needed to resume) and metrics.jsonl. See
docs/formats.md ("Runs").

Owns: the runs root (./checkpoints or $CHARLSTM_CHECKPOINTS), the file names inside a run, the rule
for run names (`run_dir`: a plain name under the root, never a path that leaves it), finding a run
by name or folder (`resolve_run`), the one reader and the one writer of config.json, and
`list_runs` (what `charlstm runs` shows, read from the files' headers only: no weights are loaded).
Does not know: models or training; tensors are read and written by charlstm.checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charlstm.config import ModelConfig, TrainConfig, model_config, train_config
from charlstm.errors import CharlstmError
from charlstm.fileio import atomic_write_bytes, atomic_write_json, check_name, check_output

RUN_FORMAT = "charlstm-run"
CONFIG = "config.json"
TOKENIZER = "tokenizer.json"
BEST = "model.safetensors"
LAST = "last.safetensors"
METRICS = "metrics.jsonl"


def runs_root() -> Path:
    """Where runs live: $CHARLSTM_CHECKPOINTS, else ./checkpoints."""
    return Path(os.environ.get("CHARLSTM_CHECKPOINTS", "checkpoints"))


def run_dir(name: str) -> Path:
    """The folder of the run called `name` (a plain name, checked like a dataset name) under the
    runs root. The folder need not exist yet."""
    return runs_root() / check_name(name, "run")


def resolve_run(name_or_path: str | os.PathLike) -> Path:
    """An existing run: a folder holding config.json, else runs_root()/name."""
    p = Path(name_or_path)
    if (p / CONFIG).is_file():
        return p
    q = runs_root() / str(name_or_path)
    if (q / CONFIG).is_file():
        return q
    raise CharlstmError(
        f"no run named '{name_or_path}' (looked in {p} and {q}); "
        "train one with `charlstm train DATASET --run NAME` or list them with `charlstm runs`"
    )


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The config.json of a run folder, checked to be a charlstm run."""
    path = Path(folder) / CONFIG
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CharlstmError(f"cannot read {path} ({e})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != RUN_FORMAT:
        raise CharlstmError(f"{Path(folder)} is not a charlstm run ({CONFIG} format is not '{RUN_FORMAT}')")
    return cfg


def open_run(name_or_path: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """Resolve a run name or folder and read its config.json -> (folder, config dict)."""
    path = resolve_run(name_or_path)
    return path, read_config(path)


def write_config(folder: str | os.PathLike, model_cfg: Any, train_cfg: Any, dataset: dict[str, Any],
                 tokenizer_json: str) -> None:
    """Write config.json and tokenizer.json of a run folder (atomically each).

    model_cfg, train_cfg: dataclasses (or dicts); dataset: {"name", "path", "meta": its meta.json};
    tokenizer_json: the vocabulary's tokenizer.json text (Vocab.to_json())."""
    def plain(c: Any) -> dict[str, Any]:
        return dataclasses.asdict(c) if dataclasses.is_dataclass(c) else dict(c or {})

    folder = Path(folder)
    cfg = {"format": RUN_FORMAT, "version": 1, "model": plain(model_cfg), "train": plain(train_cfg),
           "dataset": dataset}
    atomic_write_json(folder / CONFIG, cfg)
    atomic_write_bytes(folder / TOKENIZER, tokenizer_json.encode("utf-8"))


def append_metrics(folder: str | os.PathLike, record: dict[str, Any]) -> None:
    """Add one line to metrics.jsonl (a log point or an evaluation of the training loop)."""
    with open(Path(folder) / METRICS, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def trim_metrics(folder: str | os.PathLike, step: int) -> None:
    """Keep only the metrics.jsonl lines up to `step` (a resumed run redoes the steps after it)."""
    path = Path(folder) / METRICS
    if path.exists():
        keep = [ln for ln in path.read_text(encoding="utf-8").splitlines()
                if ln.strip() and json.loads(ln).get("step", 0) <= step]
        atomic_write_bytes(path, "".join(ln + "\n" for ln in keep).encode("utf-8"))


def run_configs(folder: str | os.PathLike) -> tuple[ModelConfig, TrainConfig]:
    """The model and train configs saved in a run's config.json (to resume with the same settings)."""
    cfg = read_config(folder)
    return model_config(cfg["model"]), train_config(cfg["train"])


def check_run_dir(folder: str | os.PathLike, resume: bool, force: bool) -> None:
    """Raise CharlstmError unless the run folder may be started (new, or force) or resumed (it has
    a last checkpoint), and can be written (no file where it or a folder above it would go)."""
    folder = check_output(folder, "run folder", folder=True)
    exists = (folder / CONFIG).exists() or (folder / LAST).exists()
    if resume:
        if not (folder / CONFIG).exists():
            raise CharlstmError(f"no run at {folder} to resume; drop --resume to start it")
        if not (folder / LAST).exists():
            raise CharlstmError(f"run {folder} has no {LAST} to resume from; start it over with --force")
    elif exists and not force:
        raise CharlstmError(f"run '{folder.name}' already exists at {folder}; use --resume to continue it, "
                            "--force to start it over, or --run to pick another name")


# ----------------------------------------------------------------------------- listing
@dataclass
class RunInfo:
    """One line of `charlstm runs`. error: why the run could not be read (the rest is then None)."""

    name: str
    path: Path
    dataset: str | None = None
    model: str | None = None  # e.g. "lstm 2x256"
    parameters: int | None = None
    steps: int | None = None
    best_val_bpc: float | None = None
    best_step: int | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["path"] = str(self.path)
        return d


def _header(path: Path) -> tuple[dict[str, Any], int] | None:
    """(decoded metadata, number of model parameters) from a safetensors header, or None if unreadable."""
    from safetensors import safe_open  # a light import, but only `charlstm runs` needs it

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


def run_info(path: str | os.PathLike) -> RunInfo:
    """Summary of one run folder; a folder whose config.json cannot be read gets `error` set."""
    path = Path(path)
    try:
        cfg = read_config(path)
    except CharlstmError as e:
        return RunInfo(name=path.name, path=path, error=str(e))
    m = cfg.get("model", {})
    best = _header(path / BEST) if (path / BEST).exists() else None
    last = _header(path / LAST) if (path / LAST).exists() else None
    steps = (last or best or ({}, None))[0].get("step")
    params = (best or last or ({}, None))[1]
    return RunInfo(name=path.name, path=path, dataset=(cfg.get("dataset") or {}).get("name", "?"),
                   model=f"{m.get('cell', '?')} {m.get('num_layers', '?')}x{m.get('hidden_size', '?')}",
                   parameters=params, steps=steps,
                   best_val_bpc=best[0].get("val_bpc") if best else None,
                   best_step=best[0].get("step") if best else None)


def list_runs(root: str | os.PathLike | None = None) -> list[RunInfo]:
    """Every run folder under `root` (default: runs_root()), sorted by name: folders with a
    config.json, readable or not (an unreadable one is listed with its error)."""
    root = Path(root) if root is not None else runs_root()
    if not root.is_dir():
        return []
    return [run_info(p) for p in sorted(root.iterdir())
            if p.is_dir() and not p.name.startswith(".") and (p / CONFIG).exists()]
