"""A trace and where its pieces go: the Trace object, the sink protocol, and the in-memory sinks.

A trace of T characters holds, per traced layer l and kind k, an array ``arrays["layer{l}.{k}"]``
shaped [T, H] (row t = the value after reading character t), plus per character the id, the
probability the model gave the actual next character and its top-5 predictions. Kinds come from
``charlstm.cells.KINDS``: LSTM and peephole h, c, i, f, g, o; GRU h, r, z, n; RNN h.

A Trace also turns itself into a NumPy array or a pandas DataFrame (`to_numpy`, `to_pandas`) and,
in Jupyter, into the trace viewer (`_repr_html_`, drawn by charlstm.viz.notebook).

Owns: Trace, TraceInfo, the Sink protocol, MemorySink (a Trace in memory), ColumnSink (one unit, or
one column computed from a layer's kind, like a dictionary feature's activation), CodesSink (the
sparse code of an encoder, like a dictionary: charlstm.dictionary), and which layers and kinds a
request means (`resolve_layers`, `resolve_kinds`). Does not know:
models (charlstm.trace.record computes the values) or files (charlstm.trace.files writes them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Protocol, Sequence

import numpy as np

from charlstm import cells
from charlstm.errors import CharlstmError
from charlstm.units import Unit, key, no_kind, parse_key
from charlstm.vocab import Vocab

TOP_K = 5


@dataclass
class Trace:
    """A trace of T characters (all arrays numpy, row t = after reading character t).

    arrays: "layer{l}.{kind}" -> [T, H] (float32 or float16), for the traced layers and kinds.
    ids: [T] int64, the ids read. next_prob: [T] float32, the probability the model gave the
    actual next character (NaN for the last). top_ids / top_probs: [T, 5] int64 / float32, the
    five most likely next characters (padded with -1 / 0 when the vocabulary is smaller).
    text / chars: the text the model read (decoded ids) and one str per id (vocab.symbol).
    """

    arrays: dict[str, np.ndarray]
    ids: np.ndarray
    next_prob: np.ndarray
    top_ids: np.ndarray
    top_probs: np.ndarray
    vocab: Vocab
    cell: str
    hidden_size: int
    num_layers: int
    layers: list[int]
    kinds: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def chars(self) -> list[str]:
        sym = [self.vocab.symbol(i) for i in range(self.vocab.size)]
        return [sym[i] for i in self.ids.tolist()]

    @cached_property
    def text(self) -> str:
        return self.vocab.decode(self.ids)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def unit(self, name: str, unit: int) -> np.ndarray:
        """One unit's values over the text, [T] float32."""
        return np.asarray(self.arrays[name][:, unit], dtype=np.float32)

    def head(self, n: int) -> "Trace":
        """The first n characters (views, no copy)."""
        return Trace({k: v[:n] for k, v in self.arrays.items()}, self.ids[:n], self.next_prob[:n],
                     self.top_ids[:n], self.top_probs[:n], self.vocab, self.cell, self.hidden_size,
                     self.num_layers, list(self.layers), list(self.kinds), dict(self.meta))

    def unit_values(self, u: Unit) -> np.ndarray:
        """The values of charlstm.units.Unit u over the text, [T] float32."""
        return self.unit(u.key, u.unit)

    # -------------------------------------------------------------- notebooks and dataframes
    def _select(self, layers: Iterable[int] | int | str | None, kinds: Iterable[str] | str | None) -> list[str]:
        """The trace keys of the chosen layers and kinds (default: all traced), layer by layer."""
        if isinstance(layers, int):
            layers = [layers]
        ls = self.layers if layers is None else resolve_layers(self.num_layers, layers)
        ks = self.kinds if kinds is None else resolve_kinds(self.cell, kinds)
        missing = [key(l, k) for l in ls for k in ks if key(l, k) not in self.arrays]
        if missing:
            raise CharlstmError(f"{missing[0]} was not traced; this trace holds {', '.join(self.arrays)}")
        return [key(l, k) for l in ls for k in ks]

    def to_numpy(self, layers: Iterable[int] | int | str | None = None,
                 kinds: Iterable[str] | str | None = None) -> np.ndarray:
        """The values as one float32 array [T, n, H]: n = the chosen layers x kinds (default: all
        traced), in the order [layer{l}.{kind} for l in layers for kind in kinds], layers ascending
        and kinds in the cell's order (charlstm.cells.KINDS)."""
        keys = self._select(layers, kinds)
        return np.stack([np.asarray(self.arrays[k], dtype=np.float32) for k in keys], axis=1)

    def to_pandas(self, layers: Iterable[int] | int | str | None = None, kinds: Iterable[str] | str | None = None,
                  units: Sequence[int] | int | None = None, wide: bool = False):
        """The values as a pandas DataFrame (pandas is optional: pip install 'charlstm[pandas]').

        Long (default): one row per character and unit, columns position, char, id, layer, kind,
        unit, value. wide=True: one row per character, columns position, char, id and one column per
        unit named like "layer1.c:37". layers, kinds: as for tracing (default: all traced); units:
        unit indices (default: all)."""
        try:
            import pandas as pd
        except ImportError:
            raise CharlstmError("Trace.to_pandas needs pandas: pip install 'charlstm[pandas]'") from None
        keys = self._select(layers, kinds)
        if isinstance(units, int):
            units = [units]
        us = list(range(self.hidden_size)) if units is None else [int(u) for u in units]
        bad = [u for u in us if not 0 <= u < self.hidden_size]
        if bad:
            raise CharlstmError(f"unit {bad[0]} does not exist; layers have units 0..{self.hidden_size - 1}")
        T = len(self)
        pos, chars, ids = np.arange(T), np.asarray(self.chars, dtype=object), np.asarray(self.ids, dtype=np.int64)
        values = self.to_numpy(layers, kinds)[:, :, us]  # [T, keys, units]
        if wide:
            cols = {"position": pos, "char": chars, "id": ids}
            for j, k in enumerate(keys):
                for i, u in enumerate(us):
                    cols[f"{k}:{u}"] = values[:, j, i]
            return pd.DataFrame(cols)
        nk, nu = len(keys), len(us)
        parsed = [parse_key(k) for k in keys]
        return pd.DataFrame({
            "position": np.repeat(pos, nk * nu), "char": np.repeat(chars, nk * nu), "id": np.repeat(ids, nk * nu),
            "layer": np.tile(np.repeat([p[0] for p in parsed], nu), T),
            "kind": np.tile(np.repeat(np.asarray([p[1] for p in parsed], dtype=object), nu), T),
            "unit": np.tile(np.asarray(us, dtype=np.int64), T * nk), "value": values.reshape(-1)})

    def _repr_html_(self) -> str:
        """Jupyter shows a trace as the trace viewer, inline (charlstm.viz.notebook)."""
        # The one place where a data object reaches up to its picture: charlstm.viz reads a Trace
        # protocol and never imports charlstm.trace, so the import points one way, and lazily, so
        # that using traces never loads the viewer.
        from charlstm.viz.notebook import trace_html

        return trace_html(self)


def resolve_layers(num_layers: int, layers: Iterable[int] | str | None) -> list[int]:
    """None -> all layers; "0,2" or [0, 2] -> [0, 2]; raises CharlstmError for unknown layers."""
    if layers is None:
        return list(range(num_layers))
    if isinstance(layers, str):
        try:
            layers = [int(x) for x in layers.split(",") if x.strip()]
        except ValueError:
            raise CharlstmError(f"cannot read layers '{layers}'; write e.g. 0,1") from None
    out = sorted(set(int(x) for x in layers))
    bad = [x for x in out if not 0 <= x < num_layers]
    if bad or not out:
        raise CharlstmError(f"layer {bad[0] if bad else '(none)'} does not exist; the model has layers 0..{num_layers - 1}")
    return out


def resolve_kinds(cell: str, kinds: Iterable[str] | str | None) -> list[str]:
    """None -> every kind the cell exposes, in cells.KINDS order; raises CharlstmError otherwise."""
    allowed = cells.KINDS[cell]
    if kinds is None:
        return list(allowed)
    if isinstance(kinds, str):
        kinds = [k.strip() for k in kinds.split(",") if k.strip()]
    kinds = list(kinds)
    for k in kinds:
        if k not in allowed:
            raise CharlstmError(no_kind(cell, k))
    if not kinds:
        raise CharlstmError(f"no kinds given; choose from {', '.join(allowed)}")
    return [k for k in allowed if k in kinds]


# ----------------------------------------------------------------------------- sinks
@dataclass
class TraceInfo:
    """What a sink is told before the first chunk."""

    cell: str
    num_layers: int
    hidden_size: int
    layers: list[int]
    total: int
    vocab: Vocab


class Sink(Protocol):
    """Receives a trace chunk by chunk, in order. `layer` gets every kind of the cell (float32
    [n, H] each, n <= chunk) for each traced layer; `head` gets the chunk's ids [n] and its
    predictions (next_prob [n], top_ids [n, 5], top_probs [n, 5])."""

    def begin(self, info: TraceInfo) -> None: ...
    def layer(self, start: int, layer: int, arrays: dict[str, np.ndarray]) -> None: ...
    def head(self, start: int, ids: np.ndarray, next_prob: np.ndarray, top_ids: np.ndarray,
             top_probs: np.ndarray) -> None: ...
    def end(self) -> None: ...


class MemorySink:
    """Collects the first `limit` characters (all when None) of the given kinds into preallocated
    arrays (no growing lists: peak memory is the result plus one chunk)."""

    def __init__(self, kinds: Sequence[str], dtype=np.float32, limit: int | None = None):
        self.kinds, self.dtype, self.limit = list(kinds), np.dtype(dtype), limit
        self.arrays: dict[str, np.ndarray] = {}

    def begin(self, info: TraceInfo) -> None:
        self.info = info
        n = info.total if self.limit is None else min(self.limit, info.total)
        self.n = n
        H = info.hidden_size
        self.arrays = {key(l, k): np.empty((n, H), self.dtype) for l in info.layers for k in self.kinds}
        self.ids = np.empty(n, np.int64)
        self.next_prob = np.empty(n, np.float32)
        self.top_ids = np.empty((n, TOP_K), np.int64)
        self.top_probs = np.empty((n, TOP_K), np.float32)

    def layer(self, start: int, layer: int, arrays: dict[str, np.ndarray]) -> None:
        m = min(self.n - start, len(next(iter(arrays.values()))))
        if m <= 0:
            return
        for k in self.kinds:
            self.arrays[key(layer, k)][start:start + m] = arrays[k][:m]

    def head(self, start, ids, next_prob, top_ids, top_probs) -> None:
        m = min(self.n - start, len(ids))
        if m <= 0:
            return
        self.ids[start:start + m] = ids[:m]
        self.next_prob[start:start + m] = next_prob[:m]
        self.top_ids[start:start + m] = top_ids[:m]
        self.top_probs[start:start + m] = top_probs[:m]

    def end(self) -> None:
        pass

    def trace(self, meta: dict[str, Any] | None = None) -> Trace:
        i = self.info
        return Trace(self.arrays, self.ids, self.next_prob, self.top_ids, self.top_probs, i.vocab,
                     i.cell, i.hidden_size, i.num_layers, list(i.layers), list(self.kinds), dict(meta or {}))


class ColumnSink:
    """Keeps one unit's values, [T] float32 (what `--show layer1.c:37` prints). `u` may also be any
    object with layer, kind and column(states [n, H]) -> [n] (a dictionary feature, `--show dict:12`)."""

    def __init__(self, u: Any):
        self.l, self.k = u.layer, u.kind
        self.fn = getattr(u, "column", None)
        self.u = None if self.fn is not None else u.unit

    def begin(self, info: TraceInfo) -> None:
        self.values = np.empty(info.total, np.float32)

    def layer(self, start, layer, arrays) -> None:
        if layer == self.l:
            a = self.fn(arrays[self.k]) if self.fn is not None else arrays[self.k][:, self.u]
            self.values[start:start + len(a)] = a

    def head(self, *args) -> None:
        pass

    def end(self) -> None:
        pass




class CodesSink:
    """Keeps the sparse code of an encoder for the first `limit` characters (all when None):
    values float32 [n, k] and indices int32 [n, k]. The encoder is any object with layer, kind, k and
    codes(states [n, H]) -> (values, indices), like a charlstm.dictionary.Dictionary."""

    def __init__(self, encoder: Any, limit: int | None = None):
        self.enc, self.limit = encoder, limit

    def begin(self, info: TraceInfo) -> None:
        n = info.total if self.limit is None else min(self.limit, info.total)
        self.n = n
        self.values = np.zeros((n, self.enc.k), np.float32)
        self.indices = np.zeros((n, self.enc.k), np.int32)

    def layer(self, start, layer, arrays) -> None:
        m = min(self.n - start, len(next(iter(arrays.values()))))
        if layer == self.enc.layer and m > 0:
            v, i = self.enc.codes(arrays[self.enc.kind][:m])
            self.values[start:start + m], self.indices[start:start + m] = v, i

    def head(self, *args) -> None:
        pass

    def end(self) -> None:
        pass
