"""Character n-gram baselines: interpolated Witten-Bell models of orders 1..N, counted in numpy.

The error analysis of Karpathy, Johnson & Fei-Fei (2015) compares the LSTM with n-gram models fitted
on the same training text. Here the n-gram model of order n predicts a character from the n - 1
before it, with Witten-Bell interpolation down to the uniform distribution over the vocabulary:

    P_0(c)     = 1 / V
    P_k(c | h) = (C(h c) + N1(h) P_{k-1}(c | h')) / (C(h) + N1(h))      (h: the last k - 1 characters)

where C(h c) counts the k-gram, C(h) how often h is followed by anything, N1(h) how many different
characters follow h, and h' is h without its first character; an unseen h backs off entirely
(P_k = P_{k-1}). Every order's probability is a proper distribution over the V symbols.

Counting is exact for any order (the k-grams are numbered recursively, so no hash can collide)
and made only for the grams the scored text contains: `ngram_bits` is vectorised over the text and
the training stream; `ngram_bits_slow` is the obvious twin (Python dicts of tuples, one prediction
at a time) that tests hold it to.
Owns: the n-gram model. Does not know: models, vocabularies or files (it is given ids).
Shapes: T ids of a text, V vocabulary size, N the highest order.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Sequence

import numpy as np

from charlstm.errors import CharlstmError


def _check(ids: np.ndarray, vocab_size: int, what: str) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) and (ids.min() < 0 or ids.max() >= vocab_size):
        raise CharlstmError(f"{what} ids must lie in 0..{vocab_size - 1}")
    return ids


def ngram_bits(train_ids: np.ndarray, vocab_size: int, order: int, ids: np.ndarray) -> np.ndarray:
    """float64 [order, T - 1]: row n - 1 is the order-n model's -log2 P(ids[t+1] | ids[..t]) (from the
    n - 1 characters before; fewer at the start of the text), counted on train_ids.

    Only the counts this text needs are made: the k-grams of the text get dense indices (a k-gram's
    index looks up its (k-1)-gram prefix's index times V plus its last id in a table of
    prefixes x V), and the training stream is mapped into those tables order by order, so counting
    is a few gathers and bincounts over the training ids per order (no sort of the training text)."""
    if order < 1:
        raise CharlstmError(f"the n-gram order must be at least 1, got {order}")
    V = int(vocab_size)
    train = _check(train_ids, V, "n-gram training")
    text = _check(ids, V, "text")
    if len(train) == 0:
        raise CharlstmError("no training text for the n-gram models")
    if len(text) < 2:
        raise CharlstmError("at least 2 characters are needed to score a prediction")
    T, n = len(text), len(train)
    # The text's own k-grams: index of the k-gram ending at each t (-1 before t = k - 1), and per
    # order a lookup table prefix index * V + last id -> k-gram index (-1: not in the text).
    text_idx = [np.zeros(T, np.int64)]
    sizes = [1]  # how many distinct k-grams the text has (one empty gram)
    lookup: list[np.ndarray] = [np.zeros(1, np.int64)]
    for k in range(1, order + 1):
        key = text[k - 1:] + (text_idx[k - 1][k - 2:-1] * V if k > 1 else 0)
        uniq, inv = np.unique(key, return_inverse=True)
        idx = np.full(T, -1, np.int64)
        idx[k - 1:] = inv.ravel()
        table = np.full(sizes[k - 1] * V, -1, np.int64)
        table[uniq] = np.arange(len(uniq))
        text_idx.append(idx)
        sizes.append(len(uniq))
        lookup.append(table)
    # The training stream mapped into the text's tables: counts of the text's k-grams, and of its
    # (k-1)-gram contexts the number of times each is followed by anything and by how many types.
    counts, totals, types = [], [], []
    prev = np.zeros(n, np.int64)  # the empty gram ends everywhere (its index 0)
    for k in range(1, order + 1):
        size_ctx = sizes[k - 1]
        ctx = prev[:-1] if k > 1 else np.zeros(n, np.int64)  # context of position t (k > 1: t >= 1)
        nxt = train[1:] if k > 1 else train
        ok = ctx >= 0
        c_ok, n_ok = ctx[ok], nxt[ok]
        totals.append(np.bincount(c_ok, minlength=size_ctx).astype(np.float64))
        seen = np.zeros(size_ctx * V, bool)
        seen[c_ok * V + n_ok] = True
        types.append(seen.reshape(size_ctx, V).sum(axis=1).astype(np.float64))
        cur = np.full(n, -1, np.int64)
        where = np.flatnonzero(ok) + (1 if k > 1 else 0)
        cur[where] = lookup[k][c_ok * V + n_ok]
        counts.append(np.bincount(cur[cur >= 0], minlength=sizes[k]).astype(np.float64))
        prev = cur
    p = np.full(T - 1, 1.0 / V)
    out = np.empty((order, T - 1))
    for k in range(1, order + 1):
        ctx = text_idx[k - 1][:-1]  # the (k-1)-gram ending at t
        gram = text_idx[k][1:]      # the k-gram ending at t + 1
        seen = ctx >= 0
        c = np.zeros(T - 1)
        total = np.zeros(T - 1)
        ty = np.zeros(T - 1)
        c[gram >= 0] = counts[k - 1][gram[gram >= 0]]
        total[seen] = totals[k - 1][ctx[seen]]
        ty[seen] = types[k - 1][ctx[seen]]
        has = total > 0
        p = np.where(has, (c + ty * p) / np.where(has, total + ty, 1.0), p)
        out[k - 1] = -np.log2(p)
    return out


def ngram_bits_slow(train_ids: Sequence[int], vocab_size: int, order: int, ids: Sequence[int]) -> np.ndarray:
    """The obvious twin of ngram_bits(train_ids, vocab_size, order, ids): counts in dicts of
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
