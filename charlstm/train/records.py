"""Batches of records: every record read from the start of a record, as sampling and scoring read it.

A model of records (cfg.reset_id = <eot>, charlstm.model "Records") reads <eot> from the zero state.
Running text is laid out as long streams (charlstm.train.batches), but a record must not inherit
the state of the record before it, and the fused kernels cannot reset a row in the middle of a
chunk. So records are laid out one per row instead:

* a split "r1<eot>r2<eot>..." is cut into records; record r (n characters) is read as
  [<eot>, c1 .. cn] with targets [c1 .. cn, <eot>]: its n + 1 predictions, from the zero state;
* the records are sorted by length (ties in an order drawn from the seed) and packed into groups of
  similar length holding about batch_size x seq_len characters: a group of records of length L has
  batch_size x seq_len // L rows (at least one), each one record, padded to the group's longest
  with IGNORE targets, so padding wastes little;
* a group longer than seq_len (long tweets) has batch_size rows and is read in chunks of seq_len
  with the state carried between them (truncated BPTT inside the records); every group starts
  from the zero state (`fresh`);
* the groups are fixed; each epoch reads them in an order drawn from (seed, epoch), so a step has
  about batch_size x seq_len characters, as with streams, and an epoch reads every record once.

Distributed: a group's rows are padded with empty rows to a multiple of the number of processes and
divided among them; every rank reads the same group's chunks in step.

Validation (`EvalRecords`): every record exactly once, from the zero state, grouped the same way
without shuffling; the summed loss over the split's tokens is exact and independent of seq_len.

Owns: the record layout. Does not know: the loop, the model or the optimizer.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from charlstm.errors import CharlstmError
from charlstm.train.batches import IGNORE, Chunk


def split_records(ids: np.ndarray, eot: int) -> list[np.ndarray]:
    """A record split [n] -> its records' ids, each [<eot>, c1 .. cn, <eot>] (inputs are [:-1],
    targets [1:]). A final record without its <eot> is closed with one."""
    ids = np.asarray(ids)
    ends = np.flatnonzero(ids == eot)
    out, start = [], 0
    for e in ends.tolist():
        out.append(np.concatenate([[eot], ids[start:e + 1]]))
        start = e + 1
    if start < len(ids):
        out.append(np.concatenate([[eot], ids[start:], [eot]]))
    return out


def _groups(lengths: np.ndarray, order: np.ndarray, budget: int, seq_len: int, max_rows: int) -> list[np.ndarray]:
    """Records (indices into lengths, visited in `order`) packed into groups of similar length:
    at most budget // L rows for a longest length L <= seq_len, max_rows beyond it."""
    by_len = order[np.argsort(lengths[order], kind="stable")]
    groups, cur, longest = [], [], 0
    for i in by_len.tolist():
        L = max(longest, int(lengths[i]))
        cap = max(1, budget // L) if L <= seq_len else max_rows
        if cur and len(cur) >= cap:
            groups.append(np.array(cur))
            cur, L = [], int(lengths[i])
        cur.append(i)
        longest = L
    if cur:
        groups.append(np.array(cur))
    return groups


class _Layout:
    """Records packed into groups on the device: per group, this rank's inputs [rows, L] (uint8, or
    int32 for larger vocabularies) and targets [rows, L] int32 with IGNORE on padding, built once so
    that a step only slices them."""

    def __init__(self, records: list[np.ndarray], groups: list[np.ndarray], seq_len: int, rank: int,
                 world_size: int, device: torch.device | str, dtype: np.dtype):
        self.seq_len = seq_len
        self.x: list[Tensor] = []
        self.y: list[Tensor] = []
        self.n_chunks: list[int] = []
        self.targets: list[list[int]] = []  # per group and chunk: real targets over all ranks
        for g in groups:
            rows = math.ceil(len(g) / world_size) * world_size  # empty rows make it divisible
            L = max(len(records[i]) - 1 for i in g)
            x = np.zeros((rows, L), dtype=dtype)
            y = np.full((rows, L), IGNORE, dtype=np.int32)
            lens = np.zeros(rows, dtype=np.int64)
            for r, i in enumerate(g.tolist()):
                n = len(records[i]) - 1
                x[r, :n], y[r, :n], lens[r] = records[i][:-1], records[i][1:], n
            per = rows // world_size
            mine = slice(rank * per, (rank + 1) * per)
            self.x.append(torch.from_numpy(x[mine].copy()).to(device))
            self.y.append(torch.from_numpy(y[mine].copy()).to(device))
            k = math.ceil(L / seq_len)
            self.n_chunks.append(k)
            self.targets.append([int(np.clip(lens - j * seq_len, 0, seq_len).sum()) for j in range(k)])

    def chunk(self, g: int, j: int) -> Chunk:
        cols = slice(j * self.seq_len, (j + 1) * self.seq_len)
        return Chunk(self.x[g][:, cols].long(), self.y[g][:, cols].long(), j == 0, self.targets[g][j])


def _check(records: list[np.ndarray], what: str) -> None:
    if not records:
        raise CharlstmError(f"the {what} split holds no record; rebuild the dataset")


class RecordBatches:
    """This rank's training chunks of a record split (see the module docstring).

    `step_chunk(epoch, k)` -> Chunk; an epoch is `n_chunks` chunks. `chars_per_chunk` is the budget
    (batch_size x seq_len), the characters a step reads on average."""

    def __init__(self, ids: np.ndarray, eot: int, batch_size: int, seq_len: int, seed: int, rank: int = 0,
                 world_size: int = 1, device: torch.device | str = "cpu"):
        records = split_records(ids, eot)
        _check(records, "training")
        lengths = np.array([len(r) - 1 for r in records])
        order = np.random.default_rng(seed).permutation(len(records))
        groups = _groups(lengths, order, batch_size * seq_len, seq_len, batch_size)
        dtype = np.uint8 if np.asarray(ids).dtype == np.uint8 else np.int32
        self.layout = _Layout(records, groups, seq_len, rank, world_size, device, dtype)
        self.seed, self.batch_size, self.seq_len = seed, batch_size, seq_len
        # (group, chunk) of every chunk of an epoch, in group order; epochs permute the groups
        self._starts = np.cumsum([0] + self.layout.n_chunks)
        self.n_chunks = int(self._starts[-1])
        self.n_records = len(records)

        self.rows = batch_size // world_size  # nominal: a group's rows vary with its records' length
        self._cached: tuple[int, np.ndarray, np.ndarray] | None = None

    @property
    def chars_per_chunk(self) -> int:
        return self.batch_size * self.seq_len

    def _plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(group order, cumulative chunk ends in that order) of an epoch, drawn from (seed, epoch)."""
        if self._cached is None or self._cached[0] != epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.layout.n_chunks))
            self._cached = (epoch, order, np.cumsum(np.array(self.layout.n_chunks)[order]))
        return self._cached[1], self._cached[2]

    def _locate(self, epoch: int, k: int) -> tuple[int, int, int]:
        """(group, chunk within it, the epoch's chunk index where that group starts) of chunk k."""
        order, ends = self._plan(epoch)
        pos = int(np.searchsorted(ends, k, side="right"))
        start = int(ends[pos - 1]) if pos else 0
        return int(order[pos]), k - start, start

    def step_chunk(self, epoch: int, k: int) -> Chunk:
        """Chunk k (0 <= k < n_chunks) of an epoch."""
        g, j, _ = self._locate(epoch, k)
        return self.layout.chunk(g, j)

    def group_start(self, epoch: int, k: int) -> int:
        """The chunk index (in the epoch) where the group holding chunk k starts."""
        return self._locate(epoch, k)[2]


class EvalRecords:
    """A record split laid out for exact scoring: every record once, from the zero state.

    eval_chunks() yields this rank's Chunks (fresh at each group); n_targets: every token of the split."""

    def __init__(self, ids: np.ndarray, eot: int, seq_len: int, rank: int = 0, world_size: int = 1,
                 device: torch.device | str = "cpu", budget: int = 64 * 1024, max_rows: int = 64):
        records = split_records(ids, eot)
        _check(records, "validation")
        lengths = np.array([len(r) - 1 for r in records])
        # A fixed layout (never the training batch), so val bpc does not depend on it.
        groups = _groups(lengths, np.arange(len(records)), budget, seq_len, max_rows)
        self.layout = _Layout(records, groups, seq_len, rank, world_size, device, np.int32)
        self.n_targets = int(lengths.sum())

    def eval_chunks(self):
        for g, k in enumerate(self.layout.n_chunks):
            for j in range(k):
                yield self.layout.chunk(g, j)
