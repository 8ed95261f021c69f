"""Dictionaries acting on a running model: a feature held at a value, or the reconstruction in place
of the state. Both are `StateEdit`s (charlstm.units): the sampler's Stepper applies them to layer l's
h or c at every step, right after it is computed, so an edited c feeds h, an edited h feeds the
layer above and the head, and both feed the next step.

Holding a feature (`charlstm sample --clamp dict:12=2.0`, `FeatureClamp`). With a = the feature's
activation on the state x as computed (its TopK code, so 0 when it is not among the k active ones)
and d = its decoder direction in state space (scale * W_dec[f]):

    x  <-  x + (value - a) * d

i.e. the state the dictionary would reconstruct with this one activation changed to `value`, plus
the part of x the dictionary does not explain (its reconstruction error, kept). value 0 removes the
feature where it fires and does nothing elsewhere; a value above the feature's usual activations
pushes the state along d at every step. (Only the one feature's coefficient changes; the edited
state is not re-encoded, so the other features' activations are those of the unedited state.)

The splice (`Splice`): x <- x^, the dictionary's reconstruction, at every step; the bpc of that run
is the "spliced bpc" of charlstm.dictionary.fidelity.

Owns: the two edits. Does not know: files (charlstm.dictionary.store resolves specs).
"""
from __future__ import annotations

import torch
from torch import Tensor

from charlstm.dictionary.model import Dictionary
from charlstm.errors import CharlstmError


class Splice:
    """StateEdit: the layer's state replaced by the dictionary's reconstruction (t <- x^(t))."""

    def __init__(self, dictionary: Dictionary):
        self.d, self.layer, self.kind, self.size = dictionary, dictionary.layer, dictionary.kind, dictionary.hidden

    @torch.no_grad()
    def apply(self, t: Tensor) -> None:
        t.copy_(self.d.reconstruct(t))

    def __str__(self) -> str:
        return f"{self.d.key} (reconstruction of layer{self.layer}.{self.kind})"


class FeatureClamp:
    """StateEdit: hold feature `feature` of the dictionary at activation `value` (see the module
    docstring). feature and value may also be per-row tensors [N] (one feature per row: how the
    dashboard removes each feature at its own positions in one batch)."""

    def __init__(self, dictionary: Dictionary, feature: int | Tensor, value: float | Tensor):
        self.d, self.layer, self.kind, self.size = dictionary, dictionary.layer, dictionary.kind, dictionary.hidden
        f = torch.as_tensor(feature)
        if f.numel() == 0 or int(f.min()) < 0 or int(f.max()) >= dictionary.size:
            raise CharlstmError(f"{dictionary.key}:{int(f.max()) if f.numel() else '?'}: the dictionary has features "
                                f"0..{dictionary.size - 1}")
        self.feature, self.value = feature, value
        dev = dictionary.W_dec.device
        self._f = f.to(dev).long()
        self._v = torch.as_tensor(value, dtype=dictionary.W_dec.dtype, device=dev)
        self._dir = dictionary.directions().detach()[self._f]  # [H] or [N, H]

    @torch.no_grad()
    def activation(self, t: Tensor) -> Tensor:
        """The feature's activation on each row of t [N, H] -> [N] (0 where it is not active)."""
        vals, idx = self.d.encode(t)
        f = self._f if self._f.dim() == 1 else self._f.expand(t.shape[0])
        hit = idx == f[:, None]
        return (vals * hit).sum(1)

    @torch.no_grad()
    def apply(self, t: Tensor) -> None:
        move = (self._v - self.activation(t))[:, None]  # [N, 1]
        t.add_(move * self._dir)

    def __str__(self) -> str:
        if isinstance(self.feature, int) and not isinstance(self.value, Tensor):
            return f"{self.d.key}:{self.feature}={self.value:g}"
        return f"{self.d.key}: per-row features"
