"""Checking a unit by intervention: the model run with one unit forced at every step, and
`charlstm neurons ablate` (the change in bits per character where a feature is active and where not).

* `explicit_losses`: the model run layer by layer with the explicit cells (`charlstm.cells.step` on
  `model.layer_params`), optionally with one unit forced to a value at every step, giving the loss
  of every prediction. Unablated it equals the fused model (tests hold it to that); ablated it is
  the intervention the fused kernels cannot do.
* `ablate`: bits per character where the feature is active and where it is not, before and after.

A forced unit is a charlstm.units.Clamp (the same object that steers sampling).
Owns: interventions on the explicit cells and the ablation table. Does not know: the command line.
Shapes: T characters, H hidden units, L layers, V vocabulary.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from charlstm import cells
from charlstm.errors import CharlstmError
from charlstm.inputs import Input
from charlstm.neurons.find import feature_values
from charlstm.neurons.features import Feature
from charlstm.runtime import one_thread
from charlstm.trace import trace_ids
from charlstm.units import Clamp, check_unit, parse_clamp
from charlstm.vocab import Vocab

LN2 = math.log(2.0)


def _gates_pre(x: Tensor, h: Tensor, p: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """The two halves of the pre-activations, (x W_ih' + b_ih, h W_hh' + b_hh), each [N, G*H]."""
    gi, gh = x @ p["weight_ih"].t(), h @ p["weight_hh"].t()
    if p.get("bias_ih") is not None:
        gi, gh = gi + p["bias_ih"], gh + p["bias_hh"]
    return gi, gh


def _intervene(cell: str, r: dict[str, Tensor], x: Tensor, state: tuple[Tensor, ...], p: dict[str, Tensor],
               kind: str, sel: Tensor, value: float | Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Redo one step with kind[sel] forced to value: r is `cells.step(cell, x, state, p)`; what depends
    on the forced value is recomputed from it. sel: bool [N, H] (rows and units); value: a number or
    [N, H] (each selected entry's own value).
    Returns (output h [N, H], new state)."""
    v = torch.as_tensor(value, dtype=x.dtype, device=x.device)

    def force(t: Tensor) -> Tensor:
        return torch.where(sel, v, t)

    if cell == "rnn":
        h = force(r["h"])
        return h, (h,)
    if cell == "gru":
        if kind == "h":
            h = force(r["h"])
            return h, (h,)
        rg, z, n = r["r"], r["z"], r["n"]
        if kind == "r":
            rg = force(rg)
            gi, gh = _gates_pre(x, state[0], p)
            n = torch.tanh(gi.chunk(3, -1)[2] + rg * gh.chunk(3, -1)[2])
        elif kind == "z":
            z = force(z)
        else:
            n = force(n)
        h = (1 - z) * n + z * state[0]
        return h, (h,)
    # LSTM and peephole: i, f, g do not depend on the new cell; o does for the peephole cell.
    i, f, g, o, c = r["i"], r["f"], r["g"], r["o"], r["c"]
    if kind == "h":
        h = force(r["h"])
        return h, (h, c)
    if kind in ("i", "f", "g"):
        i, f, g = (force(t) if k == kind else t for k, t in (("i", i), ("f", f), ("g", g)))
        c = f * state[1] + i * g
    elif kind == "c":
        c = force(c)
    if cell == "peephole" and kind != "o":
        gi, gh = _gates_pre(x, state[0], p)
        o = torch.sigmoid((gi + gh).chunk(4, -1)[3] + p["peephole"][2] * c)
    if kind == "o":
        o = force(o)
    return o * torch.tanh(c), (o * torch.tanh(c), c)


@torch.inference_mode()
def explicit_losses(model, ids: np.ndarray, interventions: Sequence[Clamp | Sequence[Clamp] | None] = (None,),
                    state=None) -> np.ndarray:
    """Run the model over ids [T] with the explicit cells, layer by layer (`cells.step` one step at a
    time, on `model.layer_params`), once per entry of `interventions` (None: unablated; a Clamp; or
    several Clamps held together, of one kind per layer), all in one batch. Returns the loss of every prediction in nats, float64 [len(interventions), T - 1]: row k,
    column t is -log p(ids[t+1] | ids[:t+1]) under intervention k. state: optional initial state (as
    the model takes it, [L, 1, H] each), else where the model's texts start (charlstm.model.begin;
    a record model also reads each <eot> from the zero state)."""
    ids_t = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    if len(ids_t) < 2:
        raise CharlstmError("at least 2 characters are needed to score a prediction")
    was_training = model.training
    model.eval()
    cpu = model.head.weight.device.type == "cpu"
    try:
        with one_thread() if cpu else contextlib.nullcontext():
            return _explicit_run(model, ids_t, interventions, state)
    finally:
        model.train(was_training)


def _rows(interventions: Sequence[Clamp | Sequence[Clamp] | None]) -> list[tuple[Clamp, ...]]:
    """Each entry as a tuple of clamps; raises CharlstmError when one entry forces two kinds of one
    layer (each layer forces one kind per row)."""
    out = []
    for iv in interventions:
        row = () if iv is None else (iv,) if isinstance(iv, Clamp) else tuple(iv)
        kinds = {}
        for c in row:
            if kinds.setdefault(c.layer, c.kind) != c.kind:
                raise CharlstmError(f"clamps held together must be of one kind per layer; got {kinds[c.layer]} and "
                                    f"{c.kind} in layer {c.layer}")
        out.append(row)
    return out


def _explicit_run(model, ids_t: Tensor, interventions: Sequence[Clamp | Sequence[Clamp] | None], state) -> np.ndarray:
    """The body of `explicit_losses` (same arguments, ids as a tensor [T])."""
    cfg = model.cfg
    rows = _rows(interventions)
    T, N = len(ids_t), len(rows)
    w = model.head.weight
    dev = w.device
    x = model.embed(ids_t.to(dev))[None].expand(N, T, -1)  # [N, T, E]
    n_state = cells.state_size(cfg.cell)
    if state is None:
        state, _ = model.begin(1)
    resets = set((ids_t == cfg.reset_id).nonzero().flatten().tolist()) if cfg.reset_id is not None else set()
    for layer in range(cfg.num_layers):
        p = model.layer_params(layer)
        st = tuple(s[layer].expand(N, -1).contiguous() for s in state)
        # Per kind forced in this layer: (kind, bool [N, H] the rows' units, values [N, H], bool [N, 1]
        # the rows). Each row forces at most one kind per layer, so all of a kind go in one call.
        by_kind: dict[str, tuple[Tensor, Tensor]] = {}
        for k, row in enumerate(rows):
            for iv in row:
                if iv.layer != layer:
                    continue
                if iv.kind not in by_kind:
                    by_kind[iv.kind] = (torch.zeros(N, cfg.hidden_size, dtype=torch.bool, device=dev),
                                        torch.zeros(N, cfg.hidden_size, dtype=x.dtype, device=dev))
                sel, val = by_kind[iv.kind]
                sel[k, iv.unit] = True
                val[k, iv.unit] = iv.value
        sels = [(kind, sel, val, sel.any(1, keepdim=True)) for kind, (sel, val) in by_kind.items()]
        outs = []
        for t in range(T):
            if t in resets:
                st = tuple(torch.zeros_like(s) for s in st)
            xt = x[:, t]
            r = cells.step(cfg.cell, xt, st, p)
            h, new = r["h"], ((r["h"], r["c"]) if n_state == 2 else (r["h"],))
            # Each intervention changes only its own batch row; the other rows keep the plain step.
            for kind, sel, val, forced in sels:
                h_k, st_k = _intervene(cfg.cell, r, xt, st, p, kind, sel, val)
                h = torch.where(forced, h_k, h)
                new = tuple(torch.where(forced, a, b) for a, b in zip(st_k, new))
            st = new
            outs.append(h)
        x = torch.stack(outs, 1)  # [N, T, H]: the next layer's input
    logp = torch.log_softmax(model.head(x[:, :-1]).double(), dim=-1)  # [N, T-1, V]
    tgt = ids_t[1:].to(dev)[None, :, None].expand(N, -1, 1)
    return (-logp.gather(-1, tgt)[..., 0]).cpu().numpy()


@torch.inference_mode()
def fused_losses(model, ids: np.ndarray) -> np.ndarray:
    """The same losses from the fused model (what training and sampling run): float64 [T - 1]."""
    ids_t = torch.as_tensor(np.asarray(ids, dtype=np.int64))[None].to(model.head.weight.device)
    was_training = model.training
    model.eval()
    try:
        logits, _ = model.read(ids_t, model.begin(1)[0])
    finally:
        model.train(was_training)
    logp = torch.log_softmax(logits[0, :-1].double(), -1)
    return (-logp.gather(-1, ids_t[0, 1:, None])[:, 0]).cpu().numpy()


# ----------------------------------------------------------------------------------------------
# Ablation


@dataclass
class AblationGroup:
    """Bits per character of the predictions made after characters in one group."""

    name: str
    count: int
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before

    def to_json(self) -> dict:
        """count, before, after and change (the name is the key it is stored under)."""
        return {"count": self.count, "before": self.before, "after": self.after, "change": self.change}


@dataclass
class AblationResult:
    """The outcome of `ablate`. groups: "active" (feature on / non-zero at the character read
    before the prediction), "inactive" and "all". fused_bpc: the fused model's bpc on the same
    predictions (equal to groups["all"].before up to float rounding)."""

    intervention: Clamp
    mode: str
    feature: Feature
    source: str
    groups: dict[str, AblationGroup]
    fused_bpc: float
    losses: np.ndarray = field(repr=False)  # [2, T-1] nats: before, after
    active: np.ndarray = field(repr=False)  # bool [T-1]


def ablate(model, vocab: Vocab, inp: Input, unit: str | Clamp, feature: str | Feature, mode: str = "zero",
           value: float | None = None) -> AblationResult:
    """Force `unit` ("layer1.c:37", or a Clamp whose value is ignored) at every step and measure the change in bits per character,
    separately where the feature is active (non-zero at the character just read) and where not.

    mode: "zero" (value 0), "mean" (the unit's mean over this input, unablated) or "value" (the
    given value). Runs the explicit cells (`explicit_losses`) for both the clean and the ablated
    model in one batch, and the fused model once as a check.
    """
    if mode not in ("zero", "mean", "value"):
        raise CharlstmError(f"unknown ablation mode '{mode}'; choose zero, mean or value")
    if (mode == "value") != (value is not None):
        raise CharlstmError("give --value exactly when the mode is 'value'" if mode == "value" else
                            f"--value is only used with --mode value (mode is '{mode}')")
    iv = unit if isinstance(unit, Clamp) else parse_clamp(unit, default=0.0)
    check_unit(iv, model.cfg.cell, model.cfg.num_layers, model.cfg.hidden_size)
    feat, values, kind = feature_values(feature, inp.symbols)
    if mode == "mean":
        tr = trace_ids(model, vocab, inp.ids, layers=[iv.layer], kinds=[iv.kind])
        value = float(tr.unit(iv.key, iv.unit).mean())
    iv = Clamp(iv.layer, iv.kind, iv.unit, float(value or 0.0))
    losses = explicit_losses(model, inp.ids, [None, iv])
    fused = float(fused_losses(model, inp.ids).mean() / LN2)
    active = (values[:-1] > 0.5) if kind == "binary" else (values[:-1] != 0)
    groups = {}
    for name, sel in (("active", active), ("inactive", ~active), ("all", np.ones_like(active))):
        cnt = int(sel.sum())
        b = float(losses[0, sel].mean() / LN2) if cnt else float("nan")
        a = float(losses[1, sel].mean() / LN2) if cnt else float("nan")
        groups[name] = AblationGroup(name, cnt, b, a)
    return AblationResult(iv, mode, feat, inp.source, groups, fused, losses, active)


def format_ablation(res: AblationResult) -> str:
    """The table `neurons ablate` prints."""
    iv = res.intervention
    how = {"zero": "set to 0", "mean": f"set to its mean {iv.value:+.4f}", "value": f"set to {iv.value:+g}"}[res.mode]
    lines = [f"ablating {iv.name} ({how}) at every step; {res.groups['all'].count:,} predictions on {res.source}",
             f"feature {res.feature.name}: active = "
             + ("on" if res.feature.kind == "binary" else "non-zero") + " at the character just read",
             f"{'':<9} {'predictions':>11} {'bpc before':>10} {'bpc after':>10} {'change':>8}"]
    for g in res.groups.values():
        if g.count:
            lines.append(f"{g.name:<9} {g.count:>11,} {g.before:>10.4f} {g.after:>10.4f} {g.change:>+8.4f}")
        else:
            lines.append(f"{g.name:<9} {0:>11} {'-':>10} {'-':>10} {'-':>8}")
    diff = abs(res.groups["all"].before - res.fused_bpc)
    lines.append(f"check: the unablated explicit run gives {res.groups['all'].before:.4f} bpc, the fused model "
                 f"{res.fused_bpc:.4f} (difference {diff:.1e})")
    return "\n".join(lines)
