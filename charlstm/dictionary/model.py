"""The dictionary: a TopK sparse autoencoder over one layer's states (h or c) of a character model.

For a state x [H] (F features, k of them active per state):

    u   = (x - center) / scale                 the state normalised: the states' mean removed, and
                                               divided by their RMS distance from it (E|u|^2 = 1)
    pre = W_enc (u - b_dec) + b_enc            [F]
    z   = TopK_k(pre)                          code "relu": the k largest pre, ReLU'd, others 0
                                               code "signed": the k largest |pre|, sign kept, others 0
    x^  = center + scale * (W_dec^T z + b_dec) the reconstruction; rows of W_dec have norm 1

So feature f's decoder direction in state space is scale * W_dec[f], and its activation z_f is the
length along it in units of `scale` (the typical distance of a state from the mean).

Why TopK (Gao et al., "Scaling and evaluating sparse autoencoders", 2024) rather than the L1 penalty:
the number of active features is k exactly (no coefficient to tune against the loss), activations
are not shrunk towards zero by a penalty, and with the auxiliary loss on dead features few die. The
"signed" code is ours: a variable that runs both ways from the mean (a count, an indentation depth)
is one signed feature instead of a non-negative pair (docs/experiments.md, "Dictionaries").

Owns: the module, its encode/decode (fast, and `encode_slow`, the per-row obvious twin), the
tensors it is stored as and the per-feature numbers derived from them. Does not know: files, models
or training (charlstm.dictionary.store, .train).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from charlstm.errors import CharlstmError
from charlstm.units import STATE_KINDS

CODES = ("relu", "signed")
#: The tensors of a dictionary, in the order they are listed in docs/formats.md.
TENSORS = ("W_enc", "b_enc", "W_dec", "b_dec", "center", "scale")


def check_shape(size: int, k: int, code: str, kind: str, hidden: int) -> None:
    """Raise CharlstmError unless these make a dictionary: 1 <= k <= size, a known code, a state kind."""
    if size < 1:
        raise CharlstmError(f"--size must be at least 1 feature, got {size}")
    if not 1 <= k <= size:
        raise CharlstmError(f"--k must be between 1 and the number of features ({size}), got {k}")
    if code not in CODES:
        raise CharlstmError(f"unknown code '{code}'; choose one of {', '.join(CODES)}")
    if kind not in STATE_KINDS:
        raise CharlstmError(f"a dictionary reads a state ({' or '.join(STATE_KINDS)}), not '{kind}'")
    if hidden < 1:
        raise CharlstmError(f"a layer of {hidden} units has no states to read")


class Dictionary(nn.Module):
    """A TopK sparse autoencoder (see the module docstring) of `size` features over [hidden] states
    of layer `layer`'s `kind`. `name` names it in specs (dict/NAME:12); `key` is "dict" or
    "dict/NAME" as it appears in rankings (set by charlstm.dictionary.store)."""

    def __init__(self, hidden: int, size: int, k: int, code: str = "relu", layer: int = 0, kind: str = "c",
                 name: str | None = None, seed: int = 0):
        super().__init__()
        check_shape(size, k, code, kind, hidden)
        self.hidden, self.size, self.k, self.code, self.layer, self.kind, self.name = hidden, size, k, code, layer, kind, name
        self.key = "dict" if name is None else f"dict/{name}"
        g = torch.Generator().manual_seed(seed)
        dec = torch.randn(size, hidden, generator=g)
        dec /= dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
        self.W_dec = nn.Parameter(dec)
        self.W_enc = nn.Parameter(dec.clone())  # the encoder starts as the decoder's transpose (Gao et al.)
        self.b_enc = nn.Parameter(torch.zeros(size))
        self.b_dec = nn.Parameter(torch.zeros(hidden))
        self.register_buffer("center", torch.zeros(hidden))
        self.register_buffer("scale", torch.ones(()))

    # -------------------------------------------------------------- the formula
    def normalise(self, x: Tensor) -> Tensor:
        """x [N, H] raw states -> u [N, H]."""
        return (x - self.center) / self.scale

    def pre(self, u: Tensor) -> Tensor:
        """u [N, H] normalised -> pre-activations [N, F]."""
        return torch.addmm(self.b_enc, u - self.b_dec, self.W_enc.t())

    def select(self, pre: Tensor) -> Tensor:
        """pre [N, F] -> the indices [N, k] of the active features (largest pre, or largest |pre|)."""
        return torch.topk(pre.abs() if self.code == "signed" else pre, self.k, dim=1, sorted=False).indices

    def activate(self, pre_sel: Tensor) -> Tensor:
        """The selected pre-activations [N, k] -> their activations (ReLU for the relu code)."""
        return pre_sel if self.code == "signed" else torch.relu(pre_sel)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x [N, H] raw states -> (values [N, k], indices [N, k] int64): the sparse code. A relu code
        may hold zeros among its k values (a selected feature whose pre-activation was negative)."""
        pre = self.pre(self.normalise(x))
        idx = self.select(pre)
        return self.activate(pre.gather(1, idx)), idx

    def dense(self, x: Tensor) -> Tensor:
        """x [N, H] -> activations [N, F] (zeros outside the code)."""
        vals, idx = self.encode(x)
        return torch.zeros(x.shape[0], self.size, dtype=vals.dtype, device=vals.device).scatter_(1, idx, vals)

    def decode_normalised(self, vals: Tensor, idx: Tensor) -> Tensor:
        """A sparse code -> the reconstruction in normalised space, u^ [N, H]."""
        return torch.einsum("nk,nkh->nh", vals, self.W_dec[idx]) + self.b_dec

    def decode(self, vals: Tensor, idx: Tensor) -> Tensor:
        """A sparse code (values [N, k], indices [N, k]) -> raw reconstruction x^ [N, H]."""
        return self.center + self.scale * self.decode_normalised(vals, idx)

    def reconstruct(self, x: Tensor) -> Tensor:
        """x [N, H] -> x^ [N, H]."""
        return self.decode(*self.encode(x))

    def directions(self) -> Tensor:
        """Every feature's decoder direction in state space, scale * W_dec: [F, H]."""
        return self.scale * self.W_dec

    # -------------------------------------------------------------- numpy conveniences (readers)
    @torch.no_grad()
    def codes(self, states: np.ndarray, batch: int = 8192) -> tuple[np.ndarray, np.ndarray]:
        """states [T, H] (numpy) -> (values float32 [T, k], indices int32 [T, k]), in batches."""
        states = np.asarray(states)
        if states.ndim != 2 or states.shape[1] != self.hidden:
            raise CharlstmError(f"{self.key} reads states of {self.hidden} units, got shape {tuple(states.shape)}")
        vals = np.empty((len(states), self.k), np.float32)
        idx = np.empty((len(states), self.k), np.int32)
        dev, dt = self.W_enc.device, self.W_enc.dtype
        for s in range(0, len(states), batch):
            x = torch.as_tensor(np.asarray(states[s:s + batch], dtype=np.float32)).to(dev, dt)
            v, i = self.encode(x)
            vals[s:s + len(x)] = v.float().cpu().numpy()
            idx[s:s + len(x)] = i.cpu().numpy()
        return vals, idx

    def activations(self, states: np.ndarray) -> np.ndarray:
        """states [T, H] -> every feature's activation, float32 [T, F] (dense; mostly zeros)."""
        vals, idx = self.codes(states)
        out = np.zeros((len(states), self.size), np.float32)
        np.put_along_axis(out, idx.astype(np.int64), vals, axis=1)
        return out

    # -------------------------------------------------------------- the slow, obvious twin
    @torch.no_grad()
    def encode_slow(self, x: Tensor) -> Tensor:
        """The definition, one state at a time in float64: normalise, every pre-activation, sort,
        keep the first k (ties to the lower index), ReLU or not -> dense activations [N, F]."""
        W, be, bd = self.W_enc.double(), self.b_enc.double(), self.b_dec.double()
        out = torch.zeros(x.shape[0], self.size, dtype=torch.float64)
        for n in range(x.shape[0]):
            u = (x[n].double() - self.center.double()) / self.scale.double()
            pre = [float(W[f] @ (u - bd) + be[f]) for f in range(self.size)]
            order = sorted(range(self.size), key=lambda f: (-(abs(pre[f]) if self.code == "signed" else pre[f]), f))
            for f in order[:self.k]:
                out[n, f] = pre[f] if self.code == "signed" else max(pre[f], 0.0)
        return out

    # -------------------------------------------------------------- storage
    def tensors(self) -> dict[str, Tensor]:
        """The stored tensors (see TENSORS and docs/formats.md), detached, on the CPU."""
        return {n: getattr(self, n).detach().cpu().contiguous() for n in TENSORS}

    def settings(self) -> dict[str, Any]:
        """What defines the dictionary besides its tensors."""
        return {"layer": self.layer, "kind": self.kind, "hidden": self.hidden, "size": self.size, "k": self.k,
                "code": self.code}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor], settings: dict[str, Any], name: str | None = None) -> "Dictionary":
        """Rebuild from stored tensors and settings; raises CharlstmError when they do not fit."""
        try:
            d = cls(int(settings["hidden"]), int(settings["size"]), int(settings["k"]), str(settings["code"]),
                    int(settings["layer"]), str(settings["kind"]), name=name)
            want = {n: tuple(getattr(d, n).shape) for n in TENSORS}
            got = {n: tuple(tensors[n].shape) for n in TENSORS}
        except (KeyError, TypeError, ValueError) as e:
            raise CharlstmError(f"dictionary {name or ''} is incomplete ({e!r})") from None
        if want != got:
            raise CharlstmError(f"dictionary {name or ''}: tensor shapes {got} do not fit its settings {want}")
        with torch.no_grad():
            for n in TENSORS:
                getattr(d, n).copy_(tensors[n])
        return d.eval()

    def extra_repr(self) -> str:
        return f"{self.key}: layer{self.layer}.{self.kind}, {self.hidden} -> {self.size} features, k={self.k}, {self.code}"


def fvu(x: Tensor | np.ndarray, xhat: Tensor | np.ndarray) -> float:
    """Fraction of variance unexplained: sum |x - x^|^2 / sum |x - mean(x)|^2 over rows [N, H]."""
    x = torch.as_tensor(x, dtype=torch.float64)
    xhat = torch.as_tensor(xhat, dtype=torch.float64)
    sst = float(((x - x.mean(0)) ** 2).sum())
    return float(((x - xhat) ** 2).sum()) / sst if sst > 0 else math.nan
