"""Dynamic evaluation (Krause et al., 2018): adapting a model's weights to a text while reading it.

The text is read in segments of `segment` symbols, the state carried across them (detached). Each
segment is first scored with the current weights, exactly as charlstm.score scores it (so the bits
are honest: no symbol is predicted by weights that have seen it), then the weights take one step:

    g    = gradient of the segment's mean loss (nats per symbol), one fused forward + backward
    ms   = beta * ms + (1 - beta) * g^2            a running mean of squared gradients, per weight
    rms  = sqrt(ms / (1 - beta^t)) + eps           (bias-corrected, as Adam does; t = segments read)
    w    = w + decay * (w0 - w) - step * g / rms   decay pulls back toward the trained weights w0

Symbols are read and scored in the same order, with the same records rule, as static scoring
(charlstm.model: a record model reads a text from the start of a record and resets at each <eot>;
`reading` and `model.read` apply it). With step 0 and decay 0 the result is the static score.

The running part of the step is Adam without momentum (beta1 = 0), so it runs as torch's fused
Adam: one pass over each tensor (`step_rule`); the tests hold it to the rule written out plainly.
The module's weights are changed in place while reading (the fused kernels read them where they
are; besides them only the trained weights w0, ms and the gradient are held, the last twice, as
Adam's first moment) and restored bit for bit afterwards, also on an error or Ctrl-C: nothing on
disk is touched, and the loaded model is unchanged after the call. `adapted` keeps the adapted weights for the length of a
`with` block (`charlstm sample --adapt FILE` generates inside it).

The defaults (DEFAULTS: charlstm.config.DynamicSettings) were chosen by measuring on held-out
text that is not the text reported on (scripts/bench_dynamic.py; docs/benchmarks.md, "Dynamic
evaluation").

Owns: the update rule, dynamic scoring (`dynamic_score_ids`), adapting for generation (`adapted`),
and Krause et al.'s alternative to the running statistics, mean squared gradients taken once from
training data (`gradient_ms`; measured against the running ones in docs/benchmarks.md).
Does not know: files, runs or the command line.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from charlstm.config import DynamicSettings
from charlstm.errors import CharlstmError
from charlstm.model import detach_state
from charlstm.runtime import cpu_busy, cpu_threads
from charlstm.score import ScoreResult, Tally, check_ids, reading

BETA = 0.99  # the running mean of squared gradients forgets with this factor per segment
EPS = 1e-8   # added to the RMS, so a weight that never had a gradient does not move
# With fixed statistics a weight may get a gradient it never had in the sample they came from, so
# the floor must be far higher: Krause et al.'s code uses 2e-5.
FIXED_EPS = 2e-5

DEFAULTS = DynamicSettings()


def settings_from(dynamic: "bool | DynamicSettings | dict | None") -> DynamicSettings | None:
    """What the API's `dynamic=` argument means: False/None -> static; True -> DEFAULTS; a dict or
    DynamicSettings -> those settings (checked)."""
    if dynamic is None or dynamic is False:
        return None
    if dynamic is True:
        return DEFAULTS
    if isinstance(dynamic, dict):
        unknown = set(dynamic) - {"step", "decay", "segment"}
        if unknown:
            raise CharlstmError(f"unknown dynamic evaluation setting(s): {', '.join(sorted(unknown))}; "
                                "use step, decay, segment")
        dynamic = DynamicSettings(**dynamic)
    if not isinstance(dynamic, DynamicSettings):
        raise CharlstmError(f"dynamic must be True, False, a dict or DynamicSettings, got {dynamic!r}")
    return dynamic.validate()


@contextmanager
def adapting(model) -> Iterator[list[Tensor]]:
    """Let `model`'s weights change inside the block and put them back, bit for bit, on the way out
    (also on an error). Yields the trained weights w0 (copies, in parameter order).

    On CUDA the module runs in training mode with dropout set to 0 (cuDNN's recurrent backward
    requires training mode); elsewhere it stays as it was (eval mode after charlstm.load)."""
    params = list(model.parameters())
    w0 = [p.detach().clone() for p in params]
    flags = [p.requires_grad for p in params]
    grads = [p.grad for p in params]
    training = model.training
    drops = (model.drop.p, getattr(model.rnn, "dropout", 0.0))
    cuda = model.head.weight.device.type == "cuda"
    try:
        for p in params:
            p.requires_grad_(True)
        if cuda:
            model.drop.p = 0.0
            model.rnn.dropout = 0.0
            model.train()
        yield w0
    finally:
        with torch.no_grad():
            for p, w, f, g in zip(params, w0, flags, grads):
                p.copy_(w)
                p.requires_grad_(f)
                p.grad = g
        model.drop.p = drops[0]
        if hasattr(model.rnn, "dropout"):
            model.rnn.dropout = drops[1]
        model.train(training)


def step_rule(params: list[Tensor], s: DynamicSettings) -> torch.optim.Optimizer:
    """The running part of the rule as an optimizer (call .step() with p.grad set): it is Adam with
    no momentum (beta1 = 0, beta2 = BETA, eps = EPS; bias-corrected as above), which torch runs as
    one fused pass over each tensor where it can (CPU and CUDA) instead of the six passes of the rule
    written out. The decay is applied before it (see `_read`). tests/test_dynamic.py holds it to the
    rule written out plainly."""
    fused = params[0].device.type in ("cpu", "cuda")
    return torch.optim.Adam(params, lr=s.step, betas=(0.0, BETA), eps=EPS, fused=True if fused else None)


def step_fixed(params: list[Tensor], w0: list[Tensor], grads: list[Tensor], rms: list[Tensor],
               s: DynamicSettings) -> None:
    """The rule with fixed statistics (gradient_ms): rms = sqrt(ms) + FIXED_EPS, computed once."""
    if s.decay:
        torch._foreach_lerp_(params, w0, s.decay)  # w + decay * (w0 - w)
    torch._foreach_addcdiv_(params, grads, rms, value=-s.step)


def gradient_ms(model, ids: np.ndarray, segment: int, windows: int = 20, per_window: int = 10) -> list[Tensor]:
    """Mean squared gradients of the per-segment mean loss (in parameter order), the way Krause et
    al. take them from the training data: `windows` stretches spread evenly over ids, each read as
    `per_window` segments of `segment` symbols with the state carried, the weights left as they are.
    For `dynamic_score_ids(..., ms=...)` in place of the running statistics."""
    ids = check_ids(model, ids)
    length = segment * per_window + 1
    if len(ids) < length:
        raise CharlstmError(f"{len(ids)} symbols are too few for gradient statistics over {length}")
    dev = model.head.weight.device
    with adapting(model):
        params = list(model.parameters())
        ms = [torch.zeros_like(p) for p in params]
        count = 0
        for a in np.linspace(0, len(ids) - length, windows).astype(np.int64):
            seq = torch.from_numpy(ids[a:a + length]).to(dev)
            state = None
            for b in range(0, length - 1, segment):
                with torch.enable_grad():
                    logits, state = model.read(seq[b:b + segment][None], state)
                    loss = torch.nn.functional.cross_entropy(logits[0].float(), seq[b + 1:b + segment + 1])
                    grads = torch.autograd.grad(loss, params)
                state = detach_state(state)
                torch._foreach_addcmul_(ms, grads, grads)
                count += 1
        torch._foreach_div_(ms, count)
    return ms


def _read(model, ids: np.ndarray | Tensor, s: DynamicSettings, w0: list[Tensor], *, top: int = 0,
          per_char: bool = False, progress: Callable[[int], None] | None = None,
          ms: list[Tensor] | None = None) -> ScoreResult:
    """Score ids while adapting the weights (inside `adapting`); ms: fixed statistics, else running."""
    ids = check_ids(model, ids)
    ctx, first = reading(model, ids)
    tally = Tally(len(ctx) - 1, model.cfg.vocab_size, per_char=per_char, top=top)
    dev = model.head.weight.device
    params = list(model.parameters())
    if ms is None:
        opt, rms = step_rule(params, s), None
    else:
        opt, rms = None, torch._foreach_add(torch._foreach_sqrt([m.to(dev) for m in ms]), FIXED_EPS)
    seq = torch.from_numpy(ctx).to(dev)
    state = None
    with cpu_threads(1 if dev.type == "cpu" and cpu_busy() else None):
        for a in range(0, tally.n, s.segment):
            b = min(a + s.segment, tally.n)
            with torch.enable_grad():
                logits, state = model.read(seq[a:b][None], state)
                nll = tally.add(a, torch.log_softmax(logits[0].float(), dim=-1), seq[a + 1:b + 1])
                grads = torch.autograd.grad(nll.mean(), params)
            state = detach_state(state)
            with torch.no_grad():
                if opt is None:
                    step_fixed(params, w0, list(grads), rms, s)
                else:
                    if s.decay:  # the decay, from the weights the gradient was taken at
                        torch._foreach_lerp_(params, w0, s.decay)
                    for p, g in zip(params, grads):
                        p.grad = g
                    opt.step()
            if progress is not None:
                progress(b)
    return tally.result(ids, first)


def dynamic_score_ids(model, ids: np.ndarray | Tensor, settings: DynamicSettings = DEFAULTS, *, top: int = 0,
                      per_char: bool = False, progress: Callable[[int], None] | None = None,
                      ms: list[Tensor] | None = None) -> ScoreResult:
    """Score ids [T] under model (a CharRNN) by dynamic evaluation -> ScoreResult, like
    charlstm.score.score_ids (the same symbols scored, per_char/top detail, progress(n) after each
    segment). The model's weights are the same after the call as before it. ms: fixed mean squared
    gradients (gradient_ms) instead of the running ones (the default, chosen by measurement)."""
    settings.validate()
    with adapting(model) as w0:
        return _read(model, ids, settings, w0, top=top, per_char=per_char, progress=progress, ms=ms)


@contextmanager
def adapted(model, ids: np.ndarray | Tensor, settings: DynamicSettings = DEFAULTS,
            progress: Callable[[int], None] | None = None) -> Iterator[ScoreResult]:
    """Inside the block, model has the weights dynamic evaluation reached at the end of ids (yields
    the ScoreResult of reading them); the trained weights are back afterwards."""
    settings.validate()
    with adapting(model) as w0:
        yield _read(model, ids, settings, w0, progress=progress)
