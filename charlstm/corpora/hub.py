"""Hugging Face datasets as corpus sources, through `datasets.load_dataset`.

NAME may be a hub dataset ("wikitext", "user/tweets"), a local data file (.json, .jsonl, .csv,
.parquet, .txt: read by the matching `datasets` builder, which is also how the tests work offline),
or a local folder that `datasets` can load. Every failure (no network, unknown dataset, bad split)
becomes one CharlstmError line.
"""
from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from charlstm.corpora.build import safe_name
from charlstm.corpora.encode import clean_text
from charlstm.errors import CharlstmError

_BUILDERS = {".json": "json", ".jsonl": "json", ".ndjson": "json", ".csv": "csv", ".tsv": "csv",
             ".parquet": "parquet", ".txt": "text", ".arrow": "arrow"}

# Column names that hold the text, in order of preference (matched case-insensitively).
TEXT_COLUMNS = ("text", "full_text", "tweet", "content", "body", "message", "sentence", "document")


@contextmanager
def load_hub(name: str, config: str | None = None, split: str | None = None,
             quiet: bool = True) -> Iterator[Any]:
    """One split of a dataset as a `datasets.Dataset` (split defaults to "train"), for a `with` block.

    A local data file is converted into a temporary cache that is deleted at the end of the block:
    reading a file should not leave an Arrow copy of it in ~/.cache. Hub datasets use the usual cache.
    """
    import datasets

    datasets.logging.set_verbosity_error()
    if quiet:
        datasets.disable_progress_bars()
    split = split or "train"
    path = Path(name)
    if not path.exists() and (path.suffix.lower() in _BUILDERS or name.startswith(("/", "./", "../", "~"))):
        raise CharlstmError(f"no such file: {name}")  # a local path, not a hub name: don't ask the network
    builder = _BUILDERS.get(path.suffix.lower()) if path.is_file() else None
    if path.is_file() and builder is None:
        raise CharlstmError(f"cannot tell the format of {name}; use a .json, .jsonl, .csv, .parquet or .txt file")
    with tempfile.TemporaryDirectory(prefix="charlstm-hub-") as tmp:
        try:
            if builder is not None:
                kw: dict[str, Any] = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
                ds = datasets.load_dataset(builder, data_files=str(path), split=split, cache_dir=tmp, **kw)
            else:
                ds = datasets.load_dataset(name, config, split=split)
        except Exception as e:  # datasets raises many types (network, missing split, bad file): all "cannot load"
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise CharlstmError(f"cannot load dataset '{name}': {first}") from None
        yield ds


def hub_name(name: str) -> str:
    """A dataset name for a hub source: 'user/tweets' -> 'tweets', 'data/x.jsonl' -> 'x'."""
    path = Path(name)
    return safe_name(path.stem if path.is_file() else name.rstrip("/").split("/")[-1])


def pick_column(columns: Sequence[str], column: str | None, candidates: Sequence[str] = TEXT_COLUMNS,
                what: str = "text") -> str:
    """The column holding the text: `column` if given (exact, else case-insensitive), else the first
    of `candidates` present."""
    lower = {c.lower(): c for c in columns}
    if column is not None:
        if column in columns:
            return column
        if column.lower() in lower:
            return lower[column.lower()]
        raise CharlstmError(f"no column '{column}' (columns: {', '.join(columns) or 'none'})")
    for c in candidates:
        if c in lower:
            return lower[c]
    raise CharlstmError(f"cannot find the {what} column among: {', '.join(columns) or 'none'}; choose one with --column")


class HubTextCorpus:
    """A text column of a `datasets.Dataset` as running text: one document per row (a newline is
    added to rows that lack one; rows holding None are empty documents), named by its row number."""

    document = "row"

    def __init__(self, ds, column: str):
        self.ds, self.column = ds.select_columns([column]), column
        self.total_bytes = None
        self.rows = 0
        self.n_rows = 0

    def pieces(self) -> Iterator[tuple[int, bytes]]:
        row, rows = -1, 0
        for batch in self.ds.iter(batch_size=1024):
            for t in batch[self.column]:
                row += 1
                if t is None:
                    continue
                if not isinstance(t, str):
                    raise CharlstmError(f"column '{self.column}' holds {type(t).__name__} values, not text; choose another with --column")
                b = clean_text(t, nfc=False).encode("utf-8")
                yield row, (b if b.endswith(b"\n") else b + b"\n")
                rows += 1
        self.rows, self.n_rows = rows, row + 1

    def names(self) -> range:
        return range(self.n_rows)

    def stats(self) -> dict[str, Any]:
        return {"documents": self.rows}
