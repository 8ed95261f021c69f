"""The data of the dictionary page (`charlstm dictionary show`): every feature over a text.

Two passes over the text (charlstm.trace.run_trace, the tracer's own values):

1. the sparse code of every character (charlstm.trace.CodesSink): from it, per feature, how often it fires, its
   largest activation, a histogram of its non-zero activations, its top-activating contexts (the
   `contexts` highest characters at least `after` apart, with the text from `before` characters
   before to `after` after, and the feature's activation on each), and its best matches in the
   feature library (charlstm.dictionary.labels: the automatic label);
2. the states of every layer just before each feature's top `effects` characters (`RowSink`), from
   which the sampler's step (charlstm.sample.stepper.Stepper) is run twice: as it is, and with the
   feature removed (held at 0, charlstm.dictionary.steer.FeatureClamp). The difference of the
   next-character logits, averaged over those characters and centred over the vocabulary, is what
   the feature promotes (largest) and suppresses (smallest). For h of the top layer this is exactly
   the activation times the decoder direction through the head (a linear map); for c, and for lower
   layers, the same one step also runs through h = o * tanh(c) and the layers above, with their
   gates as they were at that step (the feature's direct effect on the next character, not its
   effect through later steps).

Owns: `build` and the sinks. Does not know: HTML (charlstm.viz.dictpage draws it) or files.
"""
from __future__ import annotations

import base64
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from charlstm.dictionary import labels as lab
from charlstm.dictionary.model import Dictionary
from charlstm.dictionary.steer import FeatureClamp
from charlstm.errors import CharlstmError
from charlstm.inputs import step_symbols
from charlstm.sample.stepper import Stepper
from charlstm.trace import CodesSink, run_trace
from charlstm.units import key


@dataclass
class PageOptions:
    """How much the page shows per feature."""

    contexts: int = 8
    before: int = 40
    after: int = 12
    bins: int = 16
    effects: int = 4
    top_chars: int = 5
    label_chars: int = 16


class RowSink:
    """Keeps every layer's h and c (when the cell has c) at the given steps: rows [P] ->
    h [L, P, H], c [L, P, H] in the order of `rows`."""

    def __init__(self, rows: np.ndarray, kinds: tuple[str, ...]):
        self.rows, self.kinds = np.asarray(rows, dtype=np.int64), kinds

    def begin(self, info) -> None:
        P, L, H = len(self.rows), info.num_layers, info.hidden_size
        self.out = {k: np.zeros((L, P, H), np.float32) for k in self.kinds}
        self.order = np.argsort(self.rows, kind="stable")
        self.sorted = self.rows[self.order]

    def layer(self, start, layer, arrays) -> None:
        n = len(next(iter(arrays.values())))
        a, b = np.searchsorted(self.sorted, [start, start + n])
        if b > a:
            where = self.order[a:b]
            for k in self.kinds:
                self.out[k][layer, where] = arrays[k][self.sorted[a:b] - start]

    def head(self, *args) -> None:
        pass

    def end(self) -> None:
        pass


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).decode("ascii")


def _top_positions(rows: np.ndarray, vals: np.ndarray, n: int, apart: int) -> list[int]:
    """The rows of the n largest |vals| at least `apart` steps from each other (largest first)."""
    chosen: list[int] = []
    for j in np.argsort(-np.abs(vals), kind="stable"):
        r = int(rows[j])
        if all(abs(r - c) >= apart for c in chosen):
            chosen.append(r)
            if len(chosen) == n:
                break
    return chosen


@torch.no_grad()
def effects(model, d: Dictionary, ids: np.ndarray, positions: list[tuple[int, int]], batch: int = 1024) -> np.ndarray:
    """The feature's one-step effect on the next-character logits at its positions (see the module
    docstring): positions [(feature, t), ...] with t >= 1 -> float32 [len, V], logits as they are
    minus logits with the feature held at 0."""
    if not positions:
        return np.zeros((0, model.cfg.vocab_size), np.float32)
    feats = np.array([f for f, _ in positions], dtype=np.int64)
    ts = np.array([t for _, t in positions], dtype=np.int64)
    cell = model.cfg.cell
    kinds = ("h", "c") if cell in ("lstm", "peephole") else ("h",)
    sink = RowSink(ts - 1, kinds)
    run_trace(model, ids[:int(ts.max()) + 1], [sink], kinds=list(kinds))
    out = np.zeros((len(ts), model.cfg.vocab_size), np.float32)
    dev = model.head.weight.device
    for a in range(0, len(ts), batch):
        b = min(a + batch, len(ts))
        state = tuple(torch.from_numpy(sink.out[k][:, a:b]).to(dev) for k in kinds)
        step_ids = torch.from_numpy(np.asarray(ids[ts[a:b]], dtype=np.int64)).to(dev)
        clean = Stepper(model, b - a)
        clean.set_state(state)
        lc = clean.step(step_ids).clone()
        edited = Stepper(model, b - a, clamp=[FeatureClamp(d, torch.from_numpy(feats[a:b]), 0.0)])
        edited.set_state(state)
        out[a:b] = (lc - edited.step(step_ids)).float().cpu().numpy()
    return out


def build(model, vocab, d: Dictionary, ids: np.ndarray, *, source: str = "", opts: PageOptions | None = None,
          info: dict[str, Any] | None = None, title: str = "") -> dict[str, Any]:
    """The page's data (a JSON-ready dict; docs/formats.md, "The dictionary page")."""
    o = opts or PageOptions()
    t0 = time.perf_counter()
    ids = np.asarray(ids, dtype=np.int64)
    T = len(ids)
    if T < 2:
        raise CharlstmError("the text has fewer than 2 characters: nothing to show")
    sink = CodesSink(d)
    run_trace(model, ids, [sink], layers=[d.layer], kinds=[d.kind])
    vals, idx = sink.values, sink.indices
    F = d.size
    flat_v, flat_i = vals.reshape(-1), idx.reshape(-1).astype(np.int64)
    flat_r = np.repeat(np.arange(T), d.k)
    nz = flat_v != 0
    flat_v, flat_i, flat_r = flat_v[nz], flat_i[nz], flat_r[nz]
    order = np.argsort(flat_i, kind="stable")
    flat_v, flat_i, flat_r = flat_v[order], flat_i[order], flat_r[order]
    starts = np.searchsorted(flat_i, np.arange(F + 1))
    symbols = step_symbols(vocab, ids)
    cands = lab.library(symbols, chars=o.label_chars)
    matches = lab.best(lab.scores(vals, idx, F, cands), cands)
    features, eff_pos = [], []
    for f in range(F):
        a, b = starts[f], starts[f + 1]
        v, r = flat_v[a:b], flat_r[a:b]
        entry: dict[str, Any] = {"i": f, "freq": round((b - a) / T, 6), "n": int(b - a),
                                 "match": [[n, round(s, 4), ok] for n, s, ok in matches[f]] if b > a else []}
        if b > a:
            m = float(np.abs(v).max())
            lo = float(min(v.min(), 0.0))
            hist, _ = np.histogram(v, bins=o.bins, range=(lo, float(max(v.max(), 0.0)) or 1.0))
            tops = _top_positions(r, v, o.contexts, max(o.after, 1))
            ctx = []
            for p in tops:
                s0, s1 = max(0, p - o.before), min(T, p + o.after + 1)
                col = np.zeros(s1 - s0, np.float32)
                w = (flat_r[a:b] >= s0) & (flat_r[a:b] < s1)
                col[flat_r[a:b][w] - s0] = v[w]
                ctx.append({"s": s0, "p": p, "q": _b64(np.clip(np.rint(127 * col / m), -127, 127).astype(np.int8))})
            entry.update({"max": round(m, 4), "mean": round(float(np.abs(v).mean()), 4), "lo": round(lo, 4),
                          "hist": hist.tolist(), "contexts": ctx})
            eff_pos += [(f, p) for p in tops[:o.effects] if p >= 1]
        features.append(entry)
    eff = effects(model, d, ids, eff_pos)
    per_f: dict[int, list[np.ndarray]] = {}
    for (f, _), row in zip(eff_pos, eff):
        per_f.setdefault(f, []).append(row)
    usable = np.ones(model.cfg.vocab_size, dtype=bool)
    if vocab.unk_id is not None:
        usable[vocab.unk_id] = False  # never written (sampling masks it)
    for f, rows in per_f.items():
        mean = np.mean(rows, 0)
        mean = mean - mean[usable].mean()
        up = [i for i in np.argsort(-mean, kind="stable") if usable[i] and mean[i] > 0][:o.top_chars]
        down = [i for i in np.argsort(mean, kind="stable") if usable[i] and mean[i] < 0][:o.top_chars]
        features[f]["promote"] = [[int(i), round(float(mean[i]), 3)] for i in up]
        features[f]["suppress"] = [[int(i), round(float(mean[i]), 3)] for i in down]
    from types import SimpleNamespace

    from charlstm.viz.html import display_symbols

    t = SimpleNamespace(vocab=vocab)  # display_symbols reads only .vocab
    settings = {**d.settings(), "name": d.name, "key": d.key}
    return {"format": "charlstm-dictionary-page", "version": 1, "title": title or f"dictionary {d.name}",
            "dictionary": settings, "info": {k: (info or {}).get(k) for k in ("run", "train", "fidelity")},
            "source": source, "chars": T, "ids": _b64(ids.astype(np.uint16)), "symbols": display_symbols(t),
            "library": [[c.name, c.kind] for c in cands], "thresholds": {"binary": lab.LABEL_BINARY,
                                                                          "continuous": lab.LABEL_CONTINUOUS},
            "options": {"before": o.before, "after": o.after, "bins": o.bins, "effects": o.effects},
            "features": features, "seconds": round(time.perf_counter() - t0, 1),
            "state_key": key(d.layer, d.kind), "log2e": 1 / math.log(2)}
