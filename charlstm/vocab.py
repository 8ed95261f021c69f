"""Character and byte vocabularies, saved as a `tokenizers` tokenizer.json.

Two kinds of units:
- ``char``: one symbol per Unicode code point seen in the corpus (optionally only those seen at least
  ``min_count`` times). Ids: 0 = ``<unk>``, 1 = ``<eot>`` (end of text/record), then the characters
  sorted by code point. Characters not in the vocabulary map to ``<unk>`` (or raise/skip, by policy).
- ``byte``: the 256 byte values of the UTF-8 encoding, id == byte value, so any text encodes with no
  unknowns; ``<eot>`` is added as id 256 only when the dataset is made of records (tweets, synthetic).

The file written is a real `tokenizers` tokenizer (``Tokenizer.from_file`` loads it and gives the same
ids as `Vocab.encode`). `tokenizers` encodes character-level text at well under 1 MB/s, so encoding
here uses a dense numpy lookup table over code points; tests check both paths agree. The literal
text "<eot>" is five ordinary characters here; `tokenizers` treats it the same way because the
specials are not registered as "added tokens".
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal

import numpy as np

from charlstm.errors import CharlstmError

UNK = "<unk>"
EOT = "<eot>"
Units = Literal["char", "byte"]
UnknownPolicy = Literal["error", "skip", "replace"]
_MAX_CP = 0x110000


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map, as used by tokenizers' ByteLevel."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


UNKNOWN_POLICIES = ("error", "skip", "replace")


def check_policy(unknown: str) -> None:
    """The unknown-character policy is one of UNKNOWN_POLICIES (else a CharlstmError)."""
    if unknown not in UNKNOWN_POLICIES:
        raise CharlstmError(f"unknown-character policy must be error, skip or replace, got '{unknown}'")


def unknown_error(first: list[tuple[str, int]], total: int) -> CharlstmError:
    """The one error for unknown characters: the first few (character, position) and the count."""
    shown = ", ".join(f"{c!r} at {p}" for c, p in first[:5])
    more = f" and {total - len(first[:5])} more" if total > len(first[:5]) else ""
    return CharlstmError(f"{total} character(s) not in the model's vocabulary: {shown}{more}; "
                         "use --unknown skip or --unknown replace")


@dataclass
class Vocab:
    """A character or byte vocabulary.

    Attributes:
        units: "char" or "byte".
        symbols: id -> symbol. For char units the symbol is the character itself (or "<unk>"/"<eot>");
            for byte units ids 0..255 are single bytes, shown as the GPT-2 byte character.
        eot_id: id of "<eot>", or None (byte vocabularies of non-record datasets have none).
        unk_id: id of "<unk>" (char units), None for byte units.
    """

    units: Units
    symbols: list[str]
    eot_id: int | None
    unk_id: int | None
    _table: np.ndarray | None = field(default=None, repr=False, compare=False)

    # ----------------------------------------------------------------- construction
    @classmethod
    def build_char(cls, counts: Counter | dict[str, int], min_count: int = 1) -> "Vocab":
        """A char vocabulary from character counts; characters seen < min_count times become <unk>."""
        chars = sorted((c for c, n in counts.items() if n >= min_count and c not in (UNK, EOT)), key=ord)
        return cls(units="char", symbols=[UNK, EOT] + chars, eot_id=1, unk_id=0)

    @classmethod
    def build_byte(cls, records: bool) -> "Vocab":
        b2u = _bytes_to_unicode()
        symbols = [b2u[b] for b in range(256)] + ([EOT] if records else [])
        return cls(units="byte", symbols=symbols, eot_id=256 if records else None, unk_id=None)

    @property
    def size(self) -> int:
        return len(self.symbols)

    @property
    def dtype(self) -> np.dtype:
        """Storage dtype of encoded ids: uint8 when every id fits, else uint16."""
        return np.dtype(np.uint8) if self.size <= 256 else np.dtype(np.uint16)

    # ----------------------------------------------------------------- encoding
    def _lookup(self) -> np.ndarray:
        """Dense code point -> id table (-1 = not in vocabulary), built once (4.4 MB int32)."""
        if self._table is None:
            t = np.full(_MAX_CP, -1, dtype=np.int32)
            for i, s in enumerate(self.symbols):
                if len(s) == 1 and i not in (self.unk_id, self.eot_id):
                    t[ord(s)] = i
            self._table = t
        return self._table

    def lookup_table(self) -> np.ndarray:
        """Dense code point -> id table, int32 [0x110000], -1 where a character is not in the
        vocabulary (built once, cached). Streaming encoders index it with whole arrays of code points."""
        return self._lookup()

    def encode(self, text: str, unknown: UnknownPolicy = "replace") -> np.ndarray:
        """Text -> ids, shape [len] int64 (characters for char units, UTF-8 bytes for byte units).

        unknown: what to do with characters not in a char vocabulary: "replace" with <unk>, "skip"
        them, or "error" (raises CharlstmError naming the characters and their positions). The
        literal text "<eot>" is five characters here; charlstm.inputs reads it as the boundary.
        """
        check_policy(unknown)
        if self.units == "byte":
            return np.frombuffer(text.encode("utf-8", errors="surrogateescape"), dtype=np.uint8).astype(np.int64)
        cps = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
        ids = self._lookup()[cps].astype(np.int64)
        missing = ids < 0
        if missing.any():
            if unknown == "error":
                pos = np.flatnonzero(missing)
                raise unknown_error([(text[p], int(p)) for p in pos[:5]], len(pos))
            if unknown == "skip":
                ids = ids[~missing]
            else:
                ids[missing] = self.unk_id
        return ids

    def missing(self, text: str) -> np.ndarray:
        """Positions [k] int64 of the characters of text that a char vocabulary lacks ([] for bytes)."""
        if self.units == "byte" or not text:
            return np.zeros(0, dtype=np.int64)
        cps = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
        return np.flatnonzero(self._lookup()[cps] < 0)

    def unknown_chars(self, text: str) -> list[str]:
        """Distinct characters of text that this vocabulary lacks (always [] for byte units)."""
        if self.units == "byte":
            return []
        return sorted({c for c in set(text) if ord(c) >= _MAX_CP or self._lookup()[ord(c)] < 0}, key=ord)

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        """Ids [len] -> text; <eot> appears as the literal "<eot>" (byte runs decode as UTF-8, with
        U+FFFD for an incomplete or invalid sequence)."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        if self.units == "byte":
            out, start = [], 0
            for j in np.flatnonzero(ids >= 256):
                out.append(bytes(ids[start:j].astype(np.uint8)).decode("utf-8", errors="replace"))
                out.append(EOT)
                start = j + 1
            out.append(bytes(ids[start:].astype(np.uint8)).decode("utf-8", errors="replace"))
            return "".join(out)
        syms = self.symbols
        return "".join(syms[i] for i in ids.tolist())

    def symbol(self, i: int) -> str:
        """A readable form of one id (byte ids as the character when printable, else \\xNN)."""
        if self.units == "byte" and i < 256:
            return chr(i) if 32 <= i < 127 or i in (9, 10) else f"\\x{i:02x}"
        return self.symbols[i]

    # ----------------------------------------------------------------- tokenizer.json
    def to_tokenizer(self):
        """The equivalent `tokenizers.Tokenizer` (WordLevel over single characters or bytes)."""
        from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

        vocab = {s: i for i, s in enumerate(self.symbols)}
        split = pre_tokenizers.Split(Regex(r"(?m)."), behavior="isolated")  # (?m) is dot-all in Oniguruma
        if self.units == "byte":
            tok = Tokenizer(models.WordLevel(vocab, unk_token=EOT if self.eot_id is not None else self.symbols[0]))
            tok.pre_tokenizer = pre_tokenizers.Sequence(
                [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False), split]
            )
            tok.decoder = decoders.ByteLevel()
        else:
            tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
            tok.pre_tokenizer = split
            tok.decoder = decoders.Fuse()
        return tok

    def save(self, path: str | os.PathLike) -> None:
        """Write tokenizer.json, a plain `tokenizers` file (units and specials are inferred on load)."""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike, owner: str = "dataset") -> "Vocab":
        """Read a tokenizer.json; owner ("dataset" or "run") names whose copy it is in errors."""
        fix = "rebuild the dataset" if owner == "dataset" else "the run's copy is damaged: retrain it, or copy the dataset's tokenizer.json over it"
        try:
            return cls.from_json(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise CharlstmError(f"cannot read vocabulary {path}: {e.strerror}; {fix}") from None
        except CharlstmError as e:
            raise CharlstmError(f"{path}: {e}; {fix}") from None

    @classmethod
    def from_json(cls, text: str) -> "Vocab":
        """Parse tokenizer.json text: byte units are recognised by the ByteLevel pre-tokenizer."""
        try:
            data = json.loads(text)
            vocab: dict[str, int] = data["model"]["vocab"]
            pre = data.get("pre_tokenizer") or {}
            symbols = [""] * len(vocab)
            for s, i in vocab.items():
                symbols[i] = s
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            raise CharlstmError(f"invalid tokenizer.json ({type(e).__name__}: {e})") from None
        if any(not s for s in symbols):
            raise CharlstmError("invalid tokenizer.json (its ids are not 0..n-1)")
        units: Units = "byte" if pre.get("type") == "Sequence" else "char"
        return cls(units=units, symbols=symbols, eot_id=vocab.get(EOT),
                   unk_id=vocab.get(UNK) if units == "char" else None)

    def to_json(self) -> str:
        """tokenizer.json content as a string (also stored in checkpoints so a run is self-contained)."""
        return self.to_tokenizer().to_str()
