"""Character n-gram baselines: interpolated Witten-Bell models of orders 1..N, counted in numpy.

The error analysis of Karpathy, Johnson & Fei-Fei (2015) compares the LSTM with n-gram models fitted
on the same training text. Here the n-gram model of order n predicts a character from the n - 1
before it, with Witten-Bell interpolation down to the uniform distribution over the vocabulary:

    P_0(c)     = 1 / V
    P_k(c | h) = (C(h c) + N1(h) P_{k-1}(c | h')) / (C(h) + N1(h))      (h: the last k - 1 characters)

where C(h c) counts the k-gram, C(h) how often h is followed by anything, N1(h) how many different
characters follow h, and h' is h without its first character; an unseen h backs off entirely
(P_k = P_{k-1}). Every order's probability is a proper distribution over the V symbols.

Counting is exact for any order: the k-grams are numbered recursively (the index of a k-gram is
the index of its (k-1)-gram prefix times V plus its last id, made dense again by np.unique), so no
hash can collide. `NGram.bits` is vectorised over the whole text; `ngram_bits_slow` is the obvious
twin (Python dicts of tuples, one prediction at a time) that tests hold it to.
Owns: the n-gram model. Does not know: models, vocabularies or files (it is given ids).
Shapes: T ids of a text, V vocabulary size, N the highest order.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Sequence

import numpy as np

from charlstm.errors import CharlstmError


class NGram:
    """Witten-Bell n-gram models of orders 1..order, counted on train_ids [T] (ids < vocab_size)."""

    def __init__(self, train_ids: np.ndarray, vocab_size: int, order: int):
        if order < 1:
            raise CharlstmError(f"the n-gram order must be at least 1, got {order}")
        ids = np.asarray(train_ids, dtype=np.int64)
        if len(ids) == 0:
            raise CharlstmError("no training text for the n-gram models")
        if ids.min() < 0 or ids.max() >= vocab_size:
            raise CharlstmError(f"n-gram training ids must lie in 0..{vocab_size - 1}")
        self.V, self.order, self.n_train = int(vocab_size), int(order), len(ids)
        V = self.V
        # keys[k]: sorted unique k-gram keys; counts[k]: their counts; for contexts (k-grams followed
        # by something, k < order): follow[k] = (total, types) per k-gram index.
        self.keys: list[np.ndarray] = [np.zeros(1, np.int64)]
        self.counts: list[np.ndarray] = [np.array([len(ids)], np.int64)]
        prev = np.zeros(len(ids), np.int64)  # index of the (k-1)-gram ending at t (-1: none)
        for k in range(1, order + 1):
            # Every t >= k - 1 ends a k-gram: its (k-1)-gram prefix ends at t - 1.
            key = ids[k - 1:] if k == 1 else prev[k - 2:-1] * V + ids[k - 1:]
            uniq, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
            self.keys.append(uniq)
            self.counts.append(cnt.astype(np.int64))
            prev = np.full(len(ids), -1, np.int64)
            prev[k - 1:] = inv.ravel()
        self.follow_total: list[np.ndarray] = []
        self.follow_types: list[np.ndarray] = []
        for k in range(order):  # contexts of length k, followed by one character
            prefix = self.keys[k + 1] // V if k > 0 else np.zeros(len(self.keys[1]), np.int64)
            size = len(self.keys[k])
            self.follow_total.append(np.bincount(prefix, weights=self.counts[k + 1], minlength=size))
            self.follow_types.append(np.bincount(prefix, minlength=size).astype(np.float64))

    def _indices(self, ids: np.ndarray) -> list[np.ndarray]:
        """Per order k, the training index of the k-gram ending at each t of ids, -1 if unseen
        (k = 0: the empty gram, index 0 everywhere)."""
        V = self.V
        out = [np.zeros(len(ids), np.int64)]
        prev = out[0]
        for k in range(1, self.order + 1):
            key = np.full(len(ids), -1, np.int64)
            if k == 1:
                key = ids.copy()
            else:
                ok = np.zeros(len(ids), bool)
                ok[1:] = prev[:-1] >= 0
                key[ok] = prev[np.flatnonzero(ok) - 1] * V + ids[ok]
            pos = np.searchsorted(self.keys[k], key)
            pos = np.minimum(pos, len(self.keys[k]) - 1)
            found = (key >= 0) & (self.keys[k][pos] == key)
            prev = np.where(found, pos, -1)
            out.append(prev)
        return out

    def bits(self, ids: np.ndarray) -> np.ndarray:
        """float64 [order, T - 1]: row n - 1 is the order-n model's -log2 P(ids[t+1] | ids[..t]),
        from the n - 1 characters before (fewer at the start of the text)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) < 2:
            raise CharlstmError("at least 2 characters are needed to score a prediction")
        if ids.min() < 0 or ids.max() >= self.V:
            raise CharlstmError(f"ids must lie in 0..{self.V - 1}")
        idx = self._indices(ids)
        p = np.full(len(ids) - 1, 1.0 / self.V)
        out = np.empty((self.order, len(ids) - 1))
        for k in range(1, self.order + 1):
            ctx = idx[k - 1][:-1]  # the (k-1)-gram ending at t
            gram = idx[k][1:]      # the k-gram ending at t + 1
            seen = ctx >= 0
            c = np.zeros(len(p))
            total = np.zeros(len(p))
            types = np.zeros(len(p))
            c[gram >= 0] = self.counts[k][gram[gram >= 0]]
            total[seen] = self.follow_total[k - 1][ctx[seen]]
            types[seen] = self.follow_types[k - 1][ctx[seen]]
            has = total > 0
            p = np.where(has, (c + types * p) / np.where(has, total + types, 1.0), p)
            out[k - 1] = -np.log2(p)
        return out


def ngram_bits_slow(train_ids: Sequence[int], vocab_size: int, order: int, ids: Sequence[int]) -> np.ndarray:
    """The obvious twin of NGram(train_ids, vocab_size, order).bits(ids): counts in dicts of
    tuples, each probability computed by the recursion one prediction at a time."""
    train = [int(i) for i in train_ids]
    grams: Counter = Counter()
    for k in range(1, order + 1):
        for t in range(k - 1, len(train)):
            grams[tuple(train[t - k + 1:t + 1])] += 1
    follow: dict[tuple, Counter] = defaultdict(Counter)
    for g, c in grams.items():
        follow[g[:-1]][g[-1]] += c

    def prob(h: tuple, c: int, k: int) -> float:
        """P_k(c | the last k - 1 characters of the history h)."""
        if k == 0:
            return 1.0 / vocab_size
        lower = prob(h, c, k - 1)
        if len(h) < k - 1:  # not enough history for this order: back off entirely
            return lower
        f = follow.get(h[len(h) - (k - 1):] if k > 1 else ())
        if not f:
            return lower
        total, types = sum(f.values()), len(f)
        return (f.get(c, 0) + types * lower) / (total + types)

    ids = [int(i) for i in ids]
    out = np.empty((order, len(ids) - 1))
    for t in range(len(ids) - 1):
        for n in range(1, order + 1):
            out[n - 1, t] = -math.log2(prob(tuple(ids[:t + 1]), ids[t + 1], n))
    return out
