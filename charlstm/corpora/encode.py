"""The streaming encoder: UTF-8 byte pieces -> counts (pass 1) and token ids (pass 2).

A corpus reaches this module as an iterable of ``bytes`` pieces (a few MB at most each, cut at a
newline by the sources so no UTF-8 sequence or NFC composition is split). Every piece is turned into
units the same way in both passes, so pass 1's counts and lengths match pass 2's ids exactly.

Undecodable bytes: char units replace each invalid UTF-8 sequence with U+FFFD (counted in
``invalid_utf8``); byte units keep the raw bytes. NFC normalisation (``nfc=True``) applies to the
decoded text; pure-ASCII pieces skip decoding entirely, which is what makes ASCII corpora fast
(pass 1 is one ``np.bincount``, pass 2 one ``bytes.translate``).

``Vocab.encode`` is the simple reference for the ids produced here; the tests check both agree,
and agree with the ``tokenizers`` file.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from charlstm.errors import CharlstmError
from charlstm.vocab import Vocab

_MAX_CP = 0x110000
_FFFD = "\ufffd".encode("utf-8")
MAX_UINT16_VOCAB = 1 << 16


def _decode(piece: bytes, stats: "PieceStats | None") -> str:
    """UTF-8 -> str, invalid sequences -> U+FFFD (each counted, apart from real U+FFFD in the input)."""
    try:
        return piece.decode("utf-8")
    except UnicodeDecodeError:
        text = piece.decode("utf-8", errors="replace")
        if stats is not None:
            stats.invalid_utf8 += text.count("\ufffd") - piece.count(_FFFD)
        return text


def _nfc(text: str) -> str:
    # is_normalized is a fast check; most non-ASCII text is already NFC.
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str, nfc: bool) -> str:
    """A str from outside (JSON, CSV, the hub) made safe to encode: lone surrogates (broken emoji in
    JSON escapes) become U+FFFD, which `tokenizers` can represent, then NFC if asked."""
    if text.isascii():
        return text
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    return _nfc(text) if nfc else text


def code_points(text: str) -> np.ndarray:
    """Code points of text, [len] uint32 (lone surrogates pass through as themselves)."""
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)


def byte_counts(data: bytes) -> np.ndarray:
    """How often each byte value occurs, [256] int64. Counting byte *pairs* (a uint16 view) and
    folding the 256x256 table halves the work of np.bincount, the hot spot of pass 1."""
    even = len(data) & ~1
    pairs = np.bincount(np.frombuffer(data, dtype=np.uint16, count=even // 2), minlength=1 << 16).reshape(256, 256)
    out = pairs.sum(axis=0) + pairs.sum(axis=1)  # little-endian: column = first byte, row = second
    if even < len(data):
        out[data[-1]] += 1
    return out


@dataclass
class PieceStats:
    """What pass 1 learns: total units and, for char units, how often each code point occurs."""

    units: int = 0
    invalid_utf8: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(_MAX_CP, dtype=np.int64))

    def char_counts(self) -> dict[str, int]:
        nz = np.flatnonzero(self.counts)
        return {chr(int(c)): int(self.counts[c]) for c in nz}


class PieceCodec:
    """Turns pieces into units for one setting of (units, nfc), and counts them (pass 1).
    `PieceEncoder` adds the ids (pass 2) on the very same transformation."""

    def __init__(self, units: str, nfc: bool):
        self.units = units
        self.nfc = nfc

    # ------------------------------------------------------------------ byte units
    def _bytes(self, piece: bytes) -> bytes:
        if not self.nfc or piece.isascii():
            return piece
        # surrogateescape keeps invalid bytes as they are through the normalisation round trip.
        return _nfc(piece.decode("utf-8", errors="surrogateescape")).encode("utf-8", errors="surrogateescape")

    # ------------------------------------------------------------------ char units
    def text(self, piece: bytes, stats: PieceStats | None = None) -> str:
        """A piece as the text the model sees (char units): decoded with U+FFFD, NFC if asked."""
        text = _decode(piece, stats)
        return _nfc(text) if self.nfc and not text.isascii() else text

    # ------------------------------------------------------------------ pass 1
    def count(self, piece: bytes, stats: PieceStats) -> None:
        """Add a piece's length (and, for char units, its character counts) to stats."""
        if self.units == "byte":
            stats.units += len(self._bytes(piece))
            return
        if piece.isascii():
            stats.counts[:256] += byte_counts(piece)
            stats.units += len(piece)
            return
        cps = code_points(self.text(piece, stats))
        # bincount up to the largest code point only: cheap for small pieces even with an emoji.
        bc = np.bincount(cps)
        stats.counts[: len(bc)] += bc
        stats.units += len(cps)


    def count_many(self, pieces: list[bytes], stats: PieceStats) -> list[int]:
        """Count a batch of pieces at once and return each piece's length in units (the build needs
        them to find where documents end). One bincount for the whole batch: small pieces such as
        hub rows would each pay for a whole table. Counts and lengths equal `count` piece by piece."""
        joined = b"".join(pieces)
        if joined.isascii():
            if self.units == "char":
                stats.counts[:256] += byte_counts(joined)
            stats.units += len(joined)
            return [len(p) for p in pieces]
        if self.units == "byte":
            lens = [len(self._bytes(p)) for p in pieces]
            stats.units += sum(lens)
            return lens
        texts = [self.text(p, stats) for p in pieces]
        cps = code_points("".join(texts))
        bc = np.bincount(cps)
        stats.counts[: len(bc)] += bc
        stats.units += len(cps)
        return [len(t) for t in texts]


class PieceEncoder(PieceCodec):
    """Pass 2: pieces -> ids in the vocabulary's storage dtype, via dense lookup tables."""

    def __init__(self, vocab: Vocab, nfc: bool):
        super().__init__(vocab.units, nfc)
        self.vocab = vocab
        self.dtype = vocab.dtype
        if vocab.units == "char":
            self.table = char_table(vocab)
            # ASCII pieces with a uint8 vocabulary: bytes.translate maps ids in one C loop.
            self.ascii_translate = bytes(self.table[:256].astype(np.uint8)) if self.dtype == np.uint8 else None

    def encode(self, piece: bytes) -> np.ndarray:
        """A piece's ids, [units] of self.dtype (uint8 pieces share memory with a bytes object)."""
        if self.units == "byte":
            ids = np.frombuffer(self._bytes(piece), dtype=np.uint8)
            return ids if self.dtype == np.uint8 else ids.astype(self.dtype)
        if piece.isascii():
            if self.ascii_translate is not None:
                return np.frombuffer(piece.translate(self.ascii_translate), dtype=np.uint8)
            return self.table[np.frombuffer(piece, dtype=np.uint8)]
        return self.table[code_points(self.text(piece))]

    def encode_many(self, pieces: list[bytes]) -> tuple[np.ndarray, list[int]]:
        """A batch of pieces -> (their ids, concatenated; each piece's length in units): the same
        ids as `encode` piece by piece, with one table lookup for the batch."""
        joined = b"".join(pieces)
        if joined.isascii():
            return self.encode(joined), [len(p) for p in pieces]
        if self.units == "byte":
            parts = [self._bytes(p) for p in pieces]
            ids = np.frombuffer(b"".join(parts), dtype=np.uint8)
            return (ids if self.dtype == np.uint8 else ids.astype(self.dtype)), [len(p) for p in parts]
        texts = [self.text(p) for p in pieces]
        return self.table[code_points("".join(texts))], [len(t) for t in texts]

    def encode_text(self, text: str) -> np.ndarray:
        """Text already cleaned by `clean_text` (records) -> ids, with no further normalisation."""
        if self.units == "byte":
            ids = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
            return ids if self.dtype == np.uint8 else ids.astype(self.dtype)
        return self.table[code_points(text)]


def char_table(vocab: Vocab) -> np.ndarray:
    """Dense code point -> id table in the vocabulary's dtype, unknown characters -> <unk>."""
    t = vocab.lookup_table()
    return np.where(t < 0, vocab.unk_id, t).astype(vocab.dtype)


def build_vocab(units: str, stats: PieceStats | None, min_count: int, records: bool) -> Vocab:
    """The vocabulary for counted text (byte units need no counts, stats may be None); refuses a
    char vocabulary too large for uint16 ids."""
    if units == "byte":
        return Vocab.build_byte(records=records)
    vocab = Vocab.build_char(stats.char_counts(), min_count=min_count)
    if vocab.size > MAX_UINT16_VOCAB:
        raise CharlstmError(
            f"the corpus has {vocab.size - 2} distinct characters, more than uint16 ids can hold; "
            "raise --min-count or use --units byte"
        )
    return vocab
