"""The rules for choosing the next character from the logits: temperature, top-k, nucleus (top-p),
greedy, and the Gumbel-max draw.

Sampling uses the Gumbel-max trick (argmax of logits + Gumbel noise is an exact draw from the
softmax), with the noise generated 64 steps at a time. Without top-k/top-p, the noise is added to
the head's bias for a whole block at once (see charlstm.sample.loop), so drawing a character costs
one argmax: torch.multinomial alone measured ~40 us per call for one row on CPU, more than a whole
step of the tiny preset.

Owns: the filters, the noise and `sample_next`. Does not know: models or text.
"""
from __future__ import annotations

import torch
from torch import Tensor


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


