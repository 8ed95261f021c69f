"""Scoring: bits per character of a text under a model, exactly, and per-character surprisal.

Every symbol after the first is scored once, predicted from everything before it: the text is run
in chunks with the state carried between them (the fused module, so this runs at training speed and
memory stays bounded by the chunk). Bits per character = total surprisal / symbols scored, where
surprisal = -log2 p(symbol | text before it). Byte models score bytes (bits per byte). `<unk>` is
scored like any symbol (so a text with many unknown characters scores optimistically; use
unknown="error", the default, to be told about them).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from charlstm.errors import CharlstmError
from charlstm.vocab import Vocab

LN2 = math.log(2.0)
CHUNK = 2048  # symbols per forward call


@dataclass
class ScoreResult:
    """The score of a sequence of ids.

    bits: total surprisal in bits; scored: symbols scored (len(ids) - 1).
    When per-character detail was asked for: ids [T] (the whole sequence), surprisal [T-1] float32
    (bits of ids[1:]), top_ids / top_probs [T-1, k]: the model's k most likely next symbols before
    each scored symbol.
    """

    bits: float
    scored: int
    units: str = "char"
    ids: np.ndarray | None = None
    surprisal: np.ndarray | None = None
    top_ids: np.ndarray | None = None
    top_probs: np.ndarray | None = None

    @property
    def bpc(self) -> float:
        """Bits per character (per byte for byte models); nan when nothing was scored."""
        return self.bits / self.scored if self.scored else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {"bpc": self.bpc, "bits": self.bits, "scored": self.scored, "units": self.units}


def score_ids(model, ids: np.ndarray | torch.Tensor, *, top: int = 0, per_char: bool = False,
              chunk: int = CHUNK, progress: Callable[[int], None] | None = None) -> ScoreResult:
    """Score ids [T] under model (a CharRNN): every id after the first, state carried across chunks.

    per_char: also keep each symbol's surprisal; top: and the `top` most likely predictions.
    progress(n) is called after each chunk with the number of symbols scored so far.
    """
    if chunk < 1:
        raise CharlstmError(f"chunk must be at least 1, got {chunk}")
    ids = ids.cpu().numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
    ids = ids.astype(np.int64, copy=False)
    T = len(ids)
    V = model.cfg.vocab_size
    if T and (ids.min() < 0 or ids.max() >= V):
        raise CharlstmError(f"ids outside the model's vocabulary (size {V})")
    dev = model.head.weight.device
    n = max(T - 1, 0)
    keep = per_char or top > 0
    k = min(top, V)
    surprisal = np.empty(n, np.float32) if keep else None
    top_ids = np.empty((n, k), np.int32) if keep and k else None
    top_probs = np.empty((n, k), np.float32) if keep and k else None
    total = 0.0
    state = None
    from charlstm.sample import cpu_busy, cpu_threads

    # On a busy CPU, OpenMP threads stall each other: one thread is several times faster there.
    with cpu_threads(1 if dev.type == "cpu" and cpu_busy() else None), torch.inference_mode():
        for s in range(0, n, chunk):
            e = min(s + chunk, n)
            x = torch.from_numpy(ids[s:e]).to(dev)[None]
            y = torch.from_numpy(ids[s + 1:e + 1]).to(dev)
            logits, state = model(x, state)
            logp = torch.log_softmax(logits[0].float(), dim=-1)  # [n_chunk, V]
            nll = -logp.gather(1, y[:, None])[:, 0]
            # Sum in float64 on the host: the total of millions of float32 terms must not drift.
            bits = nll.double() / LN2
            total += float(bits.sum())
            if keep:
                surprisal[s:e] = bits.float().cpu().numpy()
                if k:
                    tp, ti = torch.topk(logp, k, dim=-1)
                    top_ids[s:e] = ti.cpu().numpy()
                    top_probs[s:e] = tp.exp().cpu().numpy()
            if progress is not None:
                progress(e)
    return ScoreResult(bits=total, scored=n, ids=ids if keep else None, surprisal=surprisal,
                       top_ids=top_ids, top_probs=top_probs)


def score_text(model, vocab: Vocab, text: str, *, unknown: str = "error", **kw) -> ScoreResult:
    """Encode text with the model's vocabulary (unknown characters: error | skip | replace) and
    score it (see score_ids)."""
    ids = vocab.encode(text, unknown=unknown)
    r = score_ids(model, ids, **kw)
    r.units = vocab.units
    return r


def split_ids(run_config: dict[str, Any], vocab: Vocab, split: str,
              instead: str = "score a file: charlstm eval RUN FILE") -> np.ndarray:
    """The ids [T] of a split of the run's dataset (config.json "dataset": path, then name), as a
    read-only memmap. Raises CharlstmError if the dataset is gone or no longer has the run's
    vocabulary."""
    from charlstm.dataset import open_dataset

    info = run_config.get("dataset") or {}
    ds = None
    for where in (info.get("path"), info.get("name")):
        if where:
            try:
                ds = open_dataset(where, verify=False)
                break
            except CharlstmError:
                continue
    if ds is None:
        raise CharlstmError(f"the run's dataset '{info.get('name', '?')}' is not found (path '{info.get('path', '')}'); "
                            f"rebuild it with `charlstm data ...` or {instead}")
    if ds.vocab.symbols != vocab.symbols or ds.vocab.units != vocab.units:
        raise CharlstmError(f"dataset '{ds.name}' no longer has the run's vocabulary (it was rebuilt); {instead}")
    if split not in ds.meta["splits"]:
        ds.split(split)  # raises: names the splits there are
    # Check only the split being scored (a train split can be gigabytes).
    from charlstm.dataset import sha256_file

    info = ds.meta["splits"][split]
    f = ds.path / info["file"]
    size = f.stat().st_size if f.is_file() else -1
    if size != info["tokens"] * np.dtype(ds.meta["dtype"]).itemsize or sha256_file(f) != info["sha256"]:
        raise CharlstmError(f"dataset '{ds.name}': {f.name} is missing, truncated or corrupted (checksum); "
                            "rebuild it with `charlstm data ... --force`")
    ids = ds.split(split)
    return ids


def per_char_records(result: ScoreResult, vocab: Vocab):
    """One dict per scored symbol: pos (index in the scored sequence), id, char, bits, and top:
    [[char, probability], ...] (the model's most likely predictions, best first)."""
    if result.surprisal is None or result.ids is None:
        raise ValueError("score with per_char=True to get per-character records")
    sym = [vocab.symbol(i) for i in range(len(vocab.symbols))]
    ids = result.ids
    for j in range(result.scored):
        rec: dict[str, Any] = {"pos": j + 1, "id": int(ids[j + 1]), "char": sym[ids[j + 1]],
                               "bits": round(float(result.surprisal[j]), 4)}
        if result.top_ids is not None:
            rec["top"] = [[sym[int(i)], round(float(p), 4)] for i, p in zip(result.top_ids[j], result.top_probs[j])]
        yield rec


def write_per_char_jsonl(path: str | os.PathLike, result: ScoreResult, vocab: Vocab) -> int:
    """Write per_char_records as JSONL -> number of lines. Streams into a temporary file beside
    `path`, renamed into place at the end, so a failure never leaves half a file."""
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    n = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for rec in per_char_records(result, vocab):
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n += 1
        os.chmod(tmp, 0o644)  # mkstemp makes it private; this is an ordinary output file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n
