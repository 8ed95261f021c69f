"""Causes, not only correlations: the change in bits per character when a found unit is knocked out.

Each found unit is forced at every step to 0 (ablation) and to its mean over the text
(mean-ablation, which removes what the unit says without pushing the model off its usual range),
with the explicit cells (charlstm.neurons.ablation.explicit_losses: the clean model and many
ablated copies in one batch, checked against the fused model). For each ablation the bits per
character are measured on the predictions where the feature is active at the character just read
(on, or non-zero; inside the span when the feature has one), where it is not, on all, and on the
feature's key predictions (charlstm.neurons.atlas.selection.key_predictions: the closing quote of a
string, the closing brackets of a depth, the line ends of a line position...).

Owns: `ablation_effects` and its result rows (each group's numbers are
charlstm.neurons.ablation.AblationGroup, as `neurons ablate` reports them).
Does not know: rankings, features or files.
Shapes: T characters; predictions are T - 1 (entry t predicts character t + 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from charlstm.neurons.ablation import AblationGroup, explicit_losses
from charlstm.units import Clamp

LN2 = math.log(2.0)
#: Ablated copies run in one batch (the explicit run keeps [batch, T, H] per layer in memory).
BATCH = 8


@dataclass
class Ablation:
    """One unit forced to `value` ("zero" or "mean"), or several held at their means together
    ("mean, together"; value NaN); effects on the groups "active", "inactive", "all" and "key" (a
    group with no predictions is missing)."""

    unit: str
    mode: str
    value: float
    effects: dict[str, AblationGroup] = field(default_factory=dict)

    def change(self, group: str) -> float:
        e = self.effects.get(group)
        return e.change if e is not None else float("nan")

    def to_json(self) -> dict:
        return {"unit": self.unit, "mode": self.mode, "value": None if self.value != self.value else self.value,
                "effects": {k: e.to_json() for k, e in self.effects.items()}}


@dataclass(frozen=True)
class Job:
    """One ablated copy of the model: the clamps held together (one, or a few units of one kind and
    layer), how it is named in tables, and its mode ("zero", "mean", or "mean, together")."""

    clamps: tuple[Clamp, ...]
    mode: str

    @property
    def unit(self) -> str:
        """"layer0.c:37", or "layer1.h:11+5+26" for units held together."""
        first = self.clamps[0]
        return first.name if len(self.clamps) == 1 else f"{first.key}:" + "+".join(str(c.unit) for c in self.clamps)

    @property
    def value(self) -> float:
        return float(self.clamps[0].value) if len(self.clamps) == 1 else float("nan")


def losses(model, ids: np.ndarray, jobs: Sequence[Job], batch: int = BATCH,
           progress=None) -> tuple[np.ndarray, np.ndarray]:
    """(clean [T - 1], ablated [len(jobs), T - 1]) losses in nats, the jobs run `batch` at a time
    (the first batch also carries the clean run)."""
    clean = None
    out = np.empty((len(jobs), len(ids) - 1))
    todo = list(range(len(jobs)))
    first = True
    while first or todo:
        take = todo[:batch - 1] if first else todo[:batch]
        got = explicit_losses(model, ids, ([None] if first else []) + [jobs[i].clamps for i in take])
        if first:
            clean, got = got[0], got[1:]
            first = False
        out[take] = got
        todo = todo[len(take):]
        if progress is not None:
            progress(len(jobs) - len(todo), len(jobs))
    return clean, out


def ablation_effects(clean: np.ndarray, ablated: np.ndarray, jobs: Sequence[Job],
                     groups: Mapping[str, np.ndarray]) -> list[Ablation]:
    """Ablation rows from the losses of `losses` (ablated: one row per job) against the clean run,
    on each group (name -> bool [T - 1] over predictions)."""
    out = []
    for k, job in enumerate(jobs):
        row = Ablation(job.unit, job.mode, job.value)
        for name, sel in groups.items():
            sel = np.asarray(sel, bool)
            n = int(sel.sum())
            if n:
                row.effects[name] = AblationGroup(name, n, float(clean[sel].mean() / LN2),
                                                  float(ablated[k, sel].mean() / LN2))
        out.append(row)
    return out


def prediction_groups(values: np.ndarray, kind: str, span: np.ndarray | None,
                      key: np.ndarray) -> dict[str, np.ndarray]:
    """The groups an ablation is measured on, bool [T - 1] each: "active" (the feature on or non-zero
    at the character just read, within the span if any), "inactive" (off or zero, within the span),
    "all" and "key"."""
    v = np.asarray(values)[:-1]
    on = v > 0.5 if kind == "binary" else v != 0
    inside = np.ones(len(v), bool) if span is None else np.asarray(span, bool)[:-1]
    return {"active": on & inside, "inactive": ~on & inside, "all": np.ones(len(v), bool),
            "key": np.asarray(key, bool)}
