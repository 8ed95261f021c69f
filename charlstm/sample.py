"""Generation: sampling text from a model with O(1) work per character, and steering by clamping.

The prime is read once (the fused module over prime[:-1], then one step), and every generated
character costs exactly one step of a hand-fused cell (`Stepper`) that carries the state: no context
is ever recomputed. `naive_generate` is the slow, obvious twin (re-runs the whole model over the
whole context at every step); tests check both give the same text for a fixed seed.

Why a hand-fused step rather than the fused module with T=1: on CPU, nn.LSTM re-prepares its
oneDNN primitive (and reorders the weights) on every call, which measured 3-20x slower than two
matmuls per layer at batch 1 (docs/benchmarks.md, "Sampling"). The step works on preprocessed
weights: the embedding and layer 0's input projection are folded into one [V, G*H] table (a row
gather instead of a matmul), gate blocks are reordered so that the sigmoid gates are contiguous, the
temperature is folded into the head, and every buffer is preallocated so a step allocates nothing.

Sampling uses the Gumbel-max trick (argmax of logits + Gumbel noise is an exact draw from the
softmax), with the noise generated 64 steps at a time. Without top-k/top-p, the noise is added to
the head's bias for a whole block at once, so drawing a character costs one argmax: torch.multinomial
alone measured ~40 us per call for one row on CPU, more than a whole step of the tiny preset.

Steering: `--clamp layer1.c:37=1.0` holds unit 37 of layer 1's cell state at 1.0 (layers count from
0, as in traces). Any kind the cell exposes (LSTM/peephole h c i f g o; GRU h r z n; RNN h) can be
held: gates are overwritten right after their activation, before they are used, and states right
after they are computed, so a clamped h of layer l is also the input of layer l+1 at that step.
By default clamps act on every step that predicts a generated character (the last prime
character's step included), not while the rest of the prime is read; clamp_prime=True clamps the
whole prime too.
"""
from __future__ import annotations

import codecs
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from charlstm import cells
from charlstm.errors import CharlstmError
from charlstm.vocab import EOT, Vocab

PRIME_CHUNK = 4096  # prime characters per fused forward call: bounds memory for long primes


# ----------------------------------------------------------------------------- options
@dataclass(frozen=True)
class Clamp:
    """Hold unit `unit` of `kind` in layer `layer` (0-based) at `value` while generating."""

    layer: int
    kind: str
    unit: int
    value: float

    def __str__(self) -> str:
        return f"layer{self.layer}.{self.kind}:{self.unit}={self.value:g}"


_CLAMP = re.compile(r"^\s*layer(\d+)\.([a-z])\s*:\s*(\d+)\s*=\s*([-+0-9.eEinfa]+)\s*$")


def parse_clamp(spec: str, cell: str | None = None, num_layers: int | None = None,
                hidden_size: int | None = None) -> Clamp:
    """'layer1.c:37=1.0' -> Clamp(1, "c", 37, 1.0); checked against the model shape when given.

    Raises CharlstmError naming what is wrong (syntax, unknown layer, kind or unit)."""
    m = _CLAMP.match(spec)
    if not m:
        raise CharlstmError(f"cannot read clamp '{spec}'; write layer, kind, unit and value like layer1.c:37=1.0")
    try:
        value = float(m.group(4))
    except ValueError:
        raise CharlstmError(f"cannot read the value in clamp '{spec}'; write a number like layer1.c:37=1.0") from None
    if not np.isfinite(value):
        raise CharlstmError(f"clamp '{spec}' needs a finite value")
    c = Clamp(int(m.group(1)), m.group(2), int(m.group(3)), value)
    if cell is not None:
        check_clamp(c, cell, num_layers, hidden_size, spec)
    return c


def check_clamp(c: Clamp, cell: str, num_layers: int | None, hidden_size: int | None, spec: str | None = None) -> None:
    """Raise CharlstmError unless the clamped layer, kind and unit exist in this model."""
    what = f"clamp '{spec or c}'"
    if num_layers is not None and not 0 <= c.layer < num_layers:
        raise CharlstmError(f"{what}: layer {c.layer} does not exist; the model has layers 0..{num_layers - 1}")
    if c.kind not in cells.KINDS[cell]:
        raise CharlstmError(f"{what}: a {cell} cell has no '{c.kind}'; choose one of {', '.join(cells.KINDS[cell])}")
    if hidden_size is not None and not 0 <= c.unit < hidden_size:
        raise CharlstmError(f"{what}: unit {c.unit} does not exist; layers have units 0..{hidden_size - 1}")


@dataclass
class SampleOptions:
    """How to generate. length counts vocabulary units (characters, or bytes for byte models)."""

    length: int = 500
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False
    num_samples: int = 1
    seed: int | None = None  # None: a fresh random seed, reported in the result
    stop: tuple[str, ...] = ()  # a sample ends after the first of these it writes (included)
    stop_at_eot: bool = True  # end a sample at <eot> (not included) when the vocabulary has one
    clamp: tuple[Clamp, ...] = ()
    clamp_prime: bool = False

    def validate(self) -> None:
        if self.length < 0:
            raise CharlstmError(f"length must be 0 or more, got {self.length}")
        if not self.temperature > 0 or not np.isfinite(self.temperature):
            raise CharlstmError(f"temperature must be a positive number, got {self.temperature}; use --greedy for argmax")
        if self.top_k is not None and self.top_k < 1:
            raise CharlstmError(f"top-k must be at least 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise CharlstmError(f"top-p must be in (0, 1], got {self.top_p}")
        if self.num_samples < 1:
            raise CharlstmError(f"num-samples must be at least 1, got {self.num_samples}")
        if any(s == "" for s in self.stop):
            raise CharlstmError("a stop string cannot be empty")


@dataclass
class Sample:
    """One generated continuation (the prime is not included).

    text: the decoded text, ending with the stop string that ended it, if any.
    ids: the generated ids up to and including the one that completed the text (no <eot>).
    stop_reason: "length", "eot" or "stop".
    """

    text: str
    ids: list[int]
    stop_reason: str


@dataclass
class Generation:
    samples: list[Sample]
    seed: int
    steps: int = 0  # model steps taken after the prime (for tests of O(1) work per character)
    prime_ids: list[int] = field(default_factory=list)


def fresh_seed() -> int:
    return int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF


# ----------------------------------------------------------------------------- choosing characters
def filter_top_k(logits: Tensor, k: int) -> Tensor:
    """Set every logit below the k-th largest of its row to -inf, in place. logits [N, V]."""
    if k < logits.shape[-1]:
        kth = torch.topk(logits, k, dim=-1).values[:, -1:]
        logits.masked_fill_(logits < kth, float("-inf"))
    return logits


def filter_top_p(logits: Tensor, p: float) -> Tensor:
    """Nucleus filter, in place: keep the smallest set of most likely symbols whose probability
    reaches p (always at least the most likely one); the rest get -inf. logits [N, V]."""
    if p >= 1.0:
        return logits
    srt, idx = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(srt, dim=-1)
    before = torch.cumsum(probs, dim=-1) - probs  # mass of the more likely symbols
    drop = before >= p
    drop[:, 0] = False
    logits.scatter_(-1, idx, srt.masked_fill(drop, float("-inf")))
    return logits


class GumbelNoise:
    """Gumbel noise G = -log(E), E ~ Exp(1), for the Gumbel-max draw: argmax(logits + G) is an exact
    sample from softmax(logits). Generated `block` steps at a time ([block, N, V], one RNG call)
    so a step pays no RNG call; every consumer of the same seed and block size sees the same
    noise, which is what makes the fast and the naive generators agree."""

    def __init__(self, shape: tuple[int, int], generator: torch.Generator | None, device=None,
                 dtype: torch.dtype = torch.float32, block: int = 64):
        self.generator, self.block = generator, block
        self.buf = torch.empty(block, *shape, device=device, dtype=dtype)
        self.i = block

    def _refill(self) -> None:
        # The floor keeps G finite: -inf logits (filtered, <unk>) + G must stay -inf, never NaN.
        self.buf.exponential_(generator=self.generator).clamp_(min=1e-30).log_().neg_()
        self.i = 0

    def next(self) -> Tensor:
        """The next step's noise [N, V] (a view of the block)."""
        if self.i == self.block:
            self._refill()
        self.i += 1
        return self.buf[self.i - 1]

    def next_block(self) -> Tensor:
        """All the noise left in the current block [k, N, V] (refilled first when used up); the
        caller consumes it one step at a time with `skip`."""
        if self.i == self.block:
            self._refill()
        return self.buf[self.i:]

    def skip(self, k: int = 1) -> None:
        self.i += k


def sample_next(logits: Tensor, *, top_k: int | None = None, top_p: float | None = None, greedy: bool = False,
                generator: torch.Generator | None = None, gumbel: Tensor | None = None,
                out: Tensor | None = None) -> Tensor:
    """Choose the next id of each row from (already tempered) logits [N, V] -> ids [N] int64.

    Modifies logits in place (filters, noise). gumbel: this step's noise [N, V] (GumbelNoise.next());
    drawn from `generator` when not given. out: an optional [N] int64 buffer for the result.
    """
    if not greedy:
        if top_k is not None:
            filter_top_k(logits, top_k)
        if top_p is not None:
            filter_top_p(logits, top_p)
        if gumbel is None:
            gumbel = GumbelNoise(tuple(logits.shape), generator, logits.device, logits.dtype, block=1).next()
        logits.add_(gumbel)
    return torch.argmax(logits, dim=-1, out=out) if out is not None else torch.argmax(logits, dim=-1)


def temper(logits: Tensor, temperature: float, unk_id: int | None) -> Tensor:
    """What the Stepper folds into its head: logits / temperature, <unk> never chosen. [N, V] copy."""
    logits = logits / temperature
    if unk_id is not None:
        logits[:, unk_id] = float("-inf")
    return logits


# ----------------------------------------------------------------------------- the step
def prepared_weights(model) -> dict:
    """The model's weights in the layout the Stepper wants, cached on the model until any parameter
    changes (in-place edits bump a tensor's version; ablation code does that).

    table [V, G*H]: embedding @ layer 0's W_ih + biases (GRU: without b_hh, which r multiplies),
    gate blocks of LSTM cells reordered i, f, g, o -> i, f, o, g (the sigmoids become one slice);
    rows: V views [1, G*H] of it; whh[l] [H, G*H]; wx[l], bx[l] (l >= 1): [2H, G*H] acting on
    [x, h] and the summed bias (GRU: [H, 3H] on x and b_ih); bhh (GRU), peep (peephole) per layer;
    wh [H, V]: the head, transposed.
    """
    try:
        key = tuple((p.data_ptr(), p._version) for p in model.parameters())
    except RuntimeError:  # inference tensors (a model built under inference_mode) have no version
        key = None
    cached = getattr(model, "_charlstm_step_weights", None)
    if key is not None and cached is not None and cached[0] == key:
        return cached[1]
    cfg = model.cfg
    H, L, cell = cfg.hidden_size, cfg.num_layers, cfg.cell
    G = cells.GATE_COUNT[cell]
    dev = model.head.weight.device
    with torch.no_grad():
        perm = (torch.cat([torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)])
                if cell in ("lstm", "peephole") else torch.arange(G * H)).to(dev)
        ps = [model.layer_params(layer) for layer in range(L)]
        tab = model.embed.weight @ ps[0]["weight_ih"].t() + ps[0]["bias_ih"]
        if cell != "gru":
            tab = tab + ps[0]["bias_hh"]
        table = tab[:, perm].contiguous()
        out = {"table": table, "rows": list(table.split(1)),
               "whh": [p["weight_hh"][perm].t().contiguous() for p in ps], "wx": [None], "bx": [None],
               "bhh": [p["bias_hh"].clone() for p in ps] if cell == "gru" else [],
               "peep": [p["peephole"].clone() for p in ps] if cell == "peephole" else [],
               "wh": model.head.weight.t().contiguous()}
        for p in ps[1:]:
            if cell == "gru":
                out["wx"].append(p["weight_ih"].t().contiguous())
                out["bx"].append(p["bias_ih"].clone())
            else:
                out["wx"].append(torch.cat([p["weight_ih"], p["weight_hh"]], 1)[perm].t().contiguous())
                out["bx"].append((p["bias_ih"] + p["bias_hh"])[perm].contiguous())
    if key is not None:
        model._charlstm_step_weights = (key, out)
    return out


class Stepper:
    """The whole model, one character at a time, for N rows, with the state carried inside.

    step(ids [N] int64) -> logits [N, V]: tempered (divided by temperature) with <unk> at -inf.
    The logits tensor is an internal buffer, overwritten by the next step. Runs any cell; clamps
    (see the module docstring) apply while `clamping` is True. Use under torch.inference_mode().
    """

    def __init__(self, model, batch: int, temperature: float = 1.0, unk_id: int | None = None,
                 clamp: Sequence[Clamp] = ()):
        cfg = model.cfg
        self.cell, self.N, self.H, self.L, self.V = cfg.cell, batch, cfg.hidden_size, cfg.num_layers, cfg.vocab_size
        H, L, N, cell = self.H, self.L, batch, cfg.cell
        self.lstm_like = cell in ("lstm", "peephole")
        G = cells.GATE_COUNT[cell]
        w = model.head.weight
        dev, dt = w.device, w.dtype
        self.steps = 0
        self.clamping = True
        for c in clamp:
            check_clamp(c, cell, L, H)
        prep = prepared_weights(model)
        self.table, self.rows, self.whh, self.wx, self.bx = prep["table"], prep["rows"], prep["whh"], prep["wx"], prep["bx"]
        self.bhh, self.peep = prep["bhh"], prep["peep"]
        with torch.no_grad():
            self.wh = prep["wh"] / temperature if temperature != 1.0 else prep["wh"]  # [H, V]
            self.bh = model.head.bias / temperature  # a copy: masked below
            if unk_id is not None:
                self.bh[unk_id] = float("-inf")  # <unk> stands for many characters: never write it
        # Buffers. All hidden states live in one [N, L*H] tensor so that layer l's matmul input
        # [h_{l-1} (new), h_l (old)] is the slice S[:, (l-1)H:(l+1)H], with no copy.
        self.S = torch.zeros(N, L * H, device=dev, dtype=dt)
        self.C = torch.zeros(L, N, H, device=dev, dtype=dt) if self.lstm_like else None
        self.h = [self.S[:, i * H:(i + 1) * H] for i in range(L)]
        self.xh = [None] + [self.S[:, (i - 1) * H:(i + 1) * H] for i in range(1, L)]
        self.pre = torch.empty(N, G * H, device=dev, dtype=dt)
        self.gh = torch.empty(N, 3 * H, device=dev, dtype=dt) if cell == "gru" else None
        self.tmp = torch.empty(N, H, device=dev, dtype=dt)
        self.logits = torch.empty(N, self.V, device=dev, dtype=dt)
        self.nxt = torch.zeros(N, dtype=torch.long, device=dev)
        # One row on the CPU: numpy's argmax over this view of the logits costs a quarter of
        # torch.argmax + .item(), and gives the Python int the next step and the text both want.
        self.logits_np = self.logits.numpy() if dev.type == "cpu" and N == 1 else None
        pre = self.pre
        if self.lstm_like:
            self.gate = {"i": pre[:, :H], "f": pre[:, H:2 * H], "o": pre[:, 2 * H:3 * H], "g": pre[:, 3 * H:]}
            self.sig = pre[:, :2 * H] if cell == "peephole" else pre[:, :3 * H]
        elif cell == "gru":
            self.gate = {"r": pre[:, :H], "z": pre[:, H:2 * H], "n": pre[:, 2 * H:]}
            self.rz, self.rz_h, self.n_h = pre[:, :2 * H], self.gh[:, :2 * H], self.gh[:, 2 * H:]
        else:
            self.gate = {}
        # The plain LSTM's per-layer operands: (W, bias, input, h, c, sigmoid slice, i, f, o, g).
        self.plain = None
        if cell == "lstm":
            gt = self.gate
            self.plain = [(self.whh[0] if k == 0 else self.wx[k], None if k == 0 else self.bx[k], self.xh[k],
                           self.h[k], self.C[k], self.sig, gt["i"], gt["f"], gt["o"], gt["g"]) for k in range(L)]
        # clamps[layer][kind] = (unit indices [k], values [N, k])
        self.clamps: list[dict[str, tuple[Tensor, Tensor]]] = [{} for _ in range(L)]
        for layer in range(L):
            for kind in cells.KINDS[cell]:
                cs = {c.unit: c.value for c in clamp if c.layer == layer and c.kind == kind}  # the last one wins
                if cs:
                    idx = torch.tensor(sorted(cs), device=dev)
                    val = torch.tensor([cs[u] for u in sorted(cs)], device=dev, dtype=dt).expand(N, -1).contiguous()
                    self.clamps[layer][kind] = (idx, val)
        self.any_clamp = any(self.clamps)
        # One row of a small plain LSTM on the CPU: numpy on views of the very same buffers and
        # weights. At this size a step is a dozen tiny operations, and numpy's matrix-vector product
        # and element-wise calls measured 1.5-2x and 2-3x cheaper per call than torch's (whose
        # per-call dispatch dominates); see docs/benchmarks.md, "Sampling".
        self.np_plain = None
        if self.plain is not None and dev.type == "cpu" and N == 1 and dt == torch.float32 and self.numpy_sized():
            self.np_plain = self._numpy_views()

    def numpy_sized(self) -> bool:
        """Whether every weight matrix is small enough for numpy's BLAS to stay on one thread: at
        [512, 1024] OpenBLAS's product went multi-threaded (process CPU time 1.94x wall, so no
        faster and at odds with the one-thread rule for small steps); at [384, 1024] it did not."""
        return max(w.numel() for w in [self.whh[0], *self.wx[1:], self.wh]) <= NUMPY_MAX_MATRIX

    def _numpy_views(self) -> dict:
        H = self.H
        pre = self.pre.numpy()
        return {"layers": [(w.numpy(), None if b is None else b.numpy(), None if x is None else x.numpy(), h.numpy(),
                            c.numpy()) for (w, b, x, h, c, *_rest) in self.plain],
                "rows": self.table.numpy(), "pre": pre, "sig": pre[:, :3 * H], "i": pre[:, :H], "f": pre[:, H:2 * H],
                "o": pre[:, 2 * H:3 * H], "g": pre[:, 3 * H:], "tmp": self.tmp.numpy(), "wh": self.wh.numpy(),
                "bh": self.bh.numpy(), "logits": self.logits.numpy()}

    # -------------------------------------------------------------- state
    def set_state(self, state: tuple[Tensor, ...]) -> None:
        """Load a model state (tuple of [L, n, H], n = 1 or N; n = 1 is copied to every row)."""
        for layer in range(self.L):
            self.h[layer].copy_(state[0][layer].expand(self.N, -1))
            if self.C is not None:
                self.C[layer].copy_(state[1][layer].expand(self.N, -1))

    def get_state(self) -> tuple[Tensor, ...]:
        """The carried state in the model's layout: tuple of [L, N, H] (copies)."""
        h = torch.stack([x.clone() for x in self.h])
        return (h, self.C.clone()) if self.C is not None else (h,)

    # -------------------------------------------------------------- one step
    def _clamp(self, layer: int, kind: str, t: Tensor) -> None:
        cl = self.clamps[layer].get(kind)
        if cl is not None:
            t.index_copy_(1, cl[0], cl[1])

    def step(self, ids: Tensor | int, head_bias: Tensor | None = None) -> Tensor:
        """Feed one id per row (ids [N] int64, or a Python int when N == 1) -> next-symbol logits
        [N, V] (internal buffer).

        head_bias [N, V]: use instead of the head's (tempered, <unk>-masked) bias, e.g. that bias
        plus this step's Gumbel noise. An int id skips the gather: its table row is a ready view."""
        self.steps += 1
        clamp = self.any_clamp and self.clamping
        if self.plain is not None and not clamp:
            if self.np_plain is not None and isinstance(ids, int):
                return self._lstm_step_np(ids, head_bias)
            return self._lstm_step(ids, head_bias)
        pre, cell = self.pre, self.cell
        for layer in range(self.L):
            h = self.h[layer]
            if cell == "gru":
                self._gru_layer(layer, ids, h, clamp)
                continue
            if layer == 0:
                if isinstance(ids, int):
                    torch.addmm(self.rows[ids], h, self.whh[0], out=pre)
                else:
                    torch.index_select(self.table, 0, ids, out=pre)
                    pre.addmm_(h, self.whh[0])
            else:
                torch.addmm(self.bx[layer], self.xh[layer], self.wx[layer], out=pre)
            if cell == "rnn":
                torch.tanh(pre, out=h)
                if clamp:
                    self._clamp(layer, "h", h)
                continue
            c, gate = self.C[layer], self.gate
            if cell == "peephole":
                gate["i"].addcmul_(c, self.peep[layer][0])
                gate["f"].addcmul_(c, self.peep[layer][1])
            self.sig.sigmoid_()
            gate["g"].tanh_()
            if clamp:
                for k in ("i", "f", "g") if cell == "peephole" else ("i", "f", "g", "o"):
                    self._clamp(layer, k, gate[k])
            c.mul_(gate["f"]).addcmul_(gate["i"], gate["g"])
            if clamp:
                self._clamp(layer, "c", c)
            if cell == "peephole":
                gate["o"].addcmul_(c, self.peep[layer][2]).sigmoid_()
                if clamp:
                    self._clamp(layer, "o", gate["o"])
            torch.tanh(c, out=h).mul_(gate["o"])
            if clamp:
                self._clamp(layer, "h", h)
        return torch.addmm(self.bh if head_bias is None else head_bias, self.h[-1], self.wh, out=self.logits)

    def _lstm_step(self, ids: Tensor | int, head_bias: Tensor | None) -> Tensor:
        """`step` for a plain LSTM without clamps: the same operations with every operand bound in
        advance, since at batch 1 a step is a few microseconds of Python per operation."""
        pre, addmm, tanh = self.pre, torch.addmm, torch.tanh
        for w, b, x, h, c, sig, i, f, o, g in self.plain:
            if b is None:  # layer 0: the table row (or rows) is the bias of the recurrent matmul
                if isinstance(ids, int):
                    addmm(self.rows[ids], h, w, out=pre)
                else:
                    torch.index_select(self.table, 0, ids, out=pre)
                    pre.addmm_(h, w)
            else:
                addmm(b, x, w, out=pre)
            sig.sigmoid_()
            g.tanh_()
            c.mul_(f).addcmul_(i, g)
            tanh(c, out=h).mul_(o)
        return addmm(self.bh if head_bias is None else head_bias, h, self.wh, out=self.logits)

    def _lstm_step_np(self, i: int, head_bias: Tensor | None) -> Tensor:
        """`_lstm_step` for one row on the CPU in numpy, on views of the same buffers (so the state,
        get_state and the logits tensor are shared). sigmoid(x) = 0.5 + 0.5 tanh(x / 2): no exp
        to overflow. Tested against the torch step."""
        v = self.np_plain
        pre, sig, ig, fg, og, g, tmp = v["pre"], v["sig"], v["i"], v["f"], v["o"], v["g"], v["tmp"]
        mm, tanh, mul = np.matmul, np.tanh, np.multiply
        for w, b, x, h, c in v["layers"]:
            if b is None:  # layer 0: the table row is the bias of the recurrent product
                mm(h, w, out=pre)
                pre += v["rows"][i]
            else:
                mm(x, w, out=pre)
                pre += b
            mul(sig, 0.5, out=sig)
            tanh(sig, out=sig)
            sig *= 0.5
            sig += 0.5
            tanh(g, out=g)
            c *= fg
            c += mul(ig, g, out=tmp)
            tanh(c, out=h)
            h *= og
        logits = v["logits"]
        mm(h, v["wh"], out=logits)
        logits += v["bh"] if head_bias is None else head_bias.numpy()
        return self.logits

    def _gru_layer(self, layer: int, ids: Tensor | int, h: Tensor, clamp: bool) -> None:
        gi, gate = self.pre, self.gate
        if layer == 0:
            if isinstance(ids, int):
                gi.copy_(self.rows[ids])
            else:
                torch.index_select(self.table, 0, ids, out=gi)
        else:
            torch.addmm(self.bx[layer], self.h[layer - 1], self.wx[layer], out=gi)
        torch.addmm(self.bhh[layer], h, self.whh[layer], out=self.gh)
        self.rz.add_(self.rz_h).sigmoid_()
        if clamp:
            self._clamp(layer, "r", gate["r"])
            self._clamp(layer, "z", gate["z"])
        gate["n"].addcmul_(gate["r"], self.n_h).tanh_()
        if clamp:
            self._clamp(layer, "n", gate["n"])
        h.sub_(gate["n"]).mul_(gate["z"]).add_(gate["n"])  # h' = n + z * (h - n)
        if clamp:
            self._clamp(layer, "h", h)


class BlockSampler:
    """K generation steps as one unit, for a plain LSTM without clamps or top-k/top-p: per step,
    the Stepper's step with this step's bias (head bias + Gumbel noise, or the plain bias when
    greedy), an argmax, and the chosen ids fed back; ids [N, K] come back once per block.

    On CUDA the block is captured once as a CUDA graph and replayed: a character then costs no
    kernel launches from Python and no host sync (eagerly, a 3-layer step is ~20 launches and
    batch-1 sampling syncs on every character to read it). Elsewhere, and as the twin the graph is
    tested against, `run` executes the very same operations eagerly. Extra steps past a stop are
    computed and discarded (at most K - 1).
    """

    def __init__(self, st: Stepper, first: Tensor, K: int, graph: bool):
        self.st, self.K = st, K
        self.cur = first.clone()  # [N] int64: the id fed to the next step
        self.bias = st.bh.expand(K, st.N, st.V).clone()  # [K, N, V]: step k's head bias
        self.ids = torch.empty(st.N, K, dtype=torch.long, device=first.device)  # [N, K] chosen ids
        self.graph = self._capture() if graph else None

    def _body(self) -> None:
        st, cur = self.st, self.cur
        for k in range(self.K):
            logits = st.step(cur, head_bias=self.bias[k])
            torch.argmax(logits, dim=-1, out=cur)  # the step has read cur already
            self.ids[:, k].copy_(cur)

    def _capture(self):
        """Record _body into a CUDA graph. Warm-up and capture must not advance the state, so the
        state is saved first and put back after (capturing runs nothing; the warm-up does)."""
        st = self.st
        saved = [t.clone() for t in (st.S, st.C, self.cur)]
        side = torch.cuda.Stream(device=self.cur.device)
        side.wait_stream(torch.cuda.current_stream(self.cur.device))
        with torch.cuda.stream(side):
            self._body()  # warm-up on a side stream, as CUDA graph capture requires (cuBLAS workspaces)
        torch.cuda.current_stream(self.cur.device).wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            self._body()
        for t, v in zip((st.S, st.C, self.cur), saved):
            t.copy_(v)
        st.steps = 0
        return g

    def run(self, noise: Tensor | None) -> Tensor:
        """K more steps. noise: their Gumbel noise [K, N, V] (None: greedy) -> ids [N, K] (a buffer
        overwritten by the next call)."""
        if noise is not None:
            torch.add(noise, self.st.bh, out=self.bias)
        if self.graph is not None:
            self.graph.replay()
        else:
            self._body()
        self.st.steps += self.K if self.graph is not None else 0  # eager steps count themselves
        return self.ids


def read_prime(model, ids: Sequence[int] | np.ndarray, state: tuple[Tensor, ...] | None = None,
               chunk: int = PRIME_CHUNK) -> tuple[Tensor, ...]:
    """Run ids (a prime, [P]) through the model's recurrent layers once, in chunks -> the state
    (tuple of [L, 1, H]). Uses the fused module (fast over many characters); no head."""
    dev = model.head.weight.device
    state = state if state is not None else model.init_state(1, device=dev)
    ids = np.asarray(ids, dtype=np.int64)
    for s in range(0, len(ids), chunk):
        x = torch.from_numpy(ids[s:s + chunk]).to(dev)[None]
        _, state = model.recurrent(model.embed(x), state)
    return state


def start_id(vocab: Vocab) -> int:
    """What an empty prime starts from: <eot> (the start of a new document/record) when the
    vocabulary has it, else a newline."""
    return vocab.eot_id if vocab.eot_id is not None else int(vocab.encode("\n")[0])


# ----------------------------------------------------------------------------- text and stopping
class RowText:
    """Turns one row's generated ids into text as they come, and decides when the row ends.

    Byte units decode incrementally (codecs), so a multi-byte UTF-8 character appears, whole, when
    its last byte arrives. feed(ids) -> the newly visible text; `reason` becomes "eot" or "stop"
    when the row has ended (later ids are ignored); finish() flushes an incomplete byte sequence.
    The text is kept as a list of pieces (joined once, at the end) plus, when there are stop
    strings, a short tail to search: no step costs more than the step before it.
    """

    def __init__(self, vocab: Vocab, stop: Sequence[str] = (), stop_at_eot: bool = True):
        self.symbols, self.stop = vocab.symbols, tuple(stop)
        self.keep = max((len(x) for x in self.stop), default=1) - 1  # tail length a stop can start in
        self.eot = vocab.eot_id if stop_at_eot else None
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace") if vocab.units == "byte" else None
        self.parts: list[str] = []
        self.tail = ""
        self.ids: list[int] = []
        self.reason: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def _piece(self, i: int) -> str:
        if self.decoder is None:
            return self.symbols[i]
        if i < 256:
            return self.decoder.decode(bytes((i,)))
        return self.decoder.decode(b"", final=True) + EOT  # <eot> kept (not stopping at it)

    def feed(self, ids: Iterable[int]) -> str:
        new = []
        for i in ids:
            if self.reason is not None:
                break
            if i == self.eot:
                self.reason = "eot"
                if self.decoder is not None:
                    new.append(self.decoder.decode(b"", final=True))
                break
            self.ids.append(i)
            piece = self._piece(i)
            if self.stop and piece:
                piece = self._check_stop(piece)
            new.append(piece)
        out = "".join(new)
        if out:
            self.parts.append(out)
        return out

    def _check_stop(self, piece: str) -> str:
        """Search the stops in (tail + piece); any occurrence ends in this piece, since earlier ones
        were caught before. Returns the piece, cut after the first stop found."""
        window = self.tail + piece
        ends = [p + len(x) for x in self.stop if (p := window.find(x)) >= 0]
        if ends:
            self.reason = "stop"
            return piece[:min(ends) - len(self.tail)]
        self.tail = window[len(window) - self.keep:] if self.keep else ""
        return piece

    def finish(self) -> str:
        """End the row (length reached): flush the byte decoder -> any last visible text."""
        if self.reason is None:
            self.reason = "length"
            if self.decoder is not None:
                tail = self.decoder.decode(b"", final=True)
                if tail:
                    self.parts.append(tail)
                return tail
        return ""

    def sample(self) -> Sample:
        return Sample(text=self.text, ids=list(self.ids), stop_reason=self.reason or "length")


CHECK_EVERY = 32  # batched generation looks at the rows' text (stops, <eot>) every this many steps


def _prepare(model, vocab: Vocab, prime_ids: Sequence[int] | np.ndarray, opts: SampleOptions) -> tuple[list[int], int]:
    opts.validate()
    cfg = model.cfg
    for c in opts.clamp:
        check_clamp(c, cfg.cell, cfg.num_layers, cfg.hidden_size)
    prime = [int(i) for i in np.asarray(prime_ids, dtype=np.int64).tolist()]
    bad = [i for i in prime if not 0 <= i < cfg.vocab_size]
    if bad:
        raise CharlstmError(f"prime id {bad[0]} is outside the vocabulary (size {cfg.vocab_size})")
    return prime, (opts.seed if opts.seed is not None else fresh_seed())


NUMPY_MAX_MATRIX = 384 * 1024  # weight elements; see Stepper.numpy_sized
SMALL_STEP_MACS = 4_000_000  # below this many multiply-adds per step, one CPU thread is fastest


@contextmanager
def cpu_threads(n: int | None):
    """Run a block with n torch CPU threads (None: leave as is)."""
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def step_threads(model, batch: int) -> int | None:
    """Threads for generation on the CPU: one when a step is small (a few small matmuls, where
    OpenMP's fork/join costs more than it saves) or when other processes already keep the cores
    busy (OpenMP threads then wait on each other for whole scheduler slices: measured 5-40x
    slower on a loaded 2-core machine); otherwise torch's setting."""
    if model.head.weight.device.type != "cpu":
        return None
    macs = batch * sum(p.numel() for n, p in model.named_parameters() if not n.startswith("embed"))
    return 1 if macs < SMALL_STEP_MACS or cpu_busy() else None


def cpu_busy(load: float | None = None, cores: int | None = None) -> bool:
    """Whether other processes already keep (nearly) every core busy: the 1-minute load average
    (`load`, default: now) above the number of cores (default: this machine's) minus one (this
    process's own share)."""
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # no load average on this platform
            return False
    return load > (cores or os.cpu_count() or 1) - 1


def generate(model, vocab: Vocab, prime_ids: Sequence[int] | np.ndarray, opts: SampleOptions,
             on_text: Callable[[str], None] | None = None, threads: int | None | str = "auto",
             blocks: bool | None = None) -> Generation:
    """Generate opts.num_samples continuations of the prime together, as one batch.

    model: a CharRNN (eval mode). prime_ids: [P] ids (may be empty: start from `start_id`).
    on_text: called with each newly visible piece of text as it is generated (one sample only).
    threads: CPU threads while generating ("auto": see `step_threads`; None: torch's setting;
    a number: that many).
    blocks: generate in BlockSampler blocks (a CUDA graph per block on a GPU); None: on CUDA only.
    Either way the text is the same for the same seed.
    The prime is read once; each generated character is one Stepper step (O(1) work).
    """
    if threads == "auto":
        threads = step_threads(model, opts.num_samples)
    with cpu_threads(threads):
        return _generate(model, vocab, prime_ids, opts, on_text, blocks)


def _generate(model, vocab: Vocab, prime_ids, opts: SampleOptions, on_text, blocks: bool | None = None) -> Generation:
    prime, seed = _prepare(model, vocab, prime_ids, opts)
    N, length = opts.num_samples, opts.length
    dev = model.head.weight.device
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    context = prime or [start_id(vocab)]
    rows = [RowText(vocab, opts.stop, opts.stop_at_eot) for _ in range(N)]
    with torch.inference_mode():
        st = Stepper(model, N, temperature=1.0 if opts.greedy else opts.temperature, unk_id=vocab.unk_id,
                     clamp=opts.clamp)
        if opts.clamp_prime and st.any_clamp:
            for i in context[:-1]:
                st.step(torch.full((N,), i, dtype=torch.long, device=dev))
        elif len(context) > 1:
            st.set_state(read_prime(model, context[:-1]))
        st.steps = 0
        if length == 0:
            return Generation(samples=[r.sample() for r in rows], seed=seed, steps=0, prime_ids=prime)
        first = torch.full((N,), context[-1], dtype=torch.long, device=dev)
        # Without filters the noise rides in the head's bias (one add per block of steps, not per
        # step) and choosing is one argmax; filters need the clean logits, then the noise.
        fold = not opts.greedy and opts.top_k is None and opts.top_p is None
        noise = None if opts.greedy else GumbelNoise((N, st.V), gen, dev, st.logits.dtype)
        biases, j = None, 0

        def step(ids: Tensor) -> Tensor:
            nonlocal biases, j
            if not fold:
                return st.step(ids)
            if biases is None or j == len(biases):
                biases, j = (noise.next_block() + st.bh).unbind(0), 0  # k steps of bias + noise [N, V]
            j += 1
            noise.skip()
            return st.step(ids, head_bias=biases[j - 1])

        def choose(logits: Tensor) -> Tensor:
            if fold:
                return torch.argmax(logits, dim=-1, out=st.nxt)
            return sample_next(logits, top_k=opts.top_k, top_p=opts.top_p, greedy=opts.greedy,
                               gumbel=None if noise is None else noise.next(), out=st.nxt)

        if blocks is None:
            blocks = dev.type == "cuda"
        if blocks and st.plain is not None and not st.any_clamp and (fold or opts.greedy):
            _generate_blocks(st, first, noise, rows, length, on_text, graph=dev.type == "cuda")
            return _finish(rows, on_text, seed, st.steps, prime)
        logits = step(first)
        nxt = st.nxt
        if N == 1:
            row, lnp = rows[0], st.logits_np
            for t in range(length):
                if lnp is not None and (fold or opts.greedy):
                    i = int(lnp.argmax())  # same first-maximum rule as torch.argmax
                else:
                    i = int(choose(logits).item())
                piece = row.feed((i,))
                if piece and on_text is not None:
                    on_text(piece)
                if row.reason is not None or t == length - 1:
                    break
                logits = step(i if lnp is not None else nxt)
        else:
            buf = torch.empty(N, length, dtype=torch.long, device=dev)
            done_to = 0
            for t in range(length):
                choose(logits)
                buf[:, t].copy_(nxt)
                if (t + 1) % CHECK_EVERY == 0 or t == length - 1:
                    chunk = buf[:, done_to:t + 1].tolist()
                    done_to = t + 1
                    for r, ids in zip(rows, chunk):
                        r.feed(ids)
                    if all(r.reason is not None for r in rows):
                        break
                if t == length - 1:
                    break
                logits = step(nxt)
    return _finish(rows, on_text, seed, st.steps, prime)


def _finish(rows: list[RowText], on_text, seed: int, steps: int, prime: list[int]) -> Generation:
    for r in rows:
        tail = r.finish()
        if tail and on_text is not None and len(rows) == 1:
            on_text(tail)
    return Generation(samples=[r.sample() for r in rows], seed=seed, steps=steps, prime_ids=prime)


def _generate_blocks(st: Stepper, first: Tensor, noise: GumbelNoise | None, rows: list[RowText], length: int,
                     on_text, graph: bool) -> None:
    """The generation loop in BlockSampler blocks of one noise block each (so the noise, and so the
    text, is exactly that of the step-by-step loop); the rows read each block's ids at once."""
    K = noise.block if noise is not None else 64
    bs = BlockSampler(st, first, K, graph)
    done = 0
    while done < length:
        ids = bs.run(noise.next_block() if noise is not None else None)
        if noise is not None:
            noise.skip(K)
        take = min(K, length - done)
        for r, chunk in zip(rows, ids[:, :take].tolist()):
            piece = r.feed(chunk)
            if piece and on_text is not None and len(rows) == 1:
                on_text(piece)
        done += take
        if all(r.reason is not None for r in rows):
            break


def naive_generate(model, vocab: Vocab, prime_ids: Sequence[int] | np.ndarray, opts: SampleOptions) -> Generation:
    """The slow, obvious twin of `generate`: at every step, run the full model over the whole
    context from the start and sample from the last position. Same seed -> same text as
    `generate` (up to float rounding). O(T) work per character: for tests and benchmarks only."""
    prime, seed = _prepare(model, vocab, prime_ids, opts)
    if opts.clamp:
        raise ValueError("naive_generate does not clamp")
    N, length = opts.num_samples, opts.length
    dev = model.head.weight.device
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    rows = [RowText(vocab, opts.stop, opts.stop_at_eot) for _ in range(N)]
    ctx = torch.tensor(prime or [start_id(vocab)], dtype=torch.long, device=dev)[None].expand(N, -1)
    noise = GumbelNoise((N, model.cfg.vocab_size), gen, dev, model.head.weight.dtype)
    steps = 0
    with torch.inference_mode():
        for t in range(length):
            logits, _ = model(ctx)
            steps += 1
            lg = temper(logits[:, -1], 1.0 if opts.greedy else opts.temperature, vocab.unk_id)
            nxt = sample_next(lg, top_k=opts.top_k, top_p=opts.top_p, greedy=opts.greedy,
                              gumbel=None if opts.greedy else noise.next())
            for r, i in zip(rows, nxt.tolist()):
                r.feed((i,))
            if all(r.reason is not None for r in rows):
                break
            ctx = torch.cat([ctx, nxt[:, None]], 1)
    for r in rows:
        r.finish()
    return Generation(samples=[r.sample() for r in rows], seed=seed, steps=steps, prime_ids=prime)
