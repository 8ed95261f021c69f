"""Typed configuration (model, training) and presets: the one home of defaults.

Owns: ModelConfig and TrainConfig with their defaults and checks (and DynamicSettings, those of
dynamic evaluation), the presets, reading a --config
TOML file, and merging the layers. Precedence when training: command-line options > a --config TOML
file > the preset > these defaults. Does not know: datasets, devices or files other than the TOML.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import os
import tomllib
from dataclasses import dataclass
from typing import Any, Literal

from charlstm.errors import CharlstmError

Cell = Literal["lstm", "gru", "rnn", "peephole"]
CELLS = ("lstm", "gru", "rnn", "peephole")


@dataclass
class ModelConfig:
    """Embedding(V, E) -> num_layers x cell(H) -> Linear(H, V)."""

    cell: str = "lstm"
    vocab_size: int = 0
    embed_dim: int = 64
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.0
    # Records (tweets, synthetic tasks): the end-of-record id, read from the zero state, so every
    # record starts from the same state; None for running text (charlstm.model, "Records").
    reset_id: int | None = None

    def validate(self) -> None:
        if self.cell not in CELLS:
            raise CharlstmError(f"unknown cell '{self.cell}'; choose one of {', '.join(CELLS)}")
        for k in ("vocab_size", "embed_dim", "hidden_size", "num_layers"):
            if getattr(self, k) < 1:
                raise CharlstmError(f"{k.replace('_', '-')} must be at least 1, got {getattr(self, k)}")
        if not 0.0 <= self.dropout < 1.0:
            raise CharlstmError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.reset_id is not None and not 0 <= self.reset_id < self.vocab_size:
            raise CharlstmError(f"reset-id {self.reset_id} is not an id of the vocabulary (size {self.vocab_size})")


@dataclass
class TrainConfig:
    """Optimisation and run control. Durations are seconds; None means 'no limit'."""

    batch_size: int = 32
    seq_len: int = 100
    lr: float = 2e-3
    min_lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 50
    schedule: str = "cosine"  # cosine | step | constant
    step_gamma: float = 0.5  # step schedule: multiply by this ...
    step_every: int = 1000  # ... every this many steps
    grad_clip: float = 1.0
    grad_accum: int = 1
    max_steps: int | None = None
    max_epochs: float | None = None
    time_budget: float | None = None
    eval_every: int = 200
    eval_max_chars: int | None = None  # None: the whole validation split (exact bpc)
    # last.safetensors is also written on a clock, whatever the evaluations do, so that a crash
    # loses at most this much work: every save_every seconds (0: not on the clock), or every
    # save_every_steps steps.
    save_every: float | None = 300.0
    save_every_steps: int | None = None
    log_every: int = 10
    sample_chars: int = 200  # printed at each evaluation; 0 to disable
    seed: int = 1234
    device: str = "auto"  # auto | cpu | cuda | mps
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    compile: bool = False
    max_nan_retries: int = 3

    def validate(self) -> None:
        pos = ("batch_size", "seq_len", "grad_accum", "eval_every", "log_every")
        for k in pos:
            if getattr(self, k) < 1:
                raise CharlstmError(f"{k.replace('_', '-')} must be at least 1, got {getattr(self, k)}")
        if self.lr <= 0 or self.min_lr < 0:
            raise CharlstmError(f"learning rates must be positive (lr={self.lr}, min-lr={self.min_lr})")
        if self.schedule not in ("cosine", "step", "constant"):
            raise CharlstmError(f"unknown schedule '{self.schedule}'; choose cosine, step or constant")
        if self.grad_clip < 0:
            raise CharlstmError(f"grad-clip must be >= 0, got {self.grad_clip}")
        for k in ("max_steps", "max_epochs", "time_budget"):
            v = getattr(self, k)
            if v is not None and v <= 0:
                raise CharlstmError(f"{k.replace('_', '-')} must be positive, got {v}")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith("cuda:"):
            raise CharlstmError(f"unknown device '{self.device}'; choose auto, cpu, cuda or mps")


# Sizes in the spirit of char-rnn: 2x128 up to 3x512 and beyond.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {"model": {"num_layers": 2, "hidden_size": 128, "embed_dim": 32},
             "train": {"batch_size": 32, "seq_len": 64, "lr": 3e-3}},
    "small": {"model": {"num_layers": 2, "hidden_size": 256, "embed_dim": 64},
              "train": {"batch_size": 32, "seq_len": 100, "lr": 2e-3}},
    "medium": {"model": {"num_layers": 3, "hidden_size": 512, "embed_dim": 64, "dropout": 0.1},
               "train": {"batch_size": 64, "seq_len": 128, "lr": 2e-3}},
    "large": {"model": {"num_layers": 3, "hidden_size": 1024, "embed_dim": 128, "dropout": 0.2},
              "train": {"batch_size": 64, "seq_len": 128, "lr": 1e-3}},
}


def _update(obj: Any, values: dict[str, Any], where: str) -> None:
    names = {f.name for f in dataclasses.fields(obj)}
    for k, v in values.items():
        key = k.replace("-", "_")
        if key not in names:
            raise CharlstmError(f"unknown {where} setting '{k}'; known: {', '.join(sorted(names))}")
        setattr(obj, key, v)


def build_configs(preset: str | None = None, file_values: dict[str, Any] | None = None,
                  overrides: dict[str, Any] | None = None) -> tuple[ModelConfig, TrainConfig]:
    """Defaults <- preset <- file ({"model": {...}, "train": {...}}) <- overrides (flat, either kind)."""
    m, t = ModelConfig(), TrainConfig()
    if preset is not None:
        if preset not in PRESETS:
            raise CharlstmError(f"unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")
        _update(m, PRESETS[preset]["model"], "model")
        _update(t, PRESETS[preset]["train"], "train")
    for section, values in (file_values or {}).items():
        if section == "model":
            _update(m, values, "model")
        elif section == "train":
            _update(t, values, "train")
        else:
            raise CharlstmError(f"unknown config section [{section}]; use [model] and [train]")
    mnames = {f.name for f in dataclasses.fields(m)}
    for k, v in (overrides or {}).items():
        if v is None:
            continue
        key = k.replace("-", "_")
        _update(m if key in mnames else t, {key: v}, "model or train")
    return m, t


def model_config(values: dict[str, Any]) -> ModelConfig:
    """A ModelConfig from a dict (a run's config.json "model"), refusing settings it does not know."""
    m = ModelConfig()
    _update(m, values, "model")
    return m


def train_config(values: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from a dict (a run's config.json "train"); settings this version does not know
    are ignored, so a run written by an older or newer charlstm still resumes."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    t = TrainConfig()
    _update(t, {k: v for k, v in values.items() if k in names}, "train")
    return t


def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    """A --config file: TOML with [model] and [train] sections."""
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except OSError as e:
        raise CharlstmError(f"cannot read config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise CharlstmError(f"config file {path} is not valid TOML: {e}") from None
    for section, v in values.items():
        if not isinstance(v, dict):
            raise CharlstmError(f"config setting '{section}' must be inside a [model] or [train] section")
    return values


def merge(base: dict[str, dict[str, Any]], top: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Sections of `top` laid over those of `base` (a new dict; neither is changed)."""
    out = {k: dict(v) for k, v in base.items()}
    for section, values in top.items():
        if not isinstance(values, dict):
            raise CharlstmError(f"config setting '{section}' must be inside a [model] or [train] section")
        out.setdefault(section, {}).update(values)
    return out


@dataclass(frozen=True)
class DynamicSettings:
    """Dynamic evaluation (charlstm.dynamic): step: the step size (> 0); decay: the pull back toward
    the trained weights per segment, in [0, 1] (0: none; 1: every segment starts from the trained
    weights again); segment: symbols per update (>= 1). The defaults were chosen by measurement on
    held-out text that is not the text reported on (scripts/bench_dynamic.py; docs/benchmarks.md,
    "Dynamic evaluation")."""

    step: float = 4e-3
    decay: float = 5e-3
    segment: int = 64

    def validate(self) -> "DynamicSettings":
        """Raise a one-line CharlstmError for a setting out of range; return self."""
        if isinstance(self.step, bool) or not isinstance(self.step, (int, float)) or \
                not math.isfinite(self.step) or self.step <= 0:
            raise CharlstmError(f"the dynamic evaluation step size must be a positive, finite number, got {self.step}")
        if isinstance(self.decay, bool) or not isinstance(self.decay, (int, float)) or \
                not (0.0 <= self.decay <= 1.0):
            raise CharlstmError(f"the dynamic evaluation decay must be between 0 and 1, got {self.decay}")
        if isinstance(self.segment, bool) or not isinstance(self.segment, numbers.Integral) or self.segment < 1:
            raise CharlstmError(f"the dynamic evaluation segment must be at least 1 symbol, got {self.segment}")
        return self

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
