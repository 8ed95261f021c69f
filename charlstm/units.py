"""Naming the parts of a model: units, the unit-spec syntax, clamps, and which kinds are gates.

Owns: the spec syntax ``layer1.c:37`` (a unit) and ``layer1.c:37=1.5`` (a unit held at a value), the
one `Unit` and the one `Clamp` (used alike for steering while sampling and for ablation), the trace
key ``layer1.c``, checking a unit against a model's shape, the kinds that are sigmoid gates, and gate
saturation (Karpathy, Johnson & Fei-Fei 2015). Does not know: models, traces or files; a model's
shape arrives as (cell, num_layers, hidden_size), and the kinds each cell exposes come from
`charlstm.cells.KINDS`.

Dictionary features (charlstm.dictionary) share the syntax: ``dict:123`` is feature 123 of the run's
one dictionary, ``dict/NAME:123`` of the dictionary called NAME (`DictUnit`), and ``dict:123=2.0``
holds that feature's activation at 2.0 (`DictClamp`). Turning those into something that acts on a
model needs the dictionary's weights, which only charlstm.dictionary reads: it resolves them into
objects of the `StateEdit` protocol, which every place that takes a clamp accepts.

Layers count from 0. Kinds: LSTM/peephole h c i f g o; GRU h r z n; RNN h.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Protocol, Union

import numpy as np

from charlstm.cells import KINDS
from charlstm.errors import CharlstmError

#: Kinds whose values are sigmoids in 0..1: LSTM input, forget and output gates; GRU reset and update.
GATE_KINDS = frozenset({"i", "f", "o", "r", "z"})
#: The gates whose saturation each cell reports (g and n are tanh candidates, not gates).
SATURATION_GATES: dict[str, tuple[str, ...]] = {"lstm": ("i", "f", "o"), "peephole": ("i", "f", "o"),
                                                "gru": ("r", "z"), "rnn": ()}
SATURATION_LOW, SATURATION_HIGH = 0.1, 0.9

_KEY = re.compile(r"^\s*layer(\d+)\.([a-z])\s*$")
_SPEC = re.compile(r"^\s*layer(\d+)\.([a-z])\s*:\s*(\d+)\s*(?:=\s*(\S+)\s*)?$")
_DICT_KEY = re.compile(r"^\s*dict(?:/([\w][\w.+-]*))?\s*$")
_DICT_SPEC = re.compile(r"^\s*dict(?:/([\w][\w.+-]*))?\s*:\s*(\d+)\s*(?:=\s*(\S+)\s*)?$")
_SYNTAX = "write layer, kind and unit like layer1.c:37 (or a dictionary feature like dict:12 or dict/NAME:12)"
#: The kinds a dictionary can be trained on and a `StateEdit` can act on: the states, not the gates.
STATE_KINDS = ("h", "c")


def key(layer: int, kind: str) -> str:
    """The trace array name of one layer's kind: key(1, "c") == "layer1.c"."""
    return f"layer{layer}.{kind}"


def dict_key(dictionary: str | None) -> str:
    """The key of a dictionary's features: "dict" (the run's one dictionary) or "dict/NAME"."""
    return "dict" if dictionary is None else f"dict/{dictionary}"


def parse_dict_key(name: str) -> str | None | bool:
    """"dict" -> None, "dict/NAME" -> "NAME"; False when `name` is not a dictionary key."""
    m = _DICT_KEY.match(str(name))
    return False if not m else m.group(1)


def is_dict_key(name: str) -> bool:
    """Whether a key ("dict", "dict/NAME") or spec ("dict:3") names dictionary features."""
    return parse_dict_key(str(name).split(":")[0]) is not False


def parse_key(name: str) -> tuple[int, str]:
    """"layer1.c" -> (1, "c"); raises CharlstmError for anything else."""
    m = _KEY.match(str(name))
    if not m:
        raise CharlstmError(f"cannot read '{name}'; write a layer and a kind like layer1.c")
    return int(m.group(1)), m.group(2)


@dataclass(frozen=True)
class Unit:
    """One unit of one kind in one layer: layer1.c:37 is Unit(1, "c", 37)."""

    layer: int
    kind: str
    unit: int

    @property
    def key(self) -> str:
        return key(self.layer, self.kind)

    @property
    def name(self) -> str:
        return f"{self.key}:{self.unit}"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Clamp:
    """Hold a unit at `value` at every step: steering while sampling, or ablation (value 0, a mean)."""

    layer: int
    kind: str
    unit: int
    value: float

    @property
    def key(self) -> str:
        return key(self.layer, self.kind)

    @property
    def name(self) -> str:
        """The unit held, without the value: "layer1.c:37"."""
        return f"{self.key}:{self.unit}"

    def __str__(self) -> str:
        return f"{self.name}={self.value:g}"


@dataclass(frozen=True)
class DictUnit:
    """Feature `feature` of a dictionary of the run (charlstm.dictionary): dict:12 is DictUnit(None,
    12), the run's only dictionary; dict/NAME:12 is DictUnit("NAME", 12)."""

    dictionary: str | None
    feature: int

    @property
    def key(self) -> str:
        return dict_key(self.dictionary)

    @property
    def name(self) -> str:
        return f"{self.key}:{self.feature}"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class DictClamp:
    """Hold a dictionary feature's activation at `value` at every step (dict:12=2.0): the state is
    moved along the feature's decoder direction by (value - its current activation); value 0
    removes the feature (charlstm.dictionary.steer says exactly how)."""

    dictionary: str | None
    feature: int
    value: float

    @property
    def key(self) -> str:
        return dict_key(self.dictionary)

    @property
    def name(self) -> str:
        return f"{self.key}:{self.feature}"

    def __str__(self) -> str:
        return f"{self.name}={self.value:g}"


class StateEdit(Protocol):
    """Something done to one layer's state kind (h or c) at every step, after it is computed and
    before it is used: a dictionary feature held at a value, or a dictionary's reconstruction put in
    place of the state. Made by charlstm.dictionary; the sampler's Stepper applies it (so an edited c
    feeds h, the next step and the layers above). apply(t [N, H]) edits t in place."""

    layer: int
    kind: str
    size: int

    def apply(self, t: Any) -> None: ...


def _match(spec: str, what: str) -> re.Match:
    m = _SPEC.match(spec) if isinstance(spec, str) else None
    if not m:
        how = _SYNTAX if what == "unit" else "write layer, kind, unit and value like layer1.c:37=1.0 (or dict:12=2.0)"
        raise CharlstmError(f"cannot read {what} '{spec}'; {how}")
    return m


def _value(spec: str, raw: str | None, default: float | None, example: str) -> float:
    if raw is None:
        if default is None:
            raise CharlstmError(f"missing value in clamp '{spec}'; write layer, kind, unit and value like {example}")
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        raise CharlstmError(f"cannot read the value in clamp '{spec}'; write a number like {example}") from None
    if not math.isfinite(value):
        raise CharlstmError(f"clamp '{spec}' needs a finite value")
    return value


def parse_unit(spec: str) -> Unit | DictUnit:
    """"layer1.c:37" -> Unit(1, "c", 37); "dict:12" / "dict/NAME:12" -> DictUnit. A value (=1.0) is
    refused: that is a clamp."""
    d = _DICT_SPEC.match(spec) if isinstance(spec, str) else None
    if d:
        if d.group(3) is not None:
            raise CharlstmError(f"unexpected value in '{spec}': give a feature as dict:12 (values like =1.0 are for clamps)")
        return DictUnit(d.group(1), int(d.group(2)))
    m = _match(spec, "unit")
    if m.group(4) is not None:
        raise CharlstmError(f"unexpected value in '{spec}': give a unit as layer1.c:37 (values like =1.0 are for clamps)")
    return Unit(int(m.group(1)), m.group(2), int(m.group(3)))


def parse_clamp(spec: str, default: float | None = None) -> Clamp | DictClamp:
    """"layer1.c:37=1.0" -> Clamp(1, "c", 37, 1.0); "dict:12=2" / "dict/NAME:12=2" -> DictClamp.
    Without "=value" the `default` is used (0.0 for ablation), or, when None, it is an error. The
    value must be a finite number."""
    d = _DICT_SPEC.match(spec) if isinstance(spec, str) else None
    if d:
        return DictClamp(d.group(1), int(d.group(2)), _value(spec, d.group(3), default, "dict:12=2.0"))
    m = _match(spec, "clamp")
    return Clamp(int(m.group(1)), m.group(2), int(m.group(3)), _value(spec, m.group(4), default, "layer1.c:37=1.0"))


def no_kind(cell: str, kind: str) -> str:
    """The one wording for a kind a cell does not have."""
    return f"a {cell} cell has no kind '{kind}'; choose one of {', '.join(KINDS[cell])}"


def is_edit(c: Any) -> bool:
    """Whether a clamp is a `StateEdit` (made by charlstm.dictionary) rather than a unit's Clamp."""
    return not isinstance(c, (Clamp, Unit, DictUnit, DictClamp)) and callable(getattr(c, "apply", None))


def check_unit(u: Unit | Clamp | StateEdit, cell: str, num_layers: int, hidden_size: int) -> None:
    """Raise CharlstmError unless u's layer, kind and unit exist in a model of this shape (for a
    StateEdit: its layer, a state kind of the cell, and its size equal to the layers' width). An
    unresolved dictionary feature (DictUnit, DictClamp) is refused: it needs the run's dictionary."""
    what = f"'{u}'"
    if isinstance(u, (DictUnit, DictClamp)):
        raise CharlstmError(f"{what} names a dictionary feature; it must be read with the run's dictionary "
                            "(charlstm.dictionary.resolve) before it can act on a model")
    if not 0 <= u.layer < num_layers:
        raise CharlstmError(f"{what}: layer {u.layer} does not exist; the model has layers 0..{num_layers - 1}")
    if u.kind not in KINDS[cell]:
        raise CharlstmError(f"{what}: {no_kind(cell, u.kind)}")
    if is_edit(u):
        if u.kind not in STATE_KINDS:
            raise CharlstmError(f"{what}: only the states ({', '.join(STATE_KINDS)}) can be edited, not '{u.kind}'")
        if u.size != hidden_size:
            raise CharlstmError(f"{what} acts on {u.size} units but the model's layers have {hidden_size}")
        return
    if not 0 <= u.unit < hidden_size:
        raise CharlstmError(f"{what}: unit {u.unit} does not exist; layers have units 0..{hidden_size - 1}")


ClampSpec = Union[str, Clamp, DictClamp, Iterable[Union[str, Clamp, DictClamp]], Mapping[str, float], None]


def clamps(spec: ClampSpec, cell: str, num_layers: int, hidden_size: int,
           resolve: Callable[[DictClamp], Any] | None = None) -> tuple[Any, ...]:
    """Clamps given as a spec string, a Clamp, a list of those, or {"layer1.c:37": 1.0}, each
    checked against the model's shape. Dictionary clamps (dict:12=2.0) are turned into StateEdits
    by `resolve` (charlstm.dictionary; without it they are an error)."""
    if spec is None:
        return ()
    if isinstance(spec, (str, Clamp, DictClamp)) or is_edit(spec):
        spec = [spec]
    elif isinstance(spec, Mapping):
        spec = [f"{k}={v}" for k, v in spec.items()]
    out = []
    for c in spec:
        if isinstance(c, str):
            c = parse_clamp(c)
        if isinstance(c, DictClamp):
            if resolve is None:
                raise CharlstmError(f"'{c}' names a dictionary feature; this caller cannot read dictionaries")
            c = resolve(c)
        check_unit(c, cell, num_layers, hidden_size)
        out.append(c)
    return tuple(out)


def kind_of(name: str) -> str:
    """The kind in a trace key or unit spec: "layer1.c:37" -> "c", "layer0.i" -> "i", "f" -> "f";
    "dict" for dictionary features ("dict:3", "dict/NAME")."""
    head = name.split(":")[0]
    if is_dict_key(head):
        return "dict"
    return head.rsplit(".", 1)[-1]


# ----------------------------------------------------------------------------- gates
def is_gate(name: str) -> bool:
    """Whether a kind, trace key or unit spec names a sigmoid gate ("f", "layer0.f", "layer0.f:3")."""
    return kind_of(name) in GATE_KINDS


def saturation_counts(values: np.ndarray, low: float = SATURATION_LOW,
                      high: float = SATURATION_HIGH) -> tuple[np.ndarray, np.ndarray]:
    """values [T, H] of one gate -> (left [H], right [H]) int64: how many steps each unit is below
    `low` (left-saturated, closed) and above `high` (right-saturated, open). The one rule of gate
    saturation; fractions divide by T (`gate_saturation`), a streaming sum adds chunks."""
    v = np.asarray(values)
    if v.ndim != 2:
        raise CharlstmError(f"gate values must be 2-D [characters, units], got shape {v.shape}")
    if not low <= high:
        raise CharlstmError(f"low ({low}) must not exceed high ({high})")
    return (v < low).sum(0, dtype=np.int64), (v > high).sum(0, dtype=np.int64)


def gate_saturation(values: np.ndarray, low: float = SATURATION_LOW,
                    high: float = SATURATION_HIGH) -> tuple[np.ndarray, np.ndarray]:
    """values [T, H] of one gate -> (left [H], right [H]) float64: the fraction of steps each unit is
    left- and right-saturated (saturation_counts / T; zeros for an empty text)."""
    left, right = saturation_counts(values, low, high)
    n = max(len(values), 1)
    return left / n, right / n


def saturated_fraction(values: np.ndarray, kind: str) -> np.ndarray:
    """values [T, H] of one kind -> [H], the fraction of steps each unit sits at an end of its range:
    gates outside [0.1, 0.9] (left + right saturation); tanh-range kinds (h, g, n) beyond |0.9|; the
    cell state c through tanh (what it exposes to h)."""
    v = np.asarray(values, dtype=np.float32)
    if kind in GATE_KINDS:
        left, right = gate_saturation(v)
        return left + right
    if kind == "c":
        v = np.tanh(v)
    return (np.abs(v) > SATURATION_HIGH).mean(0, dtype=np.float64)
