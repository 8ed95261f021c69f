"""config.py: every setting checked once (type, finite, in range) for the CLI, TOML and Python alike;
presets, files and options merged in order."""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import pytest

from charlstm.config import PRESETS, ModelConfig, TrainConfig, build_configs, model_config
from charlstm.errors import CharlstmError
from test_train_helpers import make_dataset

NAN, INF = math.nan, math.inf

BAD_TRAIN = [
    ("batch_size", 0, "batch-size must be at least 1, got 0"),
    ("seq_len", -1, "seq-len must be at least 1"),
    ("lr", NAN, "learning rates must be positive and finite (lr=nan"),
    ("lr", 0.0, "learning rates must be positive"),
    ("lr", INF, "learning rates must be positive and finite (lr=inf"),
    ("min_lr", NAN, "min-lr=nan"),
    ("min_lr", -1e-3, "min-lr=-0.001"),
    ("weight_decay", -1.0, "weight-decay must be a finite number >= 0, got -1.0"),
    ("weight_decay", INF, "weight-decay must be a finite number >= 0, got inf"),
    ("warmup_steps", -1, "warmup-steps (--warmup) must be at least 0, got -1"),
    ("schedule", "linear", "unknown schedule 'linear'"),
    ("step_gamma", NAN, "step-gamma must be in (0, 1], got nan"),
    ("step_gamma", 0.0, "step-gamma must be in (0, 1], got 0.0"),
    ("step_gamma", 1.5, "step-gamma must be in (0, 1], got 1.5"),
    ("step_every", 0, "step-every must be at least 1, got 0"),
    ("grad_clip", NAN, "grad-clip must be a finite number >= 0"),
    ("grad_clip", -0.5, "grad-clip must be a finite number >= 0"),
    ("grad_accum", 0, "grad-accum must be at least 1"),
    ("max_steps", 0, "max-steps must be at least 1, got 0"),
    ("max_epochs", NAN, "max-epochs must be a positive, finite number, got nan"),
    ("max_epochs", -2.0, "max-epochs must be a positive, finite number, got -2.0"),
    ("time_budget", INF, "time-budget must be a positive, finite number, got inf"),
    ("time_budget", NAN, "time-budget must be a positive, finite number, got nan"),
    ("eval_every", 0, "eval-every must be at least 1"),
    ("eval_max_chars", -5, "eval-max-chars (--eval-chars) must be at least 1, got -5"),
    ("log_every", 0, "log-every must be at least 1"),
    ("sample_chars", -1, "sample-chars must be at least 0, got -1"),
    ("seed", 2**64, "seed must fit in 64 bits"),
    ("device", "tpu", "unknown device 'tpu'"),
    ("max_nan_retries", -1, "max-nan-retries must be at least 0, got -1"),
    ("save_every", -1.0, "save-every must be a finite number of seconds >= 0 (0: not on the clock), got -1.0"),
    ("save_every", NAN, "save-every must be a finite number of seconds >= 0"),
    ("save_every_steps", 0, "save-every-steps must be at least 1, got 0"),
    ("lr", "fast", "train setting 'lr' must be a number, got 'fast'"),
    ("batch_size", 2.5, "train setting 'batch_size' must be an integer, got 2.5"),
    ("precision", "fp16", "unknown precision 'fp16'; choose auto, fp32, bf16"),
    ("precision", True, "train setting 'precision' must be a string, got True"),
    ("compile", 1, "train setting 'compile' must be true or false, got 1"),
    ("seq_len", True, "train setting 'seq_len' must be an integer, got True"),
]

BAD_MODEL = [
    ("cell", "transformer", "unknown cell 'transformer'"),
    ("vocab_size", 0, "vocab-size must be at least 1, got 0"),
    ("embed_dim", 0, "embed-dim (--embed) must be at least 1"),
    ("hidden_size", -4, "hidden-size (--hidden) must be at least 1, got -4"),
    ("num_layers", 0, "num-layers (--layers) must be at least 1"),
    ("dropout", 1.0, "dropout must be in [0, 1), got 1.0"),
    ("dropout", NAN, "dropout must be in [0, 1), got nan"),
    ("dropout", -0.1, "dropout must be in [0, 1)"),
    ("hidden_size", "big", "model setting 'hidden_size' must be an integer, got 'big'"),
    ("cell", 3, "model setting 'cell' must be a string, got 3"),
    ("reset_id", -1, "reset-id -1 is not an id of the vocabulary"),
    ("reset_id", "eot", "model setting 'reset_id' must be an integer, got 'eot'"),
]


def test_every_field_is_checked_by_a_rule():
    """A new setting must come with a rule here (and in validate)."""
    assert {f.name for f in dataclasses.fields(TrainConfig)} - {k for k, _, _ in BAD_TRAIN} == set()
    assert {f.name for f in dataclasses.fields(ModelConfig)} - {k for k, _, _ in BAD_MODEL} == set()


@pytest.mark.parametrize("key,value,fragment", BAD_TRAIN)
def test_train_settings_are_checked_in_python_and_in_files(key, value, fragment):
    with pytest.raises(CharlstmError) as e:
        dataclasses.replace(TrainConfig(), **{key: value}).validate()
    assert fragment in str(e.value)
    with pytest.raises(CharlstmError) as e:
        build_configs(None, {"train": {key: value}})
    assert fragment in str(e.value)


@pytest.mark.parametrize("key,value,fragment", BAD_MODEL)
def test_model_settings_are_checked_in_python_and_in_files(key, value, fragment):
    with pytest.raises(CharlstmError) as e:
        dataclasses.replace(ModelConfig(vocab_size=10), **{key: value}).validate()
    assert fragment in str(e.value)
    if key != "vocab_size":  # 0 means "the dataset's" until train() knows it
        with pytest.raises(CharlstmError) as e:
            build_configs(None, {"model": {key: value}})
        assert fragment in str(e.value)


def test_defaults_presets_and_accepted_values():
    for name in PRESETS:
        m, t = build_configs(name)
        assert m.vocab_size == 0
    m, t = build_configs(None, {"train": {"lr": 1, "max_epochs": 2, "max_steps": None}}, {"grad_clip": 0, "seed": -3})
    assert t.lr == 1.0 and isinstance(t.lr, float) and isinstance(t.max_epochs, float)  # an integer is a number
    assert t.grad_clip == 0.0 and t.seed == -3 and t.max_steps is None
    assert model_config({"hidden_size": 8, "vocab_size": 5}).hidden_size == 8


def test_train_refuses_a_bad_setting_before_writing_anything(tmp_path):
    from charlstm.train import train

    make_dataset()
    run = tmp_path / "runs" / "x"
    for m, t in ((ModelConfig(), TrainConfig(lr=NAN)), (ModelConfig(dropout=NAN), TrainConfig()),
                 (ModelConfig(), TrainConfig(max_epochs=NAN)), (ModelConfig(hidden_size="big"), TrainConfig())):
        with pytest.raises(CharlstmError):
            train("toy", run, m, t)
    assert not (tmp_path / "runs").exists()
    assert not Path(os.environ["CHARLSTM_CHECKPOINTS"]).exists()
