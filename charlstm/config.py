"""Typed configuration (model, training) and presets: the one home of defaults and their checks.

Owns: ModelConfig and TrainConfig with their defaults, the one check of every setting (type, and for
numbers finite and in range: `validate`, used by the command line, --config files and the Python
API alike), DynamicSettings (those of dynamic evaluation, checked the same way), the presets,
reading a --config TOML file, and merging the layers. Precedence when training: command-line
options, then a --config TOML file, then the preset, then these defaults. Does not know: datasets,
devices or files other than the TOML.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import os
import tomllib
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from charlstm.errors import CharlstmError
from charlstm.precision import PRECISIONS

Cell = Literal["lstm", "gru", "rnn", "peephole"]
CELLS = ("lstm", "gru", "rnn", "peephole")
SCHEDULES = ("cosine", "step", "constant")

_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}

# The `charlstm train` options whose names differ from the settings they set (the CLI maps them
# with this table; messages name both, so the line makes sense after an option or a TOML key).
OPTIONS = {"num_layers": "layers", "hidden_size": "hidden", "embed_dim": "embed", "warmup_steps": "warmup",
           "eval_max_chars": "eval-chars"}


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _allowed(cls: type, key: str) -> tuple[type, ...]:
    """The types a field accepts, from its annotation: (int,), (float, NoneType), ..."""
    hint = _hints(cls)[key]
    return typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)


def _type_ok(value: Any, t: type) -> bool:
    if t is type(None):
        return value is None
    if t is float:  # an integer is a number too (TOML writes `lr = 1`); True is not
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, t)


def check_type(cls: type, key: str, value: Any, where: str) -> Any:
    """`value` for the field `key` of the config class `cls`, checked against its annotation (an
    int given for a float becomes a float). Raises CharlstmError naming the setting and the type."""
    allowed = _allowed(cls, key)
    if not any(_type_ok(value, t) for t in allowed):
        kinds = " or ".join(_KINDS[t] for t in allowed if t in _KINDS)
        raise CharlstmError(f"{where} setting '{key}' must be {kinds}, got {value!r}")
    return float(value) if float in allowed and isinstance(value, int) else value


def _check_types(obj: Any, where: str) -> None:
    for f in dataclasses.fields(obj):
        check_type(type(obj), f.name, getattr(obj, f.name), where)


def _name(key: str) -> str:
    """A setting as messages name it: 'lr', 'warmup-steps (--warmup)'."""
    return key.replace("_", "-") + (f" (--{OPTIONS[key]})" if key in OPTIONS else "")


def _at_least(obj: Any, keys: tuple[str, ...], low: int) -> None:
    """Integer settings (None allowed for the optional ones) that must be >= low."""
    for k in keys:
        v = getattr(obj, k)
        if v is not None and v < low:
            raise CharlstmError(f"{_name(k)} must be at least {low}, got {v}")


def _finite(k: str, v: float | None, ok: bool, rule: str) -> None:
    """A float setting (None: not set) that must be finite and satisfy `ok`, described by `rule`."""
    if v is not None and not (math.isfinite(v) and ok):
        raise CharlstmError(f"{_name(k)} must be {rule}, got {v}")


@dataclass
class ModelConfig:
    """Embedding(V, E) -> num_layers x cell(H) -> Linear(H, V)."""

    cell: str = "lstm"
    vocab_size: int = 0  # 0: the dataset's (train() fills it in)
    embed_dim: int = 64
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.0
    # Records (tweets, synthetic tasks): the end-of-record id, read from the zero state, so every
    # record starts from the same state; None for running text (charlstm.model, "Records").
    reset_id: int | None = None

    def validate(self, vocab_from_dataset: bool = False) -> None:
        """Raise CharlstmError on a setting of the wrong type or out of range. vocab_from_dataset:
        accept vocab_size 0 (the dataset's, not known yet)."""
        _check_types(self, "model")
        if self.cell not in CELLS:
            raise CharlstmError(f"unknown cell '{self.cell}'; choose one of {', '.join(CELLS)}")
        _at_least(self, ("embed_dim", "hidden_size", "num_layers"), 1)
        _at_least(self, ("vocab_size",), 0 if vocab_from_dataset else 1)
        if not (math.isfinite(self.dropout) and 0.0 <= self.dropout < 1.0):
            raise CharlstmError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.reset_id is not None and not (0 <= self.reset_id and (self.reset_id < self.vocab_size
                                                                       or (vocab_from_dataset and not self.vocab_size))):
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
    # auto: bf16 autocast on a GPU, and on a CPU where it measures faster (charlstm.precision); a
    # run's config.json stores the precision it chose, so a resume keeps it
    precision: str = "auto"
    compile: bool = False
    max_nan_retries: int = 3

    def validate(self) -> None:
        """Raise CharlstmError on a setting of the wrong type, not finite, or out of range."""
        _check_types(self, "train")
        _at_least(self, ("batch_size", "seq_len", "grad_accum", "eval_every", "log_every", "step_every",
                         "max_steps", "eval_max_chars", "save_every_steps"), 1)
        _at_least(self, ("warmup_steps", "sample_chars", "max_nan_retries"), 0)
        if not (math.isfinite(self.lr) and math.isfinite(self.min_lr) and self.lr > 0 and self.min_lr >= 0):
            raise CharlstmError(f"learning rates must be positive and finite (lr={self.lr}, min-lr={self.min_lr})")
        if self.schedule not in SCHEDULES:
            raise CharlstmError(f"unknown schedule '{self.schedule}'; choose cosine, step or constant")
        _finite("weight_decay", self.weight_decay, self.weight_decay >= 0, "a finite number >= 0")
        _finite("grad_clip", self.grad_clip, self.grad_clip >= 0, "a finite number >= 0 (0: no clipping)")
        _finite("step_gamma", self.step_gamma, 0 < self.step_gamma <= 1, "in (0, 1]")
        _finite("save_every", self.save_every, self.save_every is not None and self.save_every >= 0,
                "a finite number of seconds >= 0 (0: not on the clock)")
        for k in ("max_epochs", "time_budget"):
            v = getattr(self, k)
            _finite(k, v, v is not None and v > 0, "a positive, finite number")
        if not -2**63 <= self.seed < 2**63:  # what torch's generators take
            raise CharlstmError(f"seed must fit in 64 bits (-2**63 to 2**63 - 1), got {self.seed}")
        if self.precision not in PRECISIONS:
            raise CharlstmError(f"unknown precision '{self.precision}'; choose {', '.join(PRECISIONS)}")
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
    """Set `values` on a config, refusing unknown settings and values of the wrong type."""
    names = {f.name for f in dataclasses.fields(obj)}
    for k, v in values.items():
        key = k.replace("-", "_")
        if key not in names:
            raise CharlstmError(f"unknown {where} setting '{k}'; known: {', '.join(sorted(names))}")
        setattr(obj, key, check_type(type(obj), key, v, where))


def build_configs(preset: str | None = None, file_values: dict[str, Any] | None = None,
                  overrides: dict[str, Any] | None = None) -> tuple[ModelConfig, TrainConfig]:
    """Defaults <- preset <- file ({"model": {...}, "train": {...}}) <- overrides (flat, either kind),
    validated (the vocabulary size may still be 0: the dataset's)."""
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
        if key in mnames:
            _update(m, {key: v}, "model")
        else:
            _update(t, {key: v}, "train")
    m.validate(vocab_from_dataset=True)
    t.validate()
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
    if "precision" not in values and values.get("amp") is False:  # written before --precision existed
        values = {**values, "precision": "fp32"}
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
