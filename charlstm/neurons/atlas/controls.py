"""The controls a finding must beat: untrained models (did the model learn it?) and control tasks for
probes (does the probe read the feature, or memorise the characters?).

* Learning control. An untrained LSTM is a reservoir: its random units already follow simple
  running features of the text (a count, the position in a line), so a unit that tracks a feature
  proves little by itself. The same ranking runs on randomly initialised models of the same shape
  (`untrained_model`: the model's own initialisation with another seed, as a probing baseline in
  that literature); a finding counts as *learned* only when the trained model clearly beats the
  best of them: its unit leaves at most half the error of the best untrained unit on the
  confirmation part (`learned`: 1 - score <= (1 - best untrained score) / 2, scores being |r| or
  max(AUROC, 1 - AUROC)).
* Probe selectivity (Hewitt & Liang 2019). An L1 probe (charlstm.neurons.probe) reads the feature
  from all units; the same probe is fitted to a *control task*: each character type gets a random
  label drawn from the feature's own distribution, so it can only be learned by memorising which
  character was read. Selectivity = the probe's held-out accuracy (R^2 for a continuous feature) on
  the feature minus on the control task; for a binary feature also the same difference of held-out
  AUROCs (a rare feature's accuracy is mostly the majority class).

Owns: `untrained_model`, `learned`, `control_task`, `probe_selectivity`. Does not know: files or
the command line. Shapes: T characters, U units.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from charlstm.model import CharRNN
from charlstm.neurons.probe import l1_probe

#: A trained unit must leave at most this fraction of the best untrained unit's error.
ERROR_RATIO = 0.5


def untrained_model(model: CharRNN, seed: int) -> CharRNN:
    """A randomly initialised model of the same configuration (cell, sizes, records rule), from
    `seed`, on the same device, in eval mode. The caller's torch RNG state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = CharRNN(model.cfg)
    return fresh.to(model.head.weight.device).eval()


def learned(score: float, untrained_best: float, ratio: float = ERROR_RATIO) -> bool:
    """Whether a trained unit's score clearly beats the best untrained one: it leaves at most `ratio`
    of the untrained error (1 - score), and is higher. Scores are |r| or max(AUROC, 1 - AUROC),
    or a directed score on held-out text (which can be lower)."""
    return bool(score > untrained_best and 1.0 - score <= ratio * (1.0 - untrained_best))


def control_task(ids: np.ndarray, values: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """Hewitt & Liang's control task for characters: float32 [T], one random label per character
    type (the id read), drawn from the feature's own values (binary: 1 with the feature's rate)."""
    ids = np.asarray(ids, np.int64)
    v = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    size = int(ids.max()) + 1 if len(ids) else 1
    if kind == "binary":
        labels = (rng.random(size) < float((v > 0.5).mean())).astype(np.float32)
        if len(np.unique(labels[np.unique(ids)])) < 2:  # every type drew the same label: flip the most common
            common = np.bincount(ids, minlength=size).argmax()
            labels[common] = 1.0 - labels[common]
    else:
        labels = rng.choice(v, size=size).astype(np.float32)
    return labels[ids]


@dataclass
class Selectivity:
    """A probe on the feature and on its control task. metric: "accuracy" or "r2"; feature /
    control: that metric on the confirmation part; units: the feature probe's units."""

    metric: str
    feature: float
    control: float
    baseline: float | None
    units: list[tuple[str, float]]
    #: binary features: the probes' held-out AUROC on the feature and on the control task (accuracy
    #: says little about a rare feature, where the majority class is already right 99% of the time)
    auroc: tuple[float, float] | None = None

    @property
    def selectivity(self) -> float:
        return self.feature - self.control

    def to_json(self) -> dict:
        out = {"metric": self.metric, "feature": self.feature, "control": self.control,
               "selectivity": self.selectivity, "baseline": self.baseline,
               "units": [{"unit": u, "weight": w} for u, w in self.units]}
        if self.auroc is not None:
            out["auroc"] = {"feature": self.auroc[0], "control": self.auroc[1],
                            "selectivity": self.auroc[0] - self.auroc[1]}
        return out


def probe_selectivity(traces: Mapping[str, np.ndarray], values: np.ndarray, kind: str, ids: np.ndarray,
                      select: np.ndarray, confirm: np.ndarray, max_units: int = 5, seed: int = 0) -> Selectivity:
    """L1 probes of the feature and of its control task, trained on the selection rows and tested on
    the confirmation rows (bool [T] each; the probe sees the selection rows first, then the others,
    as its contiguous held-out tail)."""
    order = np.concatenate([np.flatnonzero(select), np.flatnonzero(confirm)])
    holdout = float(confirm.sum()) / len(order)
    arranged = {k: np.asarray(a)[order] for k, a in traces.items()}
    control = control_task(ids, values, kind, seed)
    metric = "accuracy" if kind == "binary" else "r2"
    res = [l1_probe(arranged, v[order], kind=kind, max_units=max_units, holdout=holdout) for v in (values, control)]
    base = res[0].heldout.get("baseline")
    aucs = [r.heldout.get("auroc") for r in res]
    return Selectivity(metric, float(res[0].heldout[metric]), float(res[1].heldout[metric]),
                       None if base is None else float(base), [(u.name, u.weight) for u in res[0].units],
                       (float(aucs[0]), float(aucs[1])) if None not in aucs else None)
