"""Hugging Face datasets as corpus sources, through `datasets.load_dataset`.

NAME may be a hub dataset ("wikitext", "user/tweets"), a local data file (.json, .jsonl, .csv,
.parquet, .txt: read by the matching `datasets` builder, which is also how the tests work offline),
or a local folder that `datasets` can load. Every failure (no network, unknown dataset, bad split)
becomes one CharlstmError line.

Without a network, `datasets` retries for about 25 s (with a warning per try) before it gives up. So
before loading a hub name, a short TCP connect to the hub (or to the https proxy, if one is set)
checks that it can be reached; if not, the load runs in the libraries' offline mode: a dataset in
the local cache still loads, anything else fails at once with "(no network?)".
"""
from __future__ import annotations

import os
import socket
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlparse

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
    import huggingface_hub

    huggingface_hub.utils.logging.set_verbosity_error()  # no warning per retry
    offline = not path.exists() and not _offline_already() and not hub_reachable()
    with tempfile.TemporaryDirectory(prefix="charlstm-hub-") as tmp:
        try:
            if builder is not None:
                kw: dict[str, Any] = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
                ds = datasets.load_dataset(builder, data_files=str(path), split=split, cache_dir=tmp, **kw)
            else:
                with offline_mode(offline):
                    ds = datasets.load_dataset(name, config, split=split)
        except Exception as e:  # datasets raises many types (network, missing split, bad file): all "cannot load"
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            if offline:
                host = hub_address()[0]
                first = f"{host} cannot be reached (no network?) and the dataset is not in the local cache"
            elif isinstance(e, ConnectionError):
                first += " (no network?)"
            raise CharlstmError(f"cannot load dataset '{name}': {first}") from None
        yield ds


HUB_TIMEOUT = 2.5  # seconds for the hub (or the proxy) to accept a connection before it counts as unreachable
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def hub_address() -> tuple[str, int]:
    """(host, port) a hub request first connects to: the https proxy if one is set, else the hub
    endpoint (HF_ENDPOINT, default https://huggingface.co)."""
    from huggingface_hub import constants

    proxy = next((os.environ[k] for k in _PROXY_VARS if os.environ.get(k)), None)
    url = urlparse(proxy if proxy else constants.ENDPOINT)
    if not url.hostname:  # a proxy given as host:port
        url = urlparse(f"http://{proxy}")
    return url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)


def hub_reachable(address: tuple[str, int] | None = None, timeout: float = HUB_TIMEOUT) -> bool:
    """Whether a TCP connection to `address` (default `hub_address()`) opens within `timeout`
    seconds. Runs in a thread so that a slow name lookup (which the socket timeout does not bound)
    cannot make it wait longer."""
    host, port = address or hub_address()
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            ok.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return bool(ok and ok[0])


def _offline_already() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


@contextmanager
def offline_mode(on: bool) -> Iterator[None]:
    """Within the block, `datasets` and `huggingface_hub` make no network request (the effect of
    HF_HUB_OFFLINE=1, which both read only when imported: their flags are set and then restored)."""
    if not on:
        yield
        return
    import datasets.config
    from huggingface_hub import constants

    saved = (constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE)
    constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE = saved


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
