"""The learning-rate schedule: linear warm-up, then cosine / step / constant decay.

`progress` in [0, 1] is how far training is towards its end: steps / max steps, epochs / max epochs,
or elapsed / time budget, whichever is furthest (so with --time-budget the cosine reaches min_lr
exactly when the budget runs out). Warm-up counts optimizer steps. `scale` is the NaN back-off
factor (halved after each rollback), multiplying the whole schedule.
"""
from __future__ import annotations

import math

from charlstm.config import TrainConfig


def learning_rate(cfg: TrainConfig, step: int, progress: float, scale: float = 1.0) -> float:
    """Learning rate for optimizer step `step` (0-based) at training progress `progress`."""
    p = min(max(progress, 0.0), 1.0)
    if cfg.schedule == "cosine":
        lr = cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))
    elif cfg.schedule == "step":
        lr = max(cfg.lr * cfg.step_gamma ** (step // max(cfg.step_every, 1)), cfg.min_lr)
    else:
        lr = cfg.lr
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        lr *= (step + 1) / cfg.warmup_steps
    return lr * scale


def progress(step: int, total_steps: int | None, elapsed: float, time_budget: float | None) -> float:
    """How far training is, in [0, 1]: the furthest of steps/total_steps and elapsed/time_budget."""
    p = 0.0
    if total_steps:
        p = max(p, step / total_steps)
    if time_budget:
        p = max(p, elapsed / time_budget)
    return min(p, 1.0)
