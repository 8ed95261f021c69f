"""Truncated-BPTT batching: a split laid out as B parallel streams, read in chunks of T characters.

Training (`TrainStreams`): a split of n tokens gives n - 1 (input, target) pairs. They are cut into
B contiguous streams of S = (n - 1) // B pairs each; row i of chunk k + 1 continues row i of chunk k,
so the hidden state carried from one chunk to the next is the state of exactly the text before it.
Only whole chunks are used: an epoch is S // T chunks, and the last S % T (< T) pairs of each
stream are skipped, so every step has the same shape (cuDNN/compile-friendly).

Validation (`EvalStreams`): every one of the n - 1 targets is scored exactly once. The targets are
cut into Bv streams of ceil((n - 1) / Bv) positions; the ragged tail of the last stream is padded
with IGNORE targets, which sit after all real positions of their row and so cannot change any real
prediction. The result is independent of the chunk length T (tests check T=7 against T=1000).

Distributed: the B streams (global) are divided among W ranks, rank r holding rows
[r*B/W, (r+1)*B/W); no two ranks see the same text. Validation rows are padded up to a multiple of W
with fully ignored rows so every rank runs the same number of chunks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from charlstm.errors import CharlstmError

IGNORE = -100  # torch.nn.functional.cross_entropy's default ignore_index


@dataclass
class Chunk:
    """One step's data, whatever the layout (streams here, records in charlstm.train.records):
    inputs and targets [rows, t] int64 (targets IGNORE on padding), whether the carried state starts
    from zero here (`fresh`), and the real targets in it over all ranks."""

    x: Tensor
    y: Tensor
    fresh: bool
    targets: int


def fit_batch_size(n_tokens: int, batch_size: int, seq_len: int, world_size: int = 1) -> int:
    """The largest batch <= batch_size (a multiple of world_size) giving at least one full chunk.

    Raises CharlstmError when even world_size streams of seq_len + 1 tokens do not fit.
    """
    if batch_size % world_size:
        raise CharlstmError(f"batch-size {batch_size} must be a multiple of the number of processes ({world_size}): "
                            "the streams are divided evenly among them")
    pairs = max(n_tokens - 1, 0)
    fit = (pairs // seq_len) // world_size * world_size
    if fit < world_size:
        most = pairs // world_size
        hint = f"use --seq-len {most} or less, or a bigger corpus" if most >= 1 else "use a bigger corpus"
        raise CharlstmError(f"the training split has only {n_tokens} tokens, too few for {world_size} stream(s) of "
                            f"seq-len {seq_len} + 1; {hint}")
    return min(batch_size, fit)


class TrainStreams:
    """This rank's rows of the training split laid out as streams; `chunk(k)` gives chunk k.

    data: [b, n_chunks * T + 1] on `device` (uint8, or int32 for larger vocabularies), b = B / W.
    """

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int, rank: int = 0, world_size: int = 1,
                 device: torch.device | str = "cpu"):
        n = len(ids)
        self.batch_size, self.seq_len = batch_size, seq_len
        self.stream_len = (n - 1) // batch_size
        self.n_chunks = self.stream_len // seq_len
        if self.n_chunks < 1:
            raise CharlstmError(f"{n} tokens cannot fill {batch_size} streams of seq-len {seq_len}")
        b = batch_size // world_size
        used = self.n_chunks * seq_len + 1
        rows = [np.asarray(ids[i * self.stream_len: i * self.stream_len + used])
                for i in range(rank * b, (rank + 1) * b)]
        arr = np.stack(rows)
        if arr.dtype != np.uint8:
            arr = arr.astype(np.int32)  # torch has no usable uint16; int32 still halves int64 memory
        # Loaded once: the hot path only slices this tensor and widens one chunk to int64.
        self.data = torch.from_numpy(arr).to(device)
        self.rows = b

    @property
    def chars_per_chunk(self) -> int:
        """Characters per chunk over all ranks (B * T)."""
        return self.batch_size * self.seq_len

    def chunk(self, k: int) -> tuple[Tensor, Tensor]:
        """Chunk k -> (inputs [b, T] int64, targets [b, T] int64); targets are inputs shifted by one."""
        T = self.seq_len
        d = self.data[:, k * T: (k + 1) * T + 1].long()
        return d[:, :-1], d[:, 1:]

    def step_chunk(self, epoch: int, k: int) -> Chunk:
        """Chunk k of an epoch (every epoch reads the streams in the same order; an epoch starts
        from a blank memory)."""
        x, y = self.chunk(k)
        return Chunk(x, y, k == 0, self.chars_per_chunk)


class EvalStreams:
    """A split laid out for exact scoring: each of its n - 1 targets exactly once.

    x, y: this rank's rows, [rows, Lv] int32 on `device`; y is IGNORE on padding.
    """

    def __init__(self, ids: np.ndarray, n_streams: int, seq_len: int, rank: int = 0, world_size: int = 1,
                 device: torch.device | str = "cpu"):
        n = len(ids)
        self.n_targets = n - 1
        if self.n_targets < 1:
            raise CharlstmError(f"the validation split has {n} token(s); it needs at least 2 to score anything")
        Bv = max(1, min(n_streams, self.n_targets))
        Lv = math.ceil(self.n_targets / Bv)
        Bv = math.ceil(self.n_targets / Lv)  # no row left entirely empty
        Bp = math.ceil(Bv / world_size) * world_size
        self.n_streams, self.stream_len, self.seq_len = Bv, Lv, seq_len
        src = np.asarray(ids).astype(np.int32)
        x = np.zeros(Bp * Lv, dtype=np.int32)
        y = np.full(Bp * Lv, IGNORE, dtype=np.int32)
        x[: self.n_targets] = src[:-1]
        y[: self.n_targets] = src[1:]
        per = Bp // world_size
        sl = slice(rank * per, (rank + 1) * per)
        self.x = torch.from_numpy(x.reshape(Bp, Lv)[sl].copy()).to(device)
        self.y = torch.from_numpy(y.reshape(Bp, Lv)[sl].copy()).to(device)
        self.rows = per

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.stream_len / self.seq_len)

    def chunks(self):
        """Yield (inputs [rows, t] int64, targets [rows, t] int64) for t = T, ..., T, tail."""
        T = self.seq_len
        for k in range(self.n_chunks):
            yield self.x[:, k * T: (k + 1) * T].long(), self.y[:, k * T: (k + 1) * T].long()

    def eval_chunks(self):
        """chunks() as Chunks: every row starts from zero at the first."""
        for k, (x, y) in enumerate(self.chunks()):
            yield Chunk(x, y, k == 0, int((y != IGNORE).sum()))
