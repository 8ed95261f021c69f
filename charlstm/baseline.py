"""What a general-purpose compressor achieves on the text a model scored: the yardstick printed next
to every score, so a user sees at once whether "1.9 bits per character" is good.

The compressor is `xz -9e`: Python's lzma, preset 9 | PRESET_EXTREME, .xz format (its header, CRC64
and index included, as the `xz` tool writes them). It is given exactly the symbols the model scored,
ids[first:] (charlstm.score: every symbol after the first, or every symbol of a record model's text),
as bytes:

* char models: each character as UTF-8; the end-of-record symbol <eot> as the one byte 0x1E (ASCII's
  record separator) and <unk> as U+FFFD. For a split that is the split's decoded text.
* byte models: the bytes themselves (<eot>: 0x1E).

Bits per character = 8 x compressed bytes / symbols scored: per character for char models (a
character may take several UTF-8 bytes, all compressed), per byte for byte models, the same units as
the model's score, over the same count.

Owns: which bytes stand for a scored text, and the compressor's score. Does not know: models.
"""
from __future__ import annotations

import lzma
from dataclasses import dataclass
from typing import Any

import numpy as np

from charlstm.vocab import Vocab

NAME = "xz -9e"
PRESET = 9 | lzma.PRESET_EXTREME
RECORD_SEPARATOR = b"\x1e"


@dataclass
class Baseline:
    """compressed: bytes of the .xz output; raw: bytes given to it; scored: symbols (the model's
    count); units: "char" or "byte"."""

    compressed: int
    raw: int
    scored: int
    units: str = "char"
    name: str = NAME

    @property
    def bpc(self) -> float:
        return 8.0 * self.compressed / self.scored if self.scored else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {"compressor": self.name, "bpc": self.bpc, "compressed_bytes": self.compressed,
                "raw_bytes": self.raw, "scored": self.scored, "units": self.units}


def scored_bytes(vocab: Vocab, ids: np.ndarray, first: int = 1) -> bytes:
    """The bytes standing for the scored symbols ids[first:] (see the module docstring)."""
    ids = np.asarray(ids, dtype=np.int64)[max(first, 0):]
    if vocab.units == "byte":
        out = ids.copy()
        out[ids >= 256] = RECORD_SEPARATOR[0]
        return out.astype(np.uint8).tobytes()
    table = [s.encode("utf-8") for s in vocab.symbols]
    if vocab.eot_id is not None:
        table[vocab.eot_id] = RECORD_SEPARATOR
    if vocab.unk_id is not None:
        table[vocab.unk_id] = "\ufffd".encode("utf-8")
    if all(len(b) == 1 for b in table):  # ASCII-only vocabularies (most code): one table lookup
        return np.frombuffer(b"".join(table), dtype=np.uint8)[ids].tobytes()
    return b"".join(map(table.__getitem__, ids.tolist()))


def compressor_baseline(vocab: Vocab, ids: np.ndarray, first: int = 1) -> Baseline:
    """What `xz -9e` achieves on the scored symbols ids[first:] -> Baseline."""
    data = scored_bytes(vocab, ids, first)
    n = max(len(ids) - max(first, 0), 0)
    return Baseline(compressed=len(lzma.compress(data, preset=PRESET)), raw=len(data), scored=n, units=vocab.units)
