"""Neuron traces: every layer's hidden state, cell state and gates, for every character read.

A trace of T characters holds, per traced layer l and kind k, an array ``arrays["layer{l}.{k}"]``
shaped [T, H] (row t = the value after reading character t), plus per character the id, the
probability the model gave the actual next character and its top-5 predictions. Kinds come from
``charlstm.cells.KINDS``: LSTM and peephole h, c, i, f, g, o; GRU h, r, z, n; RNN h.

How the values are computed (and why it is fast without being a second implementation):

* lstm/gru/rnn: the fused module (the oneDNN/cuDNN kernel the model trains with) runs one layer at
  a time over a chunk of characters and gives that layer's outputs h_1..h_T. Because every gate at
  step t depends only on (x_t, h_{t-1}), ``cells.step`` -- the explicit cell -- then runs once with
  *time as the batch dimension* and gives every gate at every step in one batched matrix product.
  The LSTM cell state is the linear recurrence c_t = f_t*c_{t-1} + i_t*g_t, an element-wise loop
  over time (a few microseconds per step), and h_t = o_t*tanh(c_t). tests/test_cells.py checks the
  result against a step-by-step ``cells.unroll`` and the fused outputs (<= 1e-5 in float32).
* peephole: the gates read c, so there is no shortcut; ``cells.unroll`` runs step by step (the
  model itself runs that way too).

Long inputs are processed in chunks of ``chunk`` characters with the state carried across chunks,
and every chunk is handed to *sinks* (in memory, an .npz writer, an LSTMVis writer, gate
statistics...), so working memory is O(chunk x units), not O(text): see charlstm.trace_io for the
streaming writers and ``run_trace`` for the loop.
"""
from __future__ import annotations

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from charlstm import cells
from charlstm.errors import CharlstmError
from charlstm.vocab import Vocab

TOP_K = 5
# The gates whose saturation Karpathy, Johnson & Fei-Fei (2015) measured; g and n are tanh
# candidates, not gates.
GATES: dict[str, tuple[str, ...]] = {"lstm": ("i", "f", "o"), "peephole": ("i", "f", "o"),
                                     "gru": ("r", "z"), "rnn": ()}
GATE_KINDS = frozenset({"i", "f", "o", "r", "z"})  # kinds whose values lie in 0..1 (sigmoids)
SATURATION_LOW, SATURATION_HIGH = 0.1, 0.9

_KEY = re.compile(r"^layer(\d+)\.([a-z])$")


def key(layer: int, kind: str) -> str:
    """The array name of one layer's kind: key(1, "c") == "layer1.c"."""
    return f"layer{layer}.{kind}"


def parse_key(name: str) -> tuple[int, str]:
    """"layer1.c" -> (1, "c"); raises CharlstmError for anything else."""
    m = _KEY.match(name.strip())
    if not m:
        raise CharlstmError(f"cannot read '{name}'; write a layer and a kind like layer1.c")
    return int(m.group(1)), m.group(2)


def parse_unit_spec(spec: str) -> tuple[int, str, int]:
    """"layer1.c:37" -> (1, "c", 37) (--show). Validation against a model is `check_unit`."""
    name, sep, unit = spec.rpartition(":")
    if not sep or not unit.strip().isdigit():
        raise CharlstmError(f"cannot read '{spec}'; write layer, kind and unit like layer1.c:37")
    layer, kind = parse_key(name)
    return layer, kind, int(unit)


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

    def save(self, path) -> None:
        """Write the documented .npz (docs/formats.md, "Traces")."""
        from charlstm.trace_io import save_npz

        save_npz(path, self)


# ----------------------------------------------------------------------------- validation
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
            raise CharlstmError(f"kind '{k}' is not traced for {cell} cells; choose from {', '.join(allowed)}")
    if not kinds:
        raise CharlstmError(f"no kinds given; choose from {', '.join(allowed)}")
    return [k for k in allowed if k in kinds]


def check_unit(cell: str, num_layers: int, hidden_size: int, layer: int, kind: str, unit: int) -> None:
    """Raise CharlstmError unless layer/kind/unit exist in a model of this shape."""
    resolve_layers(num_layers, [layer])
    resolve_kinds(cell, [kind])
    if not 0 <= unit < hidden_size:
        raise CharlstmError(f"unit {unit} does not exist; layers have units 0..{hidden_size - 1}")


def encode_text(vocab: Vocab, text: str, unknown: str = "error") -> np.ndarray:
    """Text -> ids [T] in the vocabulary's compact dtype (uint8/uint16), same unknown-character
    policy as sampling ("error" names the characters). Encodes 1M characters at a time so a 10 MB
    text never needs its int64 ids and UTF-32 copy at once."""
    if unknown not in ("error", "skip", "replace"):
        raise CharlstmError(f"unknown policy '{unknown}'; choose error, skip or replace")
    if unknown == "error" and vocab.unknown_chars(text):
        vocab.encode(text, unknown="error")  # raises, naming the characters and their positions
    step = 1 << 20
    parts = [vocab.encode(text[i:i + step], unknown=unknown).astype(vocab.dtype) for i in range(0, len(text), step)]
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=vocab.dtype)
    if len(ids) == 0:
        raise CharlstmError("nothing to trace: the text is empty" if not text else
                            "nothing to trace: every character was skipped as unknown")
    return ids


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
    """Keeps one unit's values, [T] float32 (what `--show layer1.c:37` prints)."""

    def __init__(self, layer: int, kind: str, unit: int):
        self.l, self.k, self.u = layer, kind, unit

    def begin(self, info: TraceInfo) -> None:
        self.values = np.empty(info.total, np.float32)

    def layer(self, start, layer, arrays) -> None:
        if layer == self.l:
            a = arrays[self.k][:, self.u]
            self.values[start:start + len(a)] = a

    def head(self, *args) -> None:
        pass

    def end(self) -> None:
        pass


def gate_saturation(values: np.ndarray, low: float = SATURATION_LOW, high: float = SATURATION_HIGH) -> tuple[np.ndarray, np.ndarray]:
    """values [T, H] of one gate -> (left [H], right [H]): fraction of steps < low and > high."""
    v = np.asarray(values)
    n = max(len(v), 1)
    return (v < low).sum(0) / n, (v > high).sum(0) / n


class GateStats:
    """Per layer and gate, the fraction of time each unit is left-saturated (< 0.1) or
    right-saturated (> 0.9), as in Karpathy, Johnson & Fei-Fei (2015). A sink, so it covers the
    whole text however long; or build one from a Trace with `from_trace`."""

    def __init__(self) -> None:
        self.counts: dict[tuple[int, str], list[np.ndarray]] = {}
        self.n = 0
        self.cell = ""

    def begin(self, info: TraceInfo) -> None:
        self.cell = info.cell
        self.first_layer = info.layers[0]
        for l in info.layers:
            for g in GATES[info.cell]:
                self.counts[(l, g)] = [np.zeros(info.hidden_size, np.int64), np.zeros(info.hidden_size, np.int64)]

    def layer(self, start, layer, arrays) -> None:
        for g in GATES[self.cell]:
            if g not in arrays:
                raise CharlstmError(f"gate statistics need the gates {', '.join(GATES[self.cell])}; trace them too (kinds)")
            v = arrays[g]
            c = self.counts[(layer, g)]
            c[0] += (v < SATURATION_LOW).sum(0)
            c[1] += (v > SATURATION_HIGH).sum(0)
        if layer == self.first_layer:
            self.n += len(next(iter(arrays.values())))

    def head(self, *args) -> None:
        pass

    def end(self) -> None:
        pass

    @classmethod
    def from_trace(cls, trace: Trace) -> "GateStats":
        """Saturation from the gates stored in a trace (those of GATES[cell] that were traced)."""
        s = cls()
        s.cell, s.n = trace.cell, len(trace)
        for l in trace.layers:
            for g in GATES[trace.cell]:
                if key(l, g) in trace.arrays:
                    v = trace.arrays[key(l, g)]
                    s.counts[(l, g)] = [(v < SATURATION_LOW).sum(0), (v > SATURATION_HIGH).sum(0)]
        return s

    def fractions(self) -> dict[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """{layer: {gate: (left [H], right [H])}} as fractions of the characters traced."""
        out: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        n = max(self.n, 1)
        for (l, g), (lo, hi) in self.counts.items():  # insertion order: layers, then GATES order
            out.setdefault(l, {})[g] = (lo / n, hi / n)
        return out

    def table(self) -> str:
        """A plain-text summary: per layer and gate, the mean saturated fractions and how many
        units are mostly (> 50% of the time) left- or right-saturated."""
        fr = self.fractions()
        if not fr:
            return f"{self.cell} cells have no gates"
        lines = [f"gate saturation over {self.n} characters (left < {SATURATION_LOW}, right > {SATURATION_HIGH})",
                 f"{'layer':>5} {'gate':>4} {'left':>6} {'right':>6} {'mostly-left':>11} {'mostly-right':>12} {'never':>6} {'units':>5}"]
        for l, gates in fr.items():
            for g, (lo, hi) in gates.items():
                never = int(((lo == 0) & (hi == 0)).sum())
                lines.append(f"{l:>5} {g:>4} {lo.mean():>6.3f} {hi.mean():>6.3f} {int((lo > 0.5).sum()):>11} "
                             f"{int((hi > 0.5).sum()):>12} {never:>6} {len(lo):>5}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- the loop
def _layer_module(model: nn.Module, layer: int) -> nn.Module | None:
    """A one-layer fused module holding a copy of layer `layer`'s weights (None for peephole)."""
    cfg = model.cfg
    if cfg.cell == "peephole":
        return None
    inp = cfg.embed_dim if layer == 0 else cfg.hidden_size
    H = cfg.hidden_size
    if cfg.cell == "lstm":
        m = nn.LSTM(inp, H, 1, batch_first=True)
    elif cfg.cell == "gru":
        m = nn.GRU(inp, H, 1, batch_first=True)
    else:
        m = nn.RNN(inp, H, 1, nonlinearity="tanh", batch_first=True)
    m.load_state_dict({f"{n}_l0": t for n, t in model.layer_params(layer).items()})
    w = model.head.weight
    return m.to(device=w.device, dtype=w.dtype).eval()


def _lstm_cell_loop(f: np.ndarray, ig: np.ndarray, c0: np.ndarray) -> np.ndarray:
    """c_t = f_t * c_{t-1} + ig_t over time: f, ig [n, H] float32, c0 [H] -> c [n, H]."""
    c = np.empty_like(f)
    prev = c0
    mul = np.multiply
    for ft, igt, ct in zip(f, ig, c):  # iterating rows is cheaper than indexing them
        mul(ft, prev, out=ct)
        ct += igt
        prev = ct
    return c


# Below this many multiply-adds per step, one CPU thread runs the sequential fused recurrence
# fastest: OpenMP's fork/join per step costs more than it saves, and is ruinous on a busy machine
# (docs/benchmarks.md, "Tracing"). The batched gate products keep torch's thread setting.
from charlstm.sample import SMALL_STEP_MACS, cpu_threads as _threads  # noqa: E402  (one home for both)


def _np(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()


@torch.inference_mode()
def run_trace(model: nn.Module, ids: np.ndarray, sinks: Sequence[Sink], *, layers: Sequence[int] | None = None,
              kinds: Iterable[str] | None = None, chunk: int = 4096, progress: bool = False,
              vocab: Vocab | None = None) -> float:
    """Run the model over ids [T] and hand every chunk to the sinks. Returns the seconds spent.

    All layers run (upper layers need lower ones, the head needs the top); the kinds are computed
    only for `layers` (default all), and only `kinds` (default all: every sink then gets every
    kind of the cell) -- asking for h alone skips the gate recomputation. The model is put in
    eval mode for the call (dropout off) and its previous mode restored.
    """
    cfg = model.cfg
    layers = resolve_layers(cfg.num_layers, layers)
    kinds = resolve_kinds(cfg.cell, kinds)
    T = len(ids)
    if T == 0:
        raise CharlstmError("nothing to trace: the text is empty")
    if chunk < 1:
        raise CharlstmError(f"chunk must be at least 1, got {chunk}")
    hi = int(np.max(ids[:1 << 22])) if T else 0  # cheap sanity check on (a prefix of) the ids
    if hi >= cfg.vocab_size:
        raise CharlstmError(f"id {hi} is outside the model's vocabulary of {cfg.vocab_size}; wrong dataset for this run?")
    info = TraceInfo(cfg.cell, cfg.num_layers, cfg.hidden_size, layers, T, vocab)
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    try:
        for s in sinks:
            s.begin(info)
        _run(model, ids, sinks, set(layers), kinds, chunk, progress)
        for s in sinks:
            s.end()
    finally:
        model.train(was_training)
    return time.perf_counter() - t0


def _run(model: nn.Module, ids: np.ndarray, sinks: Sequence[Sink], want: set[int], kinds: list[str], chunk: int,
         progress: bool) -> None:
    cfg = model.cfg
    cell, H, L = cfg.cell, cfg.hidden_size, cfg.num_layers
    w = model.head.weight
    dev, dt = w.device, w.dtype
    mods = [_layer_module(model, l) for l in range(L)]
    macs = max(4 * H * ((cfg.embed_dim if l == 0 else H) + H) for l in range(L))
    seq_threads = 1 if dev.type == "cpu" and macs < SMALL_STEP_MACS else None
    params = [model.layer_params(l) for l in range(L)]
    # Carried state per layer: torch (h, c) [1, 1, H] for the fused modules; numpy c for the loop.
    h_state = [torch.zeros(1, 1, H, device=dev, dtype=dt) for _ in range(L)]
    c_state = [torch.zeros(1, 1, H, device=dev, dtype=dt) for _ in range(L)]
    c_np = [np.zeros(H, np.float32) for _ in range(L)]
    T = len(ids)
    k = min(TOP_K, cfg.vocab_size)
    from tqdm import tqdm

    bar = tqdm(total=T, unit="char", unit_scale=True, disable=not progress, desc="trace")
    try:
        for start in range(0, T, chunk):
            stop = min(start + chunk, T)
            n = stop - start
            # ids of this chunk plus the next character (for next_prob), from the memmap/array
            chunk_ids = np.asarray(ids[start:min(stop + 1, T)], dtype=np.int64)
            x = model.embed(torch.from_numpy(chunk_ids[:n]).to(dev))  # [n, E]
            for l in range(L):
                x, got = _layer_chunk(cell, mods[l], params[l], x, l, h_state, c_state, c_np,
                                      kinds if l in want else [], seq_threads)
                if got is not None:
                    for s in sinks:
                        s.layer(start, l, got)
            logp = torch.log_softmax(model.head(x).float(), dim=-1)  # [n, V]
            probs = logp.exp()
            top_p, top_i = probs.topk(k, dim=-1)
            next_prob = np.full(n, np.nan, np.float32)
            nxt = torch.from_numpy(chunk_ids[1:]).to(dev)  # [n] or [n-1] at the very end
            next_prob[:len(nxt)] = _np(probs[torch.arange(len(nxt), device=dev), nxt])
            top_ids = np.full((n, TOP_K), -1, np.int64)
            top_probs = np.zeros((n, TOP_K), np.float32)
            top_ids[:, :k] = top_i.cpu().numpy()
            top_probs[:, :k] = _np(top_p)
            for s in sinks:
                s.head(start, chunk_ids[:n], next_prob, top_ids, top_probs)
            bar.update(n)
    finally:
        bar.close()


def _layer_chunk(cell: str, mod: nn.Module | None, p: dict[str, Tensor], x: Tensor, l: int,
                 h_state: list[Tensor], c_state: list[Tensor], c_np: list[np.ndarray],
                 kinds: Sequence[str], seq_threads: int | None = None) -> tuple[Tensor, dict[str, np.ndarray] | None]:
    """One layer over one chunk: x [n, In] -> (outputs h [n, H] for the next layer, the requested
    kinds as float32 [n, H] arrays, or None when none are requested). Updates the carried state
    lists in place. seq_threads: torch threads for the step-by-step part (None: as is)."""
    h0 = h_state[l][0]  # [1, H]
    if cell == "peephole":
        with _threads(seq_threads):
            out, (h, c), rec = cells.unroll(cell, x[None], (h0, c_state[l][0]), p, record=tuple(kinds))
        h_state[l], c_state[l] = h[None], c[None]
        return out[0], ({k: _np(v[0]) for k, v in rec.items()} if kinds else None)
    with _threads(seq_threads):
        if cell == "lstm":
            out, (hn, cn) = mod(x[None], (h_state[l], c_state[l]))
            h_state[l], c_state[l] = hn, cn
        else:
            out, hn = mod(x[None], h_state[l])
            h_state[l] = hn
    hs = out[0]  # [n, H]
    if not kinds:
        return hs, None
    if cell == "rnn" or set(kinds) == {"h"}:
        return hs, {"h": _np(hs)}  # the fused outputs are h; no gate needed
    # Every step's input and previous output are known now: run the explicit cell with time as
    # the batch dimension.
    h_prev = torch.cat([h0, hs[:-1]], 0)
    if cell == "gru":
        r = cells.step(cell, x, (h_prev,), p)
        return hs, {k: _np(r[k]) for k in kinds}
    # LSTM: gates do not read c, so a zero previous cell gives exact gates and r["c"] == i*g.
    r = cells.step(cell, x, (h_prev, torch.zeros_like(h_prev)), p)
    f, o = _np(r["f"]), _np(r["o"])
    c = _lstm_cell_loop(f, _np(r["c"]), c_np[l])
    c_np[l] = c[-1].copy()
    known = {"c": c, "f": f, "o": o}
    out_k: dict[str, np.ndarray] = {}
    for k in kinds:
        out_k[k] = o * np.tanh(c) if k == "h" else known[k] if k in known else _np(r[k])
    return hs, out_k


# ----------------------------------------------------------------------------- public API
def trace_ids(model: nn.Module, vocab: Vocab, ids: np.ndarray, *, layers: Iterable[int] | str | None = None,
              kinds: Iterable[str] | str | None = None, chunk: int = 4096, dtype=np.float32,
              progress: bool = False, limit: int | None = None) -> Trace:
    """Trace an id array [T] (e.g. a dataset split memmap; only `limit` first ids when given).

    Returns a Trace whose arrays are "layer{l}.{kind}" -> [T, H] in `dtype`.
    """
    if vocab.size != model.cfg.vocab_size:
        raise CharlstmError(f"vocabulary of {vocab.size} symbols does not fit the model ({model.cfg.vocab_size})")
    ids = ids[:limit] if limit is not None else ids
    layers_ = resolve_layers(model.cfg.num_layers, layers)
    kinds_ = resolve_kinds(model.cfg.cell, kinds)
    sink = MemorySink(kinds_, dtype=dtype)
    secs = run_trace(model, ids, [sink], layers=layers_, kinds=kinds_, chunk=chunk, progress=progress, vocab=vocab)
    return sink.trace({"seconds": secs})


def trace_text(model: nn.Module, vocab: Vocab, text: str, *, layers: Iterable[int] | str | None = None,
               kinds: Iterable[str] | str | None = None, chunk: int = 4096, unknown: str = "error",
               dtype=np.float32, progress: bool = False) -> Trace:
    """Trace a text: encode it (unknown characters: "error" | "skip" | "replace"), then trace_ids."""
    ids = encode_text(vocab, text, unknown)
    return trace_ids(model, vocab, ids, layers=layers, kinds=kinds, chunk=chunk, dtype=dtype, progress=progress)


# ----------------------------------------------------------------------------- inputs
def split_ids(run_config: dict[str, Any], vocab: Vocab, split: str, limit: int | None = None) -> np.ndarray:
    """The ids of a split of the run's dataset, as a read-only memmap (checksummed by
    charlstm.score.split_ids), cut to the first `limit` when given. Raises CharlstmError when the
    dataset is gone, its vocabulary is not the run's, or the split is empty."""
    from charlstm.score import split_ids as _split_ids

    ids = _split_ids(run_config, vocab, split, instead="trace --text/--file instead")
    if limit is not None:
        ids = ids[:limit]
    if len(ids) == 0:
        raise CharlstmError(f"nothing to trace: the '{split}' split of the run's dataset is empty")
    return ids


def read_text_file(path: str, vocab: Vocab) -> str:
    """A file's text (UTF-8; byte vocabularies keep undecodable bytes via surrogateescape)."""
    from pathlib import Path

    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise CharlstmError(f"file {path} does not exist") from None
    except IsADirectoryError:
        raise CharlstmError(f"{path} is a folder; give a text file") from None
    except OSError as e:
        raise CharlstmError(f"cannot read {path}: {e.strerror}") from None
    try:
        return raw.decode("utf-8", errors="surrogateescape" if vocab.units == "byte" else "strict")
    except UnicodeDecodeError as e:
        raise CharlstmError(f"{path} is not UTF-8 text (byte {e.start}); convert it first") from None
