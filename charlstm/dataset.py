"""Encoded datasets on disk: data/<name>/{train,val[,test]}.bin + tokenizer.json + meta.json.

Reading (`open_dataset`) memory-maps the splits and checks their sha256 against meta.json, so later
stages detect a corrupted or truncated dataset. Writing (`write_dataset`) builds the whole dataset in
a temporary sibling folder and renames it into place, so a failure never leaves a partial dataset.
See docs/formats.md for the format.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from charlstm.errors import CharlstmError
from charlstm.vocab import Vocab

FORMAT = "charlstm-dataset"
VERSION = 1
SPLITS = ("train", "val", "test")


def data_root() -> Path:
    """Where datasets live: $CHARLSTM_DATA, else ./data."""
    return Path(os.environ.get("CHARLSTM_DATA", "data"))


def resolve_dataset(name_or_path: str | os.PathLike) -> Path:
    """A dataset folder: an existing path containing meta.json, else data_root()/name."""
    p = Path(name_or_path)
    if (p / "meta.json").is_file():
        return p
    q = data_root() / str(name_or_path)
    if (q / "meta.json").is_file():
        return q
    raise CharlstmError(
        f"no dataset named '{name_or_path}' (looked in {p} and {q}); "
        "create one with `charlstm data ...` or run `charlstm data list`"
    )


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


@dataclass
class Dataset:
    """An opened dataset. `split(name)` returns the ids as a read-only memmap, shape [tokens]."""

    path: Path
    meta: dict[str, Any]
    vocab: Vocab

    @property
    def name(self) -> str:
        return self.meta.get("name", self.path.name)

    @property
    def splits(self) -> list[str]:
        return [s for s in SPLITS if s in self.meta["splits"]]

    def split(self, name: str) -> np.ndarray:
        info = self.meta["splits"].get(name)
        if info is None:
            raise CharlstmError(f"dataset '{self.name}' has no '{name}' split (it has: {', '.join(self.splits)})")
        if info["tokens"] == 0:
            return np.zeros(0, dtype=self.meta["dtype"])
        return np.memmap(self.path / info["file"], dtype=self.meta["dtype"], mode="r", shape=(info["tokens"],))

    def verify(self) -> None:
        """Check each split file's size and sha256 against meta.json (raises CharlstmError)."""
        item = np.dtype(self.meta["dtype"]).itemsize
        for name in self.splits:
            info = self.meta["splits"][name]
            f = self.path / info["file"]
            if not f.is_file() or f.stat().st_size != info["tokens"] * item:
                raise CharlstmError(f"dataset '{self.name}': {f.name} is missing or truncated; rebuild it with `charlstm data ... --force`")
            if sha256_file(f) != info["sha256"]:
                raise CharlstmError(f"dataset '{self.name}': {f.name} does not match its checksum (corrupted); rebuild it with `charlstm data ... --force`")


def open_dataset(name_or_path: str | os.PathLike, verify: bool = True) -> Dataset:
    """Open data/<name> (or a dataset folder path), optionally verifying checksums."""
    path = resolve_dataset(name_or_path)
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CharlstmError(f"cannot read {path / 'meta.json'} ({e}); rebuild the dataset") from None
    if meta.get("format") != FORMAT:
        raise CharlstmError(f"{path} is not a charlstm dataset (meta.json has no format '{FORMAT}')")
    ds = Dataset(path=path, meta=meta, vocab=Vocab.load(path / "tokenizer.json"))
    if verify:
        ds.verify()
    return ds


class DatasetBuilder:
    """Builds a dataset folder atomically: files go to a temp folder beside `out`, which is renamed
    onto `out` by `commit()` (refusing an existing `out` unless force). Use as a context manager:
    entering makes the temp folder, and on an exception (Ctrl-C included, even while the folder is
    being made) it is removed and nothing is left behind.

        with DatasetBuilder(out, force=False) as b:
            b.write_split("train", ids_uint8_array)   # or b.open_split("train") for streaming
            ...
            b.commit(vocab, meta)
    """

    def __init__(self, out: str | os.PathLike, force: bool = False):
        self.out = Path(out)
        if self.out.exists() and not force:
            raise CharlstmError(f"dataset '{self.out.name}' already exists at {self.out}; use --force to replace it or --name to pick another name")
        self.force = force
        self.tmp: Path | None = None
        self.splits: dict[str, dict[str, Any]] = {}

    def __enter__(self) -> "DatasetBuilder":
        # The temporary folder is created here, not in __init__: an interruption between the two
        # (Ctrl-C as the build starts) would leave it with no __exit__ to remove it. Its name is
        # chosen before it exists, so the cleanup knows what to remove at every instant.
        self.out.parent.mkdir(parents=True, exist_ok=True)
        while True:
            self.tmp = self.out.parent / f".{self.out.name}.{secrets.token_hex(6)}.tmp"
            try:
                self.tmp.mkdir()
                os.chmod(self.tmp, 0o755)  # whatever the umask: a dataset is an ordinary folder
                return self
            except FileExistsError:
                continue  # another build's name, by a one-in-2**48 chance
            except BaseException:
                self._remove_tmp()
                raise

    def __exit__(self, exc_type, exc, tb) -> None:
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        if self.tmp is not None and self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)

    def open_split(self, name: str):
        """A binary file to stream a split's ids into (call `close_split` after)."""
        return open(self.tmp / f"{name}.bin", "wb")

    def close_split(self, name: str, dtype: np.dtype, sha256: str | None = None) -> None:
        """Record a written split; pass `sha256` if the writer hashed it on the way (saves a re-read)."""
        f = self.tmp / f"{name}.bin"
        n = f.stat().st_size // np.dtype(dtype).itemsize
        self.splits[name] = {"file": f.name, "tokens": int(n), "sha256": sha256 or sha256_file(f)}

    def write_split(self, name: str, ids: np.ndarray) -> None:
        with self.open_split(name) as f:
            f.write(np.ascontiguousarray(ids).tobytes())
        self.close_split(name, ids.dtype)

    def commit(self, vocab: Vocab, meta: dict[str, Any]) -> Dataset:
        """Write tokenizer.json and meta.json, fsync, and rename the folder into place."""
        vocab.save(self.tmp / "tokenizer.json")
        full = {"format": FORMAT, "version": VERSION, "name": self.out.name, **meta,
                "units": vocab.units, "vocab_size": vocab.size, "dtype": vocab.dtype.name,
                "eot_id": vocab.eot_id, "unk_id": vocab.unk_id,
                "splits": {k: self.splits[k] for k in SPLITS if k in self.splits}}
        (self.tmp / "meta.json").write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        for f in self.tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if self.out.exists():
            # --force: move the old one aside first so a failure in between loses nothing.
            old = self.out.with_name(f".{self.out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            self.out.rename(old)
            self.tmp.rename(self.out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            self.tmp.rename(self.out)
        return Dataset(path=self.out, meta=full, vocab=vocab)


def symbol_counts(ds: Dataset, split: str = "train", chunk: int = 1 << 24) -> np.ndarray:
    """How often each id occurs in a split, [vocab_size] int64 (read in chunks: bounded memory)."""
    ids = ds.split(split)
    out = np.zeros(ds.vocab.size, dtype=np.int64)
    for i in range(0, len(ids), chunk):
        bc = np.bincount(ids[i:i + chunk], minlength=ds.vocab.size)
        out += bc[: ds.vocab.size]
    return out


def list_datasets(root: str | os.PathLike | None = None) -> list[Dataset | tuple[Path, str]]:
    """Datasets under root (default data_root()), sorted by name, opened without checksum
    verification; a folder whose meta.json cannot be read appears as (path, error message)."""
    base = Path(root) if root is not None else data_root()
    if not base.is_dir():
        return []
    found: list[Dataset | tuple[Path, str]] = []
    for p in sorted(base.iterdir()):
        if p.name.startswith(".") or not (p / "meta.json").exists():
            continue  # temp/old build folders and unrelated files
        try:
            found.append(open_dataset(p, verify=False))
        except CharlstmError as e:
            found.append((p, str(e)))
    return found
