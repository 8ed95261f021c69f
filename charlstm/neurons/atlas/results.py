"""What an atlas found: plain data objects, and their JSON (every number the report shows).

Owns: UnitResult, FeatureResult, Atlas and `Atlas.to_json` (docs/formats.md describes the file).
Does not know: how the numbers were computed (charlstm.neurons.atlas.build) or drawn (charlstm.viz).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from charlstm.neurons.atlas.causes import Ablation
from charlstm.neurons.atlas.controls import Selectivity
from charlstm.neurons.atlas.breakdown import Group

FORMAT = "charlstm-atlas"
#: p-value a best unit must reach against its chance controls (and a held-out unit against its own).
P_MAX = 0.01
#: Fraction of its distance from chance a unit must keep on the confirmation part to hold up.
KEEP = 0.75


def _clean(obj: Any) -> Any:
    """obj with every NaN or infinity replaced by None (JSON has neither) and numpy numbers made plain."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def skill(score: float, kind: str) -> float:
    """A score's distance from chance, 0 (chance) .. 1 (perfect): |r|, or 2 (AUROC - 0.5)."""
    return score if kind == "continuous" else 2.0 * (score - 0.5)


@dataclass
class UnitResult:
    """One ranked unit of a feature. raw / score: r or AUROC, and |r| or max(AUROC, 1 - AUROC), on
    the selection part; direction: +1 if the unit rises with the feature; heldout_raw / heldout: the
    same on the confirmation part, heldout in the unit's direction (below chance if it flipped);
    heldout_p: that score against its own shifted controls; holds_up: see `FeatureResult`."""

    unit: str
    raw: float
    score: float
    direction: int
    heldout_raw: float
    heldout: float
    heldout_p: float
    holds_up: bool

    def to_json(self) -> dict:
        return {"unit": self.unit, "raw": self.raw, "score": self.score, "direction": self.direction,
                "heldout_raw": self.heldout_raw, "heldout": self.heldout, "heldout_p": self.heldout_p,
                "holds_up": self.holds_up}


@dataclass
class FeatureResult:
    """Everything found for one feature.

    kind: "binary" (AUROC) or "continuous" (Pearson r); span: the feature restricting the characters
    scored, if any; rows: characters scored in the selection and confirmation parts, and on each;
    units: the best units on the selection part, best first, each scored on the confirmation part
    (holds up: keeps KEEP of its distance from chance there and beats its own controls, p <= P_MAX);
    chance: the best unit against the best units of S shifted copies of the feature (p, the
    fraction of controls beaten, quantiles); untrained: per untrained model its best unit on the
    selection part and that unit's confirmation score; learned: the trained best unit's
    confirmation score clearly beats every untrained one (controls.learned); probe: selectivity of
    an L1 probe; key: which predictions the feature matters most for; ablations: the top units
    forced to 0 and to their mean; gates: the best state unit's own gates (means where the feature
    moves and holds, and per character read for small vocabularies); dictionary: per dictionary
    ranked (charlstm.dictionary) its best feature, as a UnitResult's JSON (unit `dict/NAME:12`) plus
    `dictionary`, `layer`, `kind`, `size`, `k`, `chance_p` (against shifted copies, like the best
    unit) and `found` (holds up and chance_p <= P_MAX)."""

    name: str
    kind: str
    why: str
    description: str
    span: str | None
    rows: dict[str, int]
    units: list[UnitResult]
    chance: dict[str, Any]
    untrained: list[dict[str, Any]]
    learned: bool
    probe: Selectivity | None
    key: str
    ablations: list[Ablation] = field(default_factory=list)
    gates: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    dictionary: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best(self) -> UnitResult:
        return self.units[0]

    @property
    def p(self) -> float:
        return float(self.chance["p"])

    @property
    def untrained_best(self) -> float:
        return max((u["heldout"] for u in self.untrained), default=float("nan"))

    @property
    def found(self) -> bool:
        """Held up, beat chance and was learned (untrained controls run)."""
        return self.best.holds_up and self.p <= P_MAX and self.learned

    def verdict(self) -> str:
        """A few words: "found", or what failed."""
        if self.found:
            return "found"
        why = []
        if not self.best.holds_up:
            why.append("does not hold up")
        if self.p > P_MAX:
            why.append(f"chance (p {self.p:.2g})")
        if not self.learned:
            why.append("not learned" if self.untrained else "learning not checked")
        return ", ".join(why)

    def ablation(self, unit: str, mode: str) -> Ablation | None:
        return next((a for a in self.ablations if a.unit == unit and a.mode == mode), None)

    def to_json(self) -> dict:
        return {"feature": self.name, "kind": self.kind, "why": self.why, "description": self.description,
                "span": self.span, "rows": self.rows, "units": [u.to_json() for u in self.units],
                "chance": self.chance, "untrained": self.untrained, "learned": self.learned, "found": self.found,
                "verdict": self.verdict(), "probe": self.probe.to_json() if self.probe else None,
                "key_predictions": self.key, "ablations": [a.to_json() for a in self.ablations],
                "gates": self.gates, "dictionary": self.dictionary, "notes": self.notes}


@dataclass
class Atlas:
    """An atlas of one model on one text. model: cell, layers, hidden, parameters; source: a few
    words ("split val of linux"); corpus: (kind, task) of the run's data; settings: the options;
    features: one FeatureResult each; skipped: (feature, why) for those not scored; saturation:
    per layer and gate the mean fractions and unit counts of gate saturation (plus per unit);
    errors: the n-gram comparison (None when no training text was available: see notes);
    seconds: per stage."""

    run: str
    model: dict[str, Any]
    source: str
    characters: int
    truncated: bool
    corpus: tuple[str, str | None]
    settings: dict[str, Any]
    features: list[FeatureResult]
    skipped: list[tuple[str, str]]
    saturation: dict[str, Any]
    errors: dict[str, Any] | None
    seconds: dict[str, float]
    notes: list[str] = field(default_factory=list)
    #: what pictures and pages draw (not in the JSON): the Trace, the symbols [T] and per feature its
    #: values [T] and span (bool [T] or None)
    trace: Any = field(default=None, repr=False)
    symbols: list[str] = field(default_factory=list, repr=False)
    values: dict[str, tuple[np.ndarray, np.ndarray | None]] = field(default_factory=dict, repr=False)
    groups: list[Group] = field(default_factory=list, repr=False)

    def feature(self, name: str) -> FeatureResult:
        return next(f for f in self.features if f.name == name)

    def to_json(self) -> dict:
        """Every number as plain JSON (NaN and infinity, which JSON lacks, as null)."""
        return _clean({"format": FORMAT, "version": 1, "run": self.run, "model": self.model, "source": self.source,
                "characters": self.characters, "truncated": self.truncated,
                "corpus": {"kind": self.corpus[0], "task": self.corpus[1]}, "settings": self.settings,
                "features": [f.to_json() for f in self.features],
                "skipped": [{"feature": n, "why": w} for n, w in self.skipped],
                "gate_saturation": self.saturation, "errors": self.errors, "seconds": self.seconds,
                "notes": self.notes})
