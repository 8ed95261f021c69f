"""Corpus -> dataset: the two-pass streaming build for running text, the in-memory build for records.

Running text (code, text files, hub text) streams: pass 1 reads every piece to count characters and
the total length (the vocabulary and the split boundaries need both), pass 2 reads them again and
writes ids chunk by chunk, so memory stays bounded by the piece size whatever the corpus size. The
stream is cut contiguously: the first part is train, then val, then test (the end of the stream).

Records (tweets, synthetic sequences) are small and held in memory: each ends in <eot>, and whole
records are dealt to the splits by a seeded permutation.

Both build inside `DatasetBuilder`'s temporary folder and rename it into place, and every check that
can fail (empty corpus, bad options, existing name) runs before that folder is created, so a failure
leaves nothing behind.
"""
from __future__ import annotations

import hashlib
import re
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

import numpy as np
from tqdm import tqdm

from charlstm.corpora.encode import PieceCodec, PieceEncoder, PieceStats, build_vocab, clean_text, code_points
from charlstm.dataset import Dataset, DatasetBuilder, data_root
from charlstm.errors import CharlstmError
from charlstm.fileio import check_name



@dataclass
class EncodeOptions:
    """How text becomes ids; the same options on every source (see `charlstm data --help`)."""

    units: str = "char"          # "char" (one id per code point) or "byte" (UTF-8 bytes)
    min_count: int = 1           # characters seen fewer times become <unk> (char units)
    nfc: bool = True             # Unicode NFC normalisation, so é composed or not is one symbol
    val_frac: float = 0.05       # fraction of the corpus (tokens or records) for validation
    test_frac: float = 0.0       # fraction for the test split (none when 0)
    seed: int = 0                # shuffles records into splits (running text splits need none)

    def validate(self) -> None:
        if self.units not in ("char", "byte"):
            raise CharlstmError(f"unknown units '{self.units}'; use char or byte")
        if self.min_count < 1:
            raise CharlstmError(f"--min-count must be at least 1, got {self.min_count}")
        for flag, v in (("--val-frac", self.val_frac), ("--test-frac", self.test_frac)):
            if not 0 <= v < 1:
                raise CharlstmError(f"{flag} must be in [0, 1), got {v}")
        if self.val_frac + self.test_frac >= 1:
            raise CharlstmError("--val-frac plus --test-frac must leave something to train on (sum < 1)")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def safe_name(text: str) -> str:
    """A dataset name derived from a path or URL: characters outside [word . + -] become '-'."""
    name = re.sub(r"[^\w.+-]+", "-", text).strip("-.")
    return name or "corpus"


def dataset_dir(name: str, data_dir: str | Path | None = None, force: bool = False) -> Path:
    """data_dir/name (data_dir defaults to paths.data_root()), checked before any work is done:
    the name must be a plain folder name, and an existing dataset is refused unless force."""
    check_name(name, "dataset")
    out = Path(data_dir) if data_dir is not None else data_root()
    out = out / name
    if out.exists() and not force:
        raise CharlstmError(f"dataset '{name}' already exists at {out}; use --force to replace it or --name to pick another name")
    return out


def split_sizes(n: int, val_frac: float, test_frac: float, what: str = "tokens") -> tuple[int, int, int]:
    """(train, val, test) counts for n tokens or records. A split asked for gets at least one;
    train must keep at least one, else the corpus is too small for the fractions."""
    n_val = max(1, round(n * val_frac)) if val_frac > 0 else 0
    n_test = max(1, round(n * test_frac)) if test_frac > 0 else 0
    n_train = n - n_val - n_test
    if n_train < 1:
        raise CharlstmError(
            f"the corpus is too small: {n} {what} cannot fill train, val ({val_frac}) and test ({test_frac}) splits; "
            "add data or lower --val-frac/--test-frac"
        )
    return n_train, n_val, n_test


class _SplitWriter:
    """Writes a stream of id arrays across consecutive split files, switching at the given sizes.

    Writing and hashing run on one background thread (both release the GIL), overlapping the
    encoding of the next piece on the main thread; at most two pieces wait, so memory stays bounded.
    """

    def __init__(self, builder: DatasetBuilder, quotas: list[tuple[str, int]], dtype: np.dtype):
        self.b, self.quotas, self.dtype = builder, quotas, dtype
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.pending: deque = deque()
        self.i, self.left, self.f, self.h = -1, 0, None, None
        self.written = 0
        self._next()

    def _submit(self, data: memoryview) -> None:
        def put(f=self.f, h=self.h) -> None:
            f.write(data)
            h.update(data)

        self.pending.append(self.pool.submit(put))
        while len(self.pending) > 2:
            self.pending.popleft().result()  # re-raises a write error here

    def _drain(self) -> None:
        while self.pending:
            self.pending.popleft().result()

    def _next(self) -> None:
        if self.f is not None:
            self._drain()
            self.f.close()
            self.b.close_split(self.quotas[self.i][0], self.dtype, sha256=self.h.hexdigest())
        self.i += 1
        name, self.left = self.quotas[self.i]
        self.f, self.h = self.b.open_split(name), hashlib.sha256()

    def write(self, ids: np.ndarray) -> None:
        while len(ids):
            while self.left == 0 and self.i + 1 < len(self.quotas):
                self._next()
            k = len(ids) if self.i + 1 == len(self.quotas) else min(len(ids), self.left)
            self._submit(ids[:k].data)
            self.left -= k
            self.written += k
            ids = ids[k:]

    def close(self) -> None:
        """Finish the last split (and any left empty); call `shutdown` in any case afterwards."""
        while self.i + 1 < len(self.quotas):
            self._next()
        self._drain()
        self.f.close()
        self.b.close_split(self.quotas[self.i][0], self.dtype, sha256=self.h.hexdigest())
        if self.written != sum(q for _, q in self.quotas):
            raise CharlstmError("the source changed while it was being read; run the command again")

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.f.close()


def _bar(desc: str, total: int | None, progress: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                disable=not progress, leave=False, dynamic_ncols=True)


def _common_stats(vocab, counts: PieceStats | None, min_count: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if vocab.units == "char" and counts is not None:
        nz = counts.counts[counts.counts > 0]
        out["distinct_chars"] = int(len(nz))
        out["unknown"] = int(nz[nz < min_count].sum())  # occurrences mapped to <unk> by --min-count
    return out


class StreamCorpus(Protocol):
    """Running text as UTF-8 byte pieces (see encode.py), readable more than once."""

    total_bytes: int | None  # the sum of piece sizes if known (progress bars), else None

    def pieces(self) -> Iterator[bytes]:
        """The corpus, piece by piece; every call yields the same bytes. Pieces are cut just after
        a newline where possible, so no UTF-8 sequence is split."""

    def stats(self) -> dict[str, Any]:
        """Counts for meta.json (documents, skipped files...), complete after one `pieces()` pass."""


def write_stream(out: Path, corpus: StreamCorpus, opts: EncodeOptions, *, source: dict[str, Any],
                 options: dict[str, Any], force: bool = False, progress: bool = False,
                 what: str = "corpus") -> Dataset:
    """Encode running text into a dataset at `out`, streaming, in two passes over `corpus`."""
    opts.validate()
    codec = PieceCodec(opts.units, opts.nfc)
    counts = PieceStats()
    total_bytes = corpus.total_bytes
    with _bar("reading", total_bytes, progress) as bar:
        for p in corpus.pieces():
            codec.count(p, counts)
            bar.update(len(p))
    if counts.units == 0:
        raise CharlstmError(f"the {what} is empty: nothing to encode")
    vocab = build_vocab(opts.units, counts, opts.min_count, records=False)
    n_train, n_val, n_test = split_sizes(counts.units, opts.val_frac, opts.test_frac)
    quotas = [("train", n_train), ("val", n_val)] + ([("test", n_test)] if opts.test_frac > 0 else [])
    enc = PieceEncoder(vocab, opts.nfc)
    with DatasetBuilder(out, force=force) as b:
        w = _SplitWriter(b, quotas, vocab.dtype)
        try:
            with _bar("encoding", total_bytes, progress) as bar:
                for p in corpus.pieces():
                    w.write(enc.encode(p))
                    bar.update(len(p))
            w.close()
        except OSError as e:
            raise CharlstmError(f"cannot write the dataset in {out.parent}: {e.strerror or e}") from None
        finally:
            w.shutdown()
        stats = {**corpus.stats(), ("characters" if opts.units == "char" else "bytes"): counts.units,
                 "invalid_utf8": counts.invalid_utf8, **_common_stats(vocab, counts, opts.min_count)}
        return b.commit(vocab, {"records": False, "source": source,
                                "options": {**opts.as_dict(), **options}, "stats": stats})


def write_records(out: Path, records: Sequence[str], opts: EncodeOptions, *,
                  source: dict[str, Any], options: dict[str, Any], stats: dict[str, Any],
                  force: bool = False, what: str = "records") -> Dataset:
    """Encode records (each followed by <eot>) into a dataset at `out`.

    Records are dealt to val, test and train by a permutation seeded with opts.seed (val first), so
    every split holds whole records, in shuffled order.
    """
    opts.validate()
    records = [clean_text(r, opts.nfc) for r in records]
    if not records:
        raise CharlstmError(f"no {what} to encode")
    n_train, n_val, n_test = split_sizes(len(records), opts.val_frac, opts.test_frac, what=what)
    counts = None
    if opts.units == "char":
        counts = PieceStats()
        bc = np.bincount(code_points("".join(records)))
        counts.counts[: len(bc)] += bc
        counts.units = int(bc.sum())
    vocab = build_vocab(opts.units, counts, opts.min_count, records=True)
    enc = PieceEncoder(vocab, nfc=False)  # already normalised above
    perm = np.random.default_rng(opts.seed).permutation(len(records))
    parts = {"train": perm[n_val + n_test:], "val": perm[:n_val]}
    if opts.test_frac > 0:
        parts["test"] = perm[n_val:n_val + n_test]
    with DatasetBuilder(out, force=force) as b:
        units = 0
        for name in parts:
            chosen = [records[i] for i in parts[name]]
            ids = enc.encode_text("".join(chosen))
            if opts.units == "byte":
                lens = [len(r.encode("utf-8")) for r in chosen]
            else:
                lens = [len(r) for r in chosen]
            units += len(ids)
            b.write_split(name, np.insert(ids, np.cumsum(lens, dtype=np.int64), vocab.eot_id).astype(vocab.dtype))
        stats = {**stats, "documents": len(records), ("characters" if opts.units == "char" else "bytes"): units,
                 "records_per_split": {k: int(len(v)) for k, v in parts.items()},
                 **_common_stats(vocab, counts, opts.min_count)}
        return b.commit(vocab, {"records": True, "source": source,
                                "options": {**opts.as_dict(), **options}, "stats": stats})
