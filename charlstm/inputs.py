"""What a command reads: a text, a file or a split of the run's dataset, as the ids the model sees.

Owns the one rule every command and the Python API follow (`charlstm sample --prime`, `eval`,
`trace`, `neurons`, `charlstm.load(...).generate/score/trace`):

* a text given to a command is encoded with the model's vocabulary, and the literal ``<eot>`` in it
  stands for the end-of-record symbol when the vocabulary has one (records: tweets, synthetic
  tasks), so records can be written inline: ``aaXbb<eot>aaaXbbb<eot>``;
* characters the vocabulary lacks follow one policy (error, skip or replace with <unk>) with one
  wording for the error;
* a file is UTF-8 text; a byte model reads any bytes (undecodable ones travel as surrogates and
  encode back to the very same bytes); '-' is standard input;
* a split is read from the run's dataset only when that dataset still has the run's vocabulary
  (same units and symbols) and the split's checksum matches;
* exactly one of text, file or split is given.

Does not know: models (the vocabulary and the run's config.json are all it needs).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from charlstm.dataset import open_dataset, sha256_file
from charlstm.errors import CharlstmError
from charlstm.vocab import EOT, Vocab, check_policy, unknown_error

_PIECE = 1 << 20  # characters encoded at a time: a 10 MB text never needs all its int64 ids and UTF-32 at once


def read_file(path: str | os.PathLike, units: str = "char", what: str = "file") -> str:
    """A file's text ('-' = standard input). Char models need UTF-8; byte models take any bytes
    (kept as surrogates, which encode back to the same bytes). Errors are one CharlstmError line."""
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise CharlstmError(f"cannot read {what} {path}: no such file") from None
    except IsADirectoryError:
        raise CharlstmError(f"{what} {path} is a folder; give a text file") from None
    except OSError as e:
        raise CharlstmError(f"cannot read {what} {path}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8", errors="surrogateescape" if units == "byte" else "strict")
    except UnicodeDecodeError as e:
        raise CharlstmError(f"{what} {path} is not UTF-8 text (byte {e.start}); convert it to UTF-8") from None


def encode(vocab: Vocab, text: str, unknown: str = "error") -> np.ndarray:
    """Text -> ids [T] in the vocabulary's storage dtype (uint8 or uint16), by the module's rule:
    each literal ``<eot>`` becomes the end-of-record id when the vocabulary has one."""
    check_policy(unknown)
    pieces = text.split(EOT) if vocab.eot_id is not None else [text]
    if unknown == "error":
        found: list[tuple[str, int]] = []
        total, offset = 0, 0
        for piece in pieces:
            pos = vocab.missing(piece)
            total += len(pos)
            found += [(piece[p], int(p) + offset) for p in pos[:5 - len(found)]]
            offset += len(piece) + len(EOT)
        if total:
            raise unknown_error(found, total)
    out: list[np.ndarray] = []
    for k, piece in enumerate(pieces):
        if k:
            out.append(np.array([vocab.eot_id], dtype=vocab.dtype))
        for s in range(0, len(piece), _PIECE):
            out.append(vocab.encode(piece[s:s + _PIECE], unknown=unknown).astype(vocab.dtype))
    return np.concatenate(out) if out else np.zeros(0, dtype=vocab.dtype)


def split_ids(run_config: dict[str, Any], vocab: Vocab, split: str,
              instead: str = "give a file or a text instead") -> np.ndarray:
    """The ids [T] of a split of the run's dataset (config.json "dataset": its path, then its name),
    as a read-only memmap. Raises CharlstmError when the dataset is gone, no longer has the run's
    vocabulary (it was rebuilt), lacks the split, or the split's file fails its checksum."""
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
    sp = ds.meta["splits"][split]
    f = ds.path / sp["file"]
    size = f.stat().st_size if f.is_file() else -1
    # Only the split being read is checked (a train split can be gigabytes).
    if size != sp["tokens"] * np.dtype(ds.meta["dtype"]).itemsize or sha256_file(f) != sp["sha256"]:
        raise CharlstmError(f"dataset '{ds.name}': {f.name} is missing, truncated or corrupted (checksum); "
                            "rebuild it with `charlstm data ... --force`")
    return ds.split(split)


def step_symbols(vocab: Vocab, ids: np.ndarray) -> list[str]:
    """One symbol per id, as features expect them: the character, "<eot>" for the boundary,
    "<unk>"; bytes of a byte vocabulary beyond ASCII become U+FFFD (one step each)."""
    if vocab.units == "char":
        table = list(vocab.symbols)
    else:
        table = [chr(i) if i < 128 else "\ufffd" for i in range(256)] + [EOT] * (vocab.size - 256)
    return [table[i] for i in np.asarray(ids, dtype=np.int64).tolist()]


@dataclass
class Input:
    """What a model reads. ids [T] (uint8/uint16/int64; a memmap for a split); source: a few words
    for tables ("split val of stdlib", "--text", "file foo.py"); truncated: cut by a limit; origin:
    the same as JSON for files that record it ({"kind": "text"}, {"kind": "file", "file"} or
    {"kind": "split", "split", "dataset"}; docs/formats.md)."""

    ids: np.ndarray
    vocab: Vocab
    source: str
    truncated: bool = False
    origin: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def symbols(self) -> list[str]:
        """One symbol per id (see step_symbols): what features are computed on."""
        return step_symbols(self.vocab, self.ids)


def check_one_source(text: Any = None, file: Any = None, split: Any = None) -> None:
    """Exactly one of --text, --file and --split, or a CharlstmError saying what was given."""
    given = [n for n, v in (("--text", text), ("--file", file), ("--split", split)) if v is not None]
    if len(given) != 1:
        raise CharlstmError("give exactly one of --text, --file or --split"
                            + (f" (got {' and '.join(given)})" if given else ""))


def read_input(vocab: Vocab, run_config: dict[str, Any] | None = None, *, text: str | None = None,
               file: str | os.PathLike | None = None, split: str | None = None, limit: int | None = None,
               unknown: str = "error", min_len: int = 1, what: str = "read") -> Input:
    """Exactly one of text, file or split (of the run's dataset) -> Input of at most `limit` ids.
    Raises CharlstmError for no or several sources, an unreadable file, a missing or rebuilt
    dataset, unknown characters (unknown="error"), or fewer than `min_len` ids (`what` names the
    work in that message: "nothing to trace: ...")."""
    check_one_source(text, file, split)
    if limit is not None and limit < min_len:
        raise CharlstmError(f"--limit must be at least {min_len}, got {limit}")
    if split is not None:
        all_ids = split_ids(run_config or {}, vocab, split, instead="use --text or --file instead of --split")
        name = ((run_config or {}).get("dataset") or {}).get("name", "?")
        source, origin = f"split {split} of {name}", {"kind": "split", "split": split, "dataset": name}
    else:
        if file is not None:
            text = read_file(file, vocab.units)
            source, origin = f"file {Path(str(file)).name}", {"kind": "file", "file": str(file)}
        else:
            source, origin = "--text", {"kind": "text"}
        all_ids = encode(vocab, text, unknown)
    truncated = limit is not None and len(all_ids) > limit
    ids = all_ids[:limit] if truncated else all_ids
    if len(ids) < min_len:
        if len(ids) == 0:
            if split is not None:
                have = f"the '{split}' split of the run's dataset is empty"
            elif text:
                have = "every character was skipped as unknown"
            else:
                have = f"the file {Path(str(file)).name} is empty" if file is not None else "the text is empty"
        else:
            have = f"{source} has {len(ids)} character(s); at least {min_len} are needed"
        raise CharlstmError(f"nothing to {what}: {have}")
    return Input(ids, vocab, source, bool(truncated), origin)
