"""Explicit recurrent cells on PyTorch's fused-module parameter layout, exposing every gate.

The fused modules (nn.LSTM/GRU/RNN, cuDNN/oneDNN kernels) are what we train with; they return only
the outputs. These explicit twins run the same weights one step at a time and return every
intermediate, which is what tracing needs, and they implement the peephole LSTM that no fused
module offers. Layout (per layer k): weight_ih [G*H, In], weight_hh [G*H, H], bias_ih [G*H],
bias_hh [G*H], with gate blocks LSTM i, f, g, o (G=4); GRU r, z, n (G=3); RNN (G=1). The peephole
LSTM adds peephole [3, H]: diagonal weights from the cell to the i, f and o gates.

Equations (N batch, H hidden):
  LSTM      i=σ(.), f=σ(.), g=tanh(.), o=σ(.), c' = f⊙c + i⊙g, h' = o⊙tanh(c')
  peephole  i, f also read c (p_i⊙c, p_f⊙c); o reads the new cell c' (p_o⊙c')
  GRU       r=σ(.), z=σ(.), n=tanh(W_in x + b_in + r⊙(W_hn h + b_hn)), h' = (1-z)⊙n + z⊙h
  RNN       h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
"""
from __future__ import annotations

import torch
from torch import Tensor

# What each cell exposes per step, in the order traces store them. The state tuple of a cell is
# (h, c) for LSTM-like cells and (h,) for GRU/RNN.
KINDS: dict[str, tuple[str, ...]] = {
    "lstm": ("h", "c", "i", "f", "g", "o"),
    "peephole": ("h", "c", "i", "f", "g", "o"),
    "gru": ("h", "r", "z", "n"),
    "rnn": ("h",),
}
GATE_COUNT = {"lstm": 4, "peephole": 4, "gru": 3, "rnn": 1}


def state_size(cell: str) -> int:
    """How many tensors make up one layer's state: 2 for LSTM-like cells, else 1."""
    return 2 if cell in ("lstm", "peephole") else 1


def lstm_step(x: Tensor, h: Tensor, c: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
              b_hh: Tensor | None, peephole: Tensor | None = None) -> dict[str, Tensor]:
    """One LSTM step. x [N, In], h/c [N, H] -> {"h", "c", "i", "f", "g", "o"} each [N, H]."""
    pre = x @ w_ih.t() + h @ w_hh.t()
    if b_ih is not None:
        pre = pre + b_ih + b_hh
    pi, pf, pg, po = pre.chunk(4, dim=-1)
    if peephole is not None:
        pi = pi + peephole[0] * c
        pf = pf + peephole[1] * c
    i, f, g = torch.sigmoid(pi), torch.sigmoid(pf), torch.tanh(pg)
    c_new = f * c + i * g
    if peephole is not None:
        po = po + peephole[2] * c_new
    o = torch.sigmoid(po)
    h_new = o * torch.tanh(c_new)
    return {"h": h_new, "c": c_new, "i": i, "f": f, "g": g, "o": o}


def gru_step(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
             b_hh: Tensor | None) -> dict[str, Tensor]:
    """One GRU step (PyTorch's formulation). x [N, In], h [N, H] -> {"h", "r", "z", "n"} each [N, H]."""
    gi = x @ w_ih.t()
    gh = h @ w_hh.t()
    if b_ih is not None:
        gi = gi + b_ih
        gh = gh + b_hh
    ir, iz, in_ = gi.chunk(3, dim=-1)
    hr, hz, hn = gh.chunk(3, dim=-1)
    r = torch.sigmoid(ir + hr)
    z = torch.sigmoid(iz + hz)
    n = torch.tanh(in_ + r * hn)
    return {"h": (1 - z) * n + z * h, "r": r, "z": z, "n": n}


def rnn_step(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
             b_hh: Tensor | None) -> dict[str, Tensor]:
    """One tanh-RNN step. x [N, In], h [N, H] -> {"h"} [N, H]."""
    pre = x @ w_ih.t() + h @ w_hh.t()
    if b_ih is not None:
        pre = pre + b_ih + b_hh
    return {"h": torch.tanh(pre)}


def step(cell: str, x: Tensor, state: tuple[Tensor, ...], p: dict[str, Tensor]) -> dict[str, Tensor]:
    """One step of `cell` for one layer with parameters p (keys weight_ih, weight_hh, bias_ih,
    bias_hh[, peephole]). state is (h, c) or (h,), each [N, H]. Returns the KINDS[cell] dict."""
    if cell in ("lstm", "peephole"):
        return lstm_step(x, state[0], state[1], p["weight_ih"], p["weight_hh"], p.get("bias_ih"),
                         p.get("bias_hh"), p.get("peephole"))
    if cell == "gru":
        return gru_step(x, state[0], p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"))
    if cell == "rnn":
        return rnn_step(x, state[0], p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"))
    raise ValueError(f"unknown cell {cell}")


def unroll(cell: str, x: Tensor, state: tuple[Tensor, ...], p: dict[str, Tensor],
           record: tuple[str, ...] = ()) -> tuple[Tensor, tuple[Tensor, ...], dict[str, Tensor]]:
    """Run one layer over time, the slow obvious way.

    x [N, T, In], state tuple of [N, H] -> (outputs h [N, T, H], final state, recorded) where
    recorded maps each requested kind in `record` to [N, T, H].
    """
    outs, rec = [], {k: [] for k in record}
    n_state = state_size(cell)
    for t in range(x.shape[1]):
        r = step(cell, x[:, t], state, p)
        state = (r["h"], r["c"]) if n_state == 2 else (r["h"],)
        outs.append(r["h"])
        for k in record:
            rec[k].append(r[k])
    return torch.stack(outs, 1), state, {k: torch.stack(v, 1) for k, v in rec.items()}
