"""One training step of a dictionary: the loss of a batch and its gradient, by hand.

The loss is the mean squared error of the normalised reconstruction, |u^ - u|^2, plus Gao et al.'s
auxiliary loss: the 2k largest pre-activations among the dead features reconstruct what the active
ones left (the error, held constant), weighted by `aux` and divided by the error's own size.

`sparse_step` selects the k features with one dense product and a top-k, then touches only them: the
decoder is an embedding bag, the gradient of the activations a sampled product (the k entries of
g W_dec^T per state), the gradients of W_enc and W_dec sparse-dense products (row f gathers the
states that selected f). `sparse_step_slow` is the same loss through autograd on dense tensors,
the twin the tests hold it to (and 4x slower: docs/benchmarks.md, "Dictionaries").

Owns: the two steps. Does not know: optimisers, states or files (charlstm.dictionary.train).
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor

from charlstm.dictionary.model import Dictionary


def _csr(idx: Tensor, vals: Tensor, width: int) -> Tensor:
    """The sparse matrix [B, width] with vals [B, k] at columns idx [B, k] of each row (CSR)."""
    B, k = idx.shape
    crow = torch.arange(0, B * k + 1, k, device=idx.device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(crow, idx.reshape(-1), vals.reshape(-1), size=(B, width), check_invariants=False)


def _rows_dot(idx: Tensor, g: Tensor, W: Tensor) -> Tensor:
    """[B, k]: the dot product of row idx[b, j] of W [F, H] with g[b] [H], for every selected entry
    (a sampled product: only the B x k entries are computed)."""
    m = _csr(idx, torch.zeros(idx.shape, dtype=g.dtype, device=g.device), W.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.sparse.sampled_addmm(m, g, W.t()).values().reshape(idx.shape)


def _scatter_rows(idx: Tensor, vals: Tensor, x: Tensor, F: int) -> Tensor:
    """[F, H]: row f = sum of vals[b, j] * x[b] over the entries with idx[b, j] == f."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _csr(idx, vals, F).t() @ x


def _combine(idx: Tensor, vals: Tensor, W: Tensor) -> Tensor:
    """[B, H]: sum over j of vals[b, j] * W[idx[b, j]] (the decoder on a sparse code)."""
    return torch.nn.functional.embedding_bag(idx, W, per_sample_weights=vals, mode="sum")


def sparse_step(d: Dictionary, u: Tensor, dead: Tensor | None, aux: float) -> tuple[Tensor, Tensor, Tensor]:
    """The loss of one batch u [B, H] (normalised states), its gradient written into the
    parameters' .grad by hand -> (loss, main loss, indices [B, k] of the active features).

    Selecting is one dense product [B, H] x [H, F] and a top-k; everything after touches only the
    selected features of each state (sparse products: the decoder as an embedding bag, the
    gradients as sampled and sparse-dense products), so a step costs about one dense product.
    `sparse_step_slow` is the same loss through autograd on dense tensors, the twin the tests hold
    this to."""
    B, H = u.shape
    F = d.size
    relu = d.code != "signed"
    W_enc, b_enc, W_dec, b_dec = d.W_enc.detach(), d.b_enc.detach(), d.W_dec.detach(), d.b_dec.detach()
    with torch.no_grad():
        xc = u - b_dec
        pre = torch.addmm(b_enc, xc, W_enc.t())
        idx = d.select(pre)
        ps = pre.gather(1, idx)  # [B, k]
        z = torch.relu(ps) if relu else ps
        err = _combine(idx, z, W_dec) + b_dec - u
        main = (err * err).sum(1).mean()
        g = err * (2.0 / B)  # dL/d recon
        gW_dec = _scatter_rows(idx, z, g, F)
        dz = _rows_dot(idx, g, W_dec)
        dps = dz * (ps > 0) if relu else dz
        gW_enc = _scatter_rows(idx, dps, xc, F)
        gb_enc = torch.zeros_like(b_enc).index_add_(0, idx.reshape(-1), dps.reshape(-1))
        gb_dec = g.sum(0) - _combine(idx, dps, W_enc).sum(0)
        loss = main.clone()
        if dead is not None and aux > 0 and bool(dead.any()):
            k_aux = min(int(dead.sum()), 2 * d.k)
            masked = (pre.abs() if not relu else pre).masked_fill(~dead, float("-inf"))
            ia = torch.topk(masked, k_aux, dim=1, sorted=False).indices
            pa = pre.gather(1, ia)
            za = torch.relu(pa) if relu else pa
            target = -err  # what the active features left unexplained (a constant here)
            norm = (target * target).sum(1).mean().clamp_min(1e-12)
            ea = _combine(ia, za, W_dec) - target
            loss += aux * (ea * ea).sum(1).mean() / norm
            ga = ea * (2.0 * aux / (B * norm))
            gW_dec += _scatter_rows(ia, za, ga, F)
            dpa = _rows_dot(ia, ga, W_dec)
            dpa = dpa * (pa > 0) if relu else dpa
            gW_enc += _scatter_rows(ia, dpa, xc, F)
            gb_enc.index_add_(0, ia.reshape(-1), dpa.reshape(-1))
            gb_dec -= _combine(ia, dpa, W_enc).sum(0)
    for p, grad in ((d.W_enc, gW_enc), (d.b_enc, gb_enc), (d.W_dec, gW_dec), (d.b_dec, gb_dec)):
        p.grad = grad.contiguous()
    return loss, main, idx


def sparse_step_slow(d: Dictionary, u: Tensor, dead: Tensor | None, aux: float) -> tuple[Tensor, Tensor, Tensor]:
    """The twin of `sparse_step` through autograd on dense tensors: the same selection, the loss
    written out, loss.backward() -> (loss, main loss, indices)."""
    relu = d.code != "signed"
    act = torch.relu if relu else (lambda t: t)
    x = u - d.b_dec
    pre = x @ d.W_enc.t() + d.b_enc
    with torch.no_grad():
        idx = d.select(pre)
        keep = torch.zeros_like(pre).scatter_(1, idx, 1.0)
    recon = (act(pre) * keep) @ d.W_dec + d.b_dec
    main = ((recon - u) ** 2).sum(1).mean()
    loss = main
    if dead is not None and aux > 0 and bool(dead.any()):
        k_aux = min(int(dead.sum()), 2 * d.k)
        with torch.no_grad():
            masked = (pre.abs() if not relu else pre).masked_fill(~dead, float("-inf"))
            keep_aux = torch.zeros_like(pre).scatter_(1, torch.topk(masked, k_aux, dim=1).indices, 1.0)
            target = (u - recon).detach()
        e_hat = (act(pre) * keep_aux) @ d.W_dec
        loss = loss + aux * ((e_hat - target) ** 2).sum(1).mean() / (target ** 2).sum(1).mean().clamp_min(1e-12)
    d.zero_grad(set_to_none=True)
    loss.backward()
    return loss.detach(), main.detach(), idx
