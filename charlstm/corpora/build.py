"""Corpus -> dataset: the two-pass streaming build for running text, the in-memory build for records.

Running text (code, text files, hub text) streams: a source yields byte pieces tagged with the
document they belong to (a file, a hub row). Pass 1 reads every piece to count characters and each
document's length (the vocabulary and the split need both), pass 2 reads them again and writes ids
batch by batch to the split file of each piece's document, so memory stays bounded by the batch
size (plus 8 bytes per document) whatever the corpus size.

How running text is split (`plan_split`):
- several documents: by whole documents, so that validation (and test) sample the whole corpus, not
  its last folder. Each split gets about its quota of units (`split_sizes`; half a document more
  or less) by jittered systematic sampling under the seed: points spread evenly over the documents
  in corpus order, at a random phase and with a random jitter of a quarter of their spacing, pick
  documents first, then documents in random order, until the next would overshoot more than it
  undershoots (`_fill`). Every run of about 1.5 / val_frac consecutive documents of average length
  thus holds a validation document.
- one document (a single running text), or documents too few or too large to fill a split to half
  its quota or to leave something to train on: the contiguous rule, the last part of the stream
  being val, then test (with a note in meta.json saying why, in the second case).
meta.json records the choice under "split" (see docs/formats.md).

Records (tweets, synthetic sequences) are small and held in memory: each ends in <eot>, and whole
records are dealt to the splits by a seeded permutation.

Both build inside `DatasetBuilder`'s temporary folder and rename it into place, and every check that
can fail (empty corpus, bad options, existing name) runs before that folder is created, so a failure
leaves nothing behind.
"""
from __future__ import annotations

import hashlib
import re
from array import array
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence

import numpy as np
from tqdm import tqdm

from charlstm.corpora.encode import PieceCodec, PieceEncoder, PieceStats, build_vocab, clean_text, code_points
from charlstm.dataset import SPLITS, Dataset, DatasetBuilder, data_root
from charlstm.errors import CharlstmError
from charlstm.fileio import check_name, check_output



@dataclass
class EncodeOptions:
    """How text becomes ids; the same options on every source (see `charlstm data --help`)."""

    units: str = "char"          # "char" (one id per code point) or "byte" (UTF-8 bytes)
    min_count: int = 1           # characters seen fewer times become <unk> (char units)
    nfc: bool = True             # Unicode NFC normalisation, so é composed or not is one symbol
    val_frac: float = 0.05       # fraction of the corpus (tokens or records) for validation
    test_frac: float = 0.0       # fraction for the test split (none when 0)
    seed: int = 0                # chooses the records, or the documents of running text, of each split

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
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:  # numpy's generators
            raise CharlstmError(f"--seed must be a whole number >= 0, got {self.seed}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def safe_name(text: str) -> str:
    """A dataset name derived from a path or URL: characters outside [word . + -] become '-'."""
    name = re.sub(r"[^\w.+-]+", "-", text).strip("-.")
    return name or "corpus"


def dataset_dir(name: str, data_dir: str | Path | None = None, force: bool = False) -> Path:
    """data_dir/name (data_dir defaults to paths.data_root()), checked before any work is done:
    the name must be a plain folder name, the folder must be writable (no file in the way), and an
    existing dataset is refused unless force."""
    check_name(name, "dataset")
    out = Path(data_dir) if data_dir is not None else data_root()
    out = check_output(out / name, "dataset", folder=True)  # e.g. a --data-dir under a file
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
    """Writes id arrays to the split files, all open at once, each with its running sha256.

    Writing and hashing run on one background thread (both release the GIL), overlapping the
    encoding of the next batch on the main thread; at most two writes wait, so memory stays bounded.
    `close` checks that every split got exactly the units pass 1 planned for it."""

    def __init__(self, builder: DatasetBuilder, expected: dict[str, int], dtype: np.dtype):
        self.b, self.expected, self.dtype = builder, expected, dtype
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.pending: deque = deque()
        self.files = {name: builder.open_split(name) for name in expected}
        self.hashes = {name: hashlib.sha256() for name in expected}
        self.written = dict.fromkeys(expected, 0)

    def write(self, name: str, ids: np.ndarray) -> None:
        if not len(ids):
            return
        f, h, data = self.files[name], self.hashes[name], np.ascontiguousarray(ids).data

        def put() -> None:
            f.write(data)
            h.update(data)

        self.written[name] += len(ids)
        self.pending.append(self.pool.submit(put))
        while len(self.pending) > 2:
            self.pending.popleft().result()  # re-raises a write error here

    def close(self) -> None:
        """Finish every split; call `shutdown` in any case afterwards."""
        while self.pending:
            self.pending.popleft().result()
        if self.written != self.expected:
            raise CharlstmError("the source changed while it was being read; run the command again")
        for name, f in self.files.items():
            f.close()
            self.b.close_split(name, self.dtype, sha256=self.hashes[name].hexdigest())

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        for f in self.files.values():
            f.close()


def _bar(desc: str, total: int | None, progress: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                disable=None if progress else True, leave=False, dynamic_ncols=True)  # None: only on a terminal


def _common_stats(vocab, counts: PieceStats | None, min_count: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if vocab.units == "char" and counts is not None:
        nz = counts.counts[counts.counts > 0]
        out["distinct_chars"] = int(len(nz))
        out["unknown"] = int(nz[nz < min_count].sum())  # occurrences mapped to <unk> by --min-count
    return out


class StreamCorpus(Protocol):
    """Running text as UTF-8 byte pieces tagged with their document (see encode.py), readable more
    than once."""

    total_bytes: int | None  # the sum of piece sizes if known (progress bars), else None
    document: str  # what a document is, for people: "file", "row"

    def pieces(self) -> Iterator[tuple[int, bytes]]:
        """The corpus as (document index, piece) pairs; every call yields the same ones. Document
        indices start at 0 and never decrease (an index skipped is an empty document). Pieces are
        cut just after a newline where possible, so no UTF-8 sequence is split, and every document
        ends with a newline."""

    def names(self) -> Sequence[str | int]:
        """Each document's name by index (a file's path, a row's number), complete after one
        `pieces()` pass."""

    def stats(self) -> dict[str, Any]:
        """Counts for meta.json (documents, skipped files...), complete after one `pieces()` pass."""


# Bytes of pieces encoded together: one numpy call per batch however small the pieces (hub rows);
# larger batches are no faster and raise the peak memory (1 MB: +10 MB on the stdlib).
BATCH = 1 << 18
MAX_NAMED = 1000  # document names listed per split in meta.json (the counts are always complete)


def _batches(pieces: Iterable[tuple[int, bytes]], size: int = BATCH) -> Iterator[tuple[list[int], list[bytes]]]:
    """Consecutive (document, piece) pairs grouped into batches of about `size` bytes."""
    docs: list[int] = []
    parts: list[bytes] = []
    n = 0
    for doc, piece in pieces:
        docs.append(doc)
        parts.append(piece)
        n += len(piece)
        if n >= size:
            yield docs, parts
            docs, parts, n = [], [], 0
    if parts:
        yield docs, parts


@dataclass
class SplitPlan:
    """How running text is cut into splits. by: "document" (assign[d] = 0 train, 1 val, 2 test for
    document d) or "contiguous" (sizes: the train, val, test units in stream order); note: why the
    contiguous rule was used although there are several documents (None otherwise)."""

    by: str
    sizes: tuple[int, int, int]
    assign: np.ndarray | None = None
    note: str | None = None


def _fill(lengths: np.ndarray, free: np.ndarray, target: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of free documents making up about `target` units, in an order that spreads them over
    the corpus: first the documents at jittered systematic points, then the rest, each in random
    order. The points are spread over the documents' *order*, not their units (which would favour
    long documents): k points for the k documents an average length would need, at spacing n / k
    from a random phase, each jittered by up to a quarter of the spacing.

    Documents are taken in that order while each brings the total closer to `target`; the first
    that would not ends the choice, so the choice is a prefix of the order and favours neither
    short nor long documents (skipping it and going on would fill the rest with the smallest files).
    Only documents longer than the whole target are passed over. The total ends within
    [target / 2, 1.5 x target] whenever some document is no longer than the target."""
    idx = np.flatnonzero(free)
    L = lengths[idx]
    n = len(idx)
    k = min(n, max(1, round(n * target / int(L.sum()))))
    points = (np.arange(k) + rng.random() + rng.uniform(-0.25, 0.25, k)) / k * n % n
    hit = np.unique(points.astype(np.int64))
    rest = np.setdiff1d(np.arange(n), hit, assume_unique=True)
    order = np.concatenate([rng.permutation(hit), rng.permutation(rest)])
    chosen, got = [], 0
    for j in order.tolist():
        size = int(L[j])
        if size > target:
            continue
        if 2 * got + size >= 2 * target:  # got + size / 2 >= target: taking it would not come closer
            break
        chosen.append(j)
        got += size
    return idx[np.array(chosen, dtype=np.int64)]


def plan_split(lengths: np.ndarray, n_val: int, n_test: int, seed: int, what: str = "document",
               units: str = "characters") -> SplitPlan:
    """The split of running text with documents of `lengths` units (see the module docstring),
    given the val and test quotas from `split_sizes`."""
    total = int(lengths.sum())
    contiguous = SplitPlan("contiguous", (total - n_val - n_test, n_val, n_test))
    n_docs = int((lengths > 0).sum())
    if n_docs <= 1:
        return contiguous  # one running text: its end is the most honest held-out part
    rng = np.random.default_rng(seed)
    assign = np.zeros(len(lengths), dtype=np.int8)
    for k, (name, target) in enumerate((("val", n_val), ("test", n_test)), 1):
        if target == 0:
            continue
        if not ((assign == 0) & (lengths > 0)).any():
            break  # val took every document: refused below
        chosen = _fill(lengths, (assign == 0) & (lengths > 0), target, rng)
        got = int(lengths[chosen].sum())
        if 2 * got < target:
            contiguous.note = (f"{n_docs} {what}s are too few or too large to fill half of the {name} split's "
                               f"{target:,} {units} with whole {what}s")
            return contiguous
        assign[chosen] = k
    train, val, test = (int(lengths[assign == k].sum()) for k in range(3))
    if train == 0:  # the splits took every document (a split may get up to half a document more than its quota)
        contiguous.note = f"whole {what}s for val and test would leave no {what} to train on"
        return contiguous
    return SplitPlan("document", (train, val, test), assign)


def _split_meta(plan: SplitPlan, lengths: np.ndarray, seed: int, names: Sequence[str | int],
                what: str) -> dict[str, Any]:
    """meta.json's "split": how the stream was cut, and which (non-empty) documents went where."""
    if plan.by == "contiguous":
        return {"by": "contiguous", **({"note": plan.note} if plan.note else {})}
    out: dict[str, Any] = {"by": "document", "seed": seed, "document": what, "documents": {}, "names": {}}
    for k, split in enumerate(SPLITS):
        docs = np.flatnonzero((plan.assign == k) & (lengths > 0))
        out["documents"][split] = int(len(docs))
        if k:
            out["names"][split] = [names[int(d)] for d in docs[:MAX_NAMED]]
    return out


def _doc_lengths(corpus: StreamCorpus, codec: PieceCodec, counts: PieceStats, bar: tqdm) -> np.ndarray:
    """Pass 1: count every piece into `counts`; each document's length in units."""
    lengths = array("q")
    for docs, parts in _batches(corpus.pieces()):
        for d, n in zip(docs, codec.count_many(parts, counts)):
            if d >= len(lengths):
                lengths.extend([0] * (d + 1 - len(lengths)))  # documents skipped are empty
            elif d < len(lengths) - 1:
                raise RuntimeError(f"documents out of order: {d} after {len(lengths) - 1}")  # a source bug
            lengths[d] += n
        bar.update(sum(map(len, parts)))
    return np.frombuffer(lengths, dtype=np.int64) if lengths else np.zeros(0, dtype=np.int64)


def _route(plan: SplitPlan, docs: list[int], ids: np.ndarray, lens: list[int], pos: int,
           w: _SplitWriter) -> None:
    """Pass 2: hand a batch's ids to the writer, split by document or by stream position `pos`."""
    if plan.by == "contiguous":
        start = 0
        for name, end in zip(SPLITS, np.cumsum(plan.sizes).tolist()):
            k = min(max(end - pos, 0), len(ids))
            if k > start:
                w.write(name, ids[start:k])
                start = k
        if start < len(ids):  # more than pass 1 counted
            raise CharlstmError("the source changed while it was being read; run the command again")
        return
    if max(docs) >= len(plan.assign):
        raise CharlstmError("the source changed while it was being read; run the command again")
    where = plan.assign[np.array(docs)]
    # Runs of consecutive pieces bound for the same split are written as views (no copies).
    bounds = np.concatenate([[0], np.cumsum(lens)])
    cuts = [0, *(np.flatnonzero(where[1:] != where[:-1]) + 1).tolist(), len(where)]
    for a, b in zip(cuts, cuts[1:]):
        w.write(SPLITS[where[a]], ids[bounds[a]:bounds[b]])


def write_stream(out: Path, corpus: StreamCorpus, opts: EncodeOptions, *, source: dict[str, Any],
                 options: dict[str, Any], force: bool = False, progress: bool = False,
                 what: str = "corpus") -> Dataset:
    """Encode running text into a dataset at `out`, streaming, in two passes over `corpus`."""
    opts.validate()
    codec = PieceCodec(opts.units, opts.nfc)
    counts = PieceStats()
    total_bytes = corpus.total_bytes
    with _bar("reading", total_bytes, progress) as bar:
        lengths = _doc_lengths(corpus, codec, counts, bar)
    if counts.units == 0:
        raise CharlstmError(f"the {what} is empty: nothing to encode")
    vocab = build_vocab(opts.units, counts, opts.min_count, records=False)
    _, n_val, n_test = split_sizes(counts.units, opts.val_frac, opts.test_frac)
    unit_word = "characters" if opts.units == "char" else "bytes"
    doc_word = corpus.document
    plan = plan_split(lengths, n_val, n_test, opts.seed, doc_word, unit_word)
    expected = dict(zip(SPLITS, plan.sizes))
    if opts.test_frac == 0:
        del expected["test"]
    enc = PieceEncoder(vocab, opts.nfc)
    with DatasetBuilder(out, force=force) as b:
        w = _SplitWriter(b, expected, vocab.dtype)
        try:
            pos = 0
            with _bar("encoding", total_bytes, progress) as bar:
                for docs, parts in _batches(corpus.pieces()):
                    ids, lens = enc.encode_many(parts)
                    _route(plan, docs, ids, lens, pos, w)
                    pos += len(ids)
                    bar.update(sum(map(len, parts)))
            w.close()
        except OSError as e:
            raise CharlstmError(f"cannot write the dataset in {out.parent}: {e.strerror or e}") from None
        finally:
            w.shutdown()
        stats = {**corpus.stats(), unit_word: counts.units,
                 "invalid_utf8": counts.invalid_utf8, **_common_stats(vocab, counts, opts.min_count)}
        return b.commit(vocab, {"records": False, "source": source,
                                "options": {**opts.as_dict(), **options}, "stats": stats,
                                "split": _split_meta(plan, lengths, opts.seed, corpus.names(), doc_word)})


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
                                "options": {**opts.as_dict(), **options}, "stats": stats,
                                "split": {"by": "record", "seed": opts.seed}})
