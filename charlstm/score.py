"""Scoring: bits per character of a text under a model, exactly, and per-character surprisal.

Every symbol after the first is scored once, predicted from everything before it: the text is run
in chunks with the state carried between them (the fused module, so this runs at training speed and
memory stays bounded by the chunk). A model of records reads a text as the start of a record (the
implicit <eot> of charlstm.model, "Records"), so its first symbol is scored too, predicted from the
start of a record, and every <eot> in the text starts a new record. Bits per character = total surprisal / symbols scored, where
surprisal = -log2 p(symbol | text before it). Byte models score bytes (bits per byte). `<unk>` is
scored like any symbol (so a text with many unknown characters scores optimistically; use
unknown="error", the default, to be told about them).

Owns: `score_ids` (exact scoring with the fused model), what a model reads for a text (`reading`), the
tally of surprisal and per-character detail (`Tally`, shared with charlstm.dynamic), per-character
records and their JSONL file.
Does not know: where the ids came from (charlstm.inputs) or the command line.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from charlstm.errors import CharlstmError
from charlstm.fileio import atomic_file
from charlstm.inputs import encode
from charlstm.runtime import cpu_busy, cpu_threads
from charlstm.vocab import Vocab

LN2 = math.log(2.0)
CHUNK = 2048  # symbols per forward call


@dataclass
class ScoreResult:
    """The score of a sequence of ids.

    bits: total surprisal in bits; scored: symbols scored, T - first. first: the position in ids of
    the first scored symbol (1 for running text, 0 for records, whose first symbol is predicted from
    the start of a record). When per-character detail was asked for: ids [T] (the text's ids),
    surprisal [scored] float32 (bits of ids[first:]), top_ids / top_probs [scored, k]: the model's k
    most likely next symbols before each scored symbol. dynamic: the settings, when scored by dynamic
    evaluation (charlstm.dynamic); baseline: what a compressor achieves on the same symbols
    (charlstm.baseline), when asked for.
    """

    bits: float
    scored: int
    units: str = "char"
    first: int = 1
    ids: np.ndarray | None = None
    surprisal: np.ndarray | None = None
    top_ids: np.ndarray | None = None
    top_probs: np.ndarray | None = None
    dynamic: dict[str, Any] | None = None
    baseline: Any = None

    @property
    def bpc(self) -> float:
        """Bits per character (per byte for byte models); nan when nothing was scored."""
        return self.bits / self.scored if self.scored else float("nan")

    def as_dict(self) -> dict[str, Any]:
        d = {"bpc": self.bpc, "bits": self.bits, "scored": self.scored, "units": self.units}
        if self.dynamic is not None:
            d["dynamic"] = dict(self.dynamic)
        if self.baseline is not None:
            d["baseline"] = self.baseline.as_dict()
        return d


def score_ids(model, ids: np.ndarray | torch.Tensor, *, top: int = 0, per_char: bool = False,
              chunk: int = CHUNK, progress: Callable[[int], None] | None = None) -> ScoreResult:
    """Score ids [T] under model (a CharRNN): every id after the first (every id, for a model of
    records: see the module docstring), the state carried across chunks.

    per_char: also keep each symbol's surprisal; top: and the `top` most likely predictions.
    progress(n) is called after each chunk with the number of symbols scored so far.
    """
    if chunk < 1:
        raise CharlstmError(f"chunk must be at least 1, got {chunk}")
    ids = check_ids(model, ids)
    ctx, first = reading(model, ids)
    tally = Tally(len(ctx) - 1, model.cfg.vocab_size, per_char=per_char, top=top)
    dev = model.head.weight.device
    # On a busy CPU, OpenMP threads stall each other: one thread is several times faster there.
    with cpu_threads(1 if dev.type == "cpu" and cpu_busy() else None), torch.inference_mode():
        state = None
        for s in range(0, tally.n, chunk):
            e = min(s + chunk, tally.n)
            x = torch.from_numpy(ctx[s:e]).to(dev)[None]
            y = torch.from_numpy(ctx[s + 1:e + 1]).to(dev)
            logits, state = model.read(x, state)
            tally.add(s, torch.log_softmax(logits[0].float(), dim=-1), y)
            if progress is not None:
                progress(e)
    return tally.result(ids, first)


def check_ids(model, ids: np.ndarray | torch.Tensor) -> np.ndarray:
    """ids [T] as int64 numpy, checked against the model's vocabulary size (a CharlstmError)."""
    ids = ids.cpu().numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
    ids = ids.astype(np.int64, copy=False)
    V = model.cfg.vocab_size
    if len(ids) and (ids.min() < 0 or ids.max() >= V):
        raise CharlstmError(f"ids outside the model's vocabulary (size {V})")
    return ids


def reading(model, ids: np.ndarray) -> tuple[np.ndarray, int]:
    """(the ids the model reads for a text: the implicit start of a record first, for records
    (charlstm.model.context); the position in ids of the first scored symbol: 0 for records, else 1).
    Position j of the result predicts position j + 1."""
    ctx = np.asarray(model.context([]), dtype=np.int64)
    first = 1 - len(ctx)
    return (np.concatenate([ctx, ids]) if len(ctx) else ids), first


class Tally:
    """Adds up the surprisal of n predictions, chunk by chunk, and keeps the per-character detail
    when asked (per_char; top: the `top` most likely symbols before each one). Shared by exact and
    dynamic scoring (charlstm.dynamic), so both report the same things the same way."""

    def __init__(self, n: int, vocab_size: int, *, per_char: bool = False, top: int = 0):
        self.n = max(n, 0)
        self.keep = per_char or top > 0
        self.k = min(top, vocab_size)
        self.surprisal = np.empty(self.n, np.float32) if self.keep else None
        self.top_ids = np.empty((self.n, self.k), np.int32) if self.keep and self.k else None
        self.top_probs = np.empty((self.n, self.k), np.float32) if self.keep and self.k else None
        self.total = 0.0

    def add(self, s: int, logp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Predictions s, s+1, ... : logp [n_chunk, V] (log-probabilities, float), y [n_chunk] the
        symbols that came -> nll [n_chunk] in nats (still on the graph, when logp is)."""
        nll = -logp.gather(1, y[:, None])[:, 0]
        # Sum in float64 on the host: the total of millions of float32 terms must not drift.
        bits = nll.detach().double() / LN2
        self.total += float(bits.sum())
        if self.keep:
            e = s + len(y)
            self.surprisal[s:e] = bits.float().cpu().numpy()
            if self.k:
                tp, ti = torch.topk(logp.detach(), self.k, dim=-1)
                self.top_ids[s:e] = ti.cpu().numpy()
                self.top_probs[s:e] = tp.exp().cpu().numpy()
        return nll

    def result(self, ids: np.ndarray, first: int) -> ScoreResult:
        return ScoreResult(bits=self.total, scored=self.n, first=first, ids=ids if self.keep else None,
                           surprisal=self.surprisal, top_ids=self.top_ids, top_probs=self.top_probs)


def score_text(model, vocab: Vocab, text: str, *, unknown: str = "error", **kw) -> ScoreResult:
    """Encode text by charlstm.inputs' rule (unknown characters: error | skip | replace; a literal
    <eot> is the end-of-record symbol) and score it (see score_ids)."""
    ids = encode(vocab, text, unknown)
    r = score_ids(model, ids, **kw)
    r.units = vocab.units
    return r


def per_char_records(result: ScoreResult, vocab: Vocab):
    """One dict per scored symbol: pos (its index in the text's ids), id, char, bits, and top:
    [[char, probability], ...] (the model's most likely predictions, best first)."""
    if result.surprisal is None or result.ids is None:
        raise ValueError("score with per_char=True to get per-character records")
    sym = [vocab.symbol(i) for i in range(len(vocab.symbols))]
    ids = result.ids
    for j in range(result.scored):
        pos = result.first + j
        rec: dict[str, Any] = {"pos": pos, "id": int(ids[pos]), "char": sym[ids[pos]],
                               "bits": round(float(result.surprisal[j]), 4)}
        if result.top_ids is not None:
            rec["top"] = [[sym[int(i)], round(float(p), 4)] for i, p in zip(result.top_ids[j], result.top_probs[j])]
        yield rec


def write_per_char_jsonl(path: str | os.PathLike, result: ScoreResult, vocab: Vocab) -> int:
    """Write per_char_records as JSONL -> number of lines, atomically (charlstm.fileio): a failure
    never leaves half a file."""
    n = 0
    with atomic_file(path, "w", encoding="utf-8") as f:
        for rec in per_char_records(result, vocab):
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return n
