"""Plain-text corpora: files and folders of text, or a text column of a hub dataset.

Files are read in newline-cut pieces (any size: memory stays bounded) and concatenated in the order
given, folders in sorted path order; each file is one document (several files are split by whole
files, one file contiguously: see corpora/build.py) (hidden, VCS and build folders skipped, symlinks never followed
out of the folder). Each file ends with a newline. A file with a NUL byte in its first 8 KB is
binary (or UTF-16) and skipped; invalid UTF-8 elsewhere becomes U+FFFD in char units (counted as
`invalid_utf8`) and stays raw in byte units.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator, Sequence

from charlstm.corpora.build import EncodeOptions, dataset_dir, safe_name, write_stream
from charlstm.corpora.code import parse_exts
from charlstm.corpora.files import is_binary, list_files, read_pieces
from charlstm.corpora.hub import HubTextCorpus, hub_name, load_hub, pick_column
from charlstm.dataset import Dataset
from charlstm.errors import CharlstmError

SNIFF = 8192


class TextCorpus:
    """Text files as byte pieces for `write_stream`, one document per file; the first pass decides
    which files are kept."""

    document = "file"

    def __init__(self, paths: Sequence[str | os.PathLike], exts: frozenset[str] | None = None,
                 on_warning: Callable[[str], None] | None = None):
        self.skipped: Counter = Counter()
        self.on_warning = on_warning
        self.files: list[tuple[str, Path]] = []
        for p in map(Path, paths):
            if not p.exists():
                raise CharlstmError(f"no such file or folder: {p}")
            if p.is_dir():
                found = list_files(p, self.skipped, use_git=False)
                for rel, path in found:
                    if exts is not None and path.suffix.lstrip(".").lower() not in exts:
                        self.skipped["extension"] += 1
                    else:
                        self.files.append((f"{p}/{rel}", path))
            else:
                self.files.append((str(p), p))
        self.total_bytes = sum(path.stat().st_size for _, path in self.files)
        self.kept: list[tuple[str, Path]] | None = None

    def _file(self, path: Path, first: bool) -> Iterator[bytes]:
        with open(path, "rb") as f:
            last = b""
            for i, piece in enumerate(read_pieces(f)):
                if first and i == 0 and is_binary(piece[:SNIFF]):
                    raise _Binary
                yield piece
                last = piece
        if last and not last.endswith(b"\n"):
            yield b"\n"

    def pieces(self) -> Iterator[tuple[int, bytes]]:
        first = self.kept is None
        kept, unreadable = [], []
        for shown, path in (self.files if first else self.kept):
            try:
                # Each file's first piece is checked before anything of it is yielded.
                gen = self._file(path, first)
                head = next(gen, None)
            except _Binary:
                self.skipped["binary"] += 1
                continue
            except OSError as e:
                if not first:
                    raise CharlstmError(f"{shown} became unreadable during the build ({e.strerror}); run the command again") from None
                self.skipped["unreadable"] += 1
                unreadable.append(f"{shown} ({e.strerror})")
                continue
            kept.append((shown, path))
            i = len(kept) - 1
            if head is not None:
                yield i, head
                try:
                    for piece in gen:
                        yield i, piece
                except OSError as e:
                    raise CharlstmError(f"cannot read {shown}: {e.strerror or e}") from None
        if first:
            if unreadable and self.on_warning:
                more = f" and {len(unreadable) - 3} more" if len(unreadable) > 3 else ""
                self.on_warning(f"skipped {len(unreadable)} unreadable file(s): {', '.join(unreadable[:3])}{more}")
            if not kept:
                why = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in sorted(self.skipped.items()))
                raise CharlstmError("no usable text files" + (f" (skipped: {why})" if why else ""))
            self.kept = kept

    def names(self) -> list[str]:
        return [shown for shown, _ in self.kept or []]

    def stats(self) -> dict:
        return {"documents": len(self.kept or []), "files": len(self.kept or []),
                "skipped": dict(sorted(self.skipped.items()))}


class _Binary(Exception):
    """A file's first piece has a NUL byte."""


def write_text(paths: Sequence[str | os.PathLike] = (), name: str | None = None, *, hub: str | None = None,
               column: str | None = None, config: str | None = None, split: str | None = None,
               exts: str | None = None, opts: EncodeOptions | None = None,
               data_dir: str | os.PathLike | None = None, force: bool = False, progress: bool = False,
               on_warning: Callable[[str], None] | None = None) -> Dataset:
    """Build a running-text dataset from text files/folders, or from `hub` (a dataset name or a local
    data file) and its text `column` (auto-detected when None)."""
    opts = opts or EncodeOptions()
    opts.validate()
    if bool(paths) == bool(hub):
        raise CharlstmError("give text files/folders or --hub NAME (one of the two)")
    if hub:
        out = dataset_dir(name or hub_name(hub), data_dir, force)
        with load_hub(hub, config, split, quiet=not progress) as ds:
            col = pick_column(ds.column_names, column)
            corpus = HubTextCorpus(ds, col)
            source = {"kind": "text", "hub": hub, "config": config, "split": split or "train", "column": col}
            return write_stream(out, corpus, opts, source=source, options={}, force=force, progress=progress,
                                what=f"column '{col}' of {hub}")
    corpus = TextCorpus(paths, parse_exts(exts) if exts else None, on_warning)  # checks the paths exist
    first = Path(paths[0]).resolve()
    default = safe_name(first.stem if first.is_file() else first.name) if len(paths) == 1 else "text"
    out = dataset_dir(name or default, data_dir, force)
    source = {"kind": "text", "paths": [str(Path(p).resolve()) for p in paths]}
    return write_stream(out, corpus, opts, source=source, options={"ext": exts or "*"}, force=force,
                        progress=progress, what="text")
