"""The whole model, one character at a time: the hand-fused step that sampling runs.

Why a hand-fused step rather than the fused module with T=1: on CPU, nn.LSTM re-prepares its
oneDNN primitive (and reorders the weights) on every call, which measured 3-20x slower than two
matmuls per layer at batch 1 (docs/benchmarks.md, "Sampling"). The step works on preprocessed
weights: the embedding and layer 0's input projection are folded into one [V, G*H] table (a row
gather instead of a matmul), gate blocks are reordered so that the sigmoid gates are contiguous, the
temperature is folded into the head, and every buffer is preallocated so a step allocates nothing.

Steering: a `Clamp` (charlstm.units) holds a unit at a value. Any kind the cell exposes (LSTM/peephole
h c i f g o; GRU h r z n; RNN h) can be held: gates are overwritten right after their activation,
before they are used, and states right after they are computed, so a clamped h of layer l is also
the input of layer l+1 at that step. A `StateEdit` (charlstm.units; made by charlstm.dictionary: a
dictionary feature held at a value along its decoder direction, or the dictionary's reconstruction
in place of the state) acts on h or c at the same point, after the unit clamps of that state.

Owns: `prepared_weights`, `Stepper` (any cell, with clamps) and `BlockSampler` (K steps at once, a
CUDA graph on a GPU). Does not know: text, stopping rules or how the next id is chosen.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from charlstm import cells
from charlstm.units import Clamp, check_unit, is_edit

NUMPY_MAX_MATRIX = 384 * 1024  # weight elements; see Stepper.numpy_sized


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
    (see the module docstring) apply while `clamping` is True. A model of records reads its reset
    id (<eot>) from the zero state (charlstm.model, "Records"): a row fed it is zeroed first. Use
    under torch.inference_mode().
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
        self.reset_id = cfg.reset_id
        for c in clamp:
            check_unit(c, cell, L, H)
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
        self.keep = torch.empty(N, dtype=torch.bool, device=dev)  # rows not reading the reset id
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
        # clamps[layer][kind] = (unit indices [k], values [N, k]); edits[layer][kind] = [StateEdit, ...]
        self.clamps: list[dict[str, tuple[Tensor, Tensor]]] = [{} for _ in range(L)]
        self.edits: list[dict[str, list]] = [{} for _ in range(L)]
        for e in clamp:
            if is_edit(e):
                self.edits[e.layer].setdefault(e.kind, []).append(e)
        clamp = [c for c in clamp if not is_edit(c)]
        for layer in range(L):
            for kind in cells.KINDS[cell]:
                cs = {c.unit: c.value for c in clamp if c.layer == layer and c.kind == kind}  # the last one wins
                if cs:
                    idx = torch.tensor(sorted(cs), device=dev)
                    val = torch.tensor([cs[u] for u in sorted(cs)], device=dev, dtype=dt).expand(N, -1).contiguous()
                    self.clamps[layer][kind] = (idx, val)
        self.any_clamp = any(self.clamps) or any(self.edits)
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
        for e in self.edits[layer].get(kind, ()):
            e.apply(t)

    def _reset_rows(self, ids: Tensor | int) -> None:
        """Zero the state of the rows about to read the reset id (no host sync: CUDA-graph safe)."""
        if isinstance(ids, int):
            if ids == self.reset_id:
                self.S.zero_()
                if self.C is not None:
                    self.C.zero_()
            return
        keep = torch.ne(ids, self.reset_id, out=self.keep)
        self.S.mul_(keep[:, None])
        if self.C is not None:
            self.C.mul_(keep[None, :, None])

    def step(self, ids: Tensor | int, head_bias: Tensor | None = None) -> Tensor:
        """Feed one id per row (ids [N] int64, or a Python int when N == 1) -> next-symbol logits
        [N, V] (internal buffer).

        head_bias [N, V]: use instead of the head's (tempered, <unk>-masked) bias, e.g. that bias
        plus this step's Gumbel noise. An int id skips the gather: its table row is a ready view."""
        self.steps += 1
        if self.reset_id is not None:
            self._reset_rows(ids)
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


