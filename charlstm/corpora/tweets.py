"""Tweet corpora: CSV, JSON or JSONL files (or a hub dataset), one record per tweet.

Layouts read: a CSV/TSV with a header (the Kaggle "clinton-trump-tweets" CSV: `handle`, `text`,
`is_retweet`, `original_author`, ...), a JSON list of objects (or of strings, or an object holding
such a list; Twitter-archive `tweets.js` files with their `window.YTD... =` prefix and `{"tweet":
{...}}` wrappers too), and JSON Lines. The text column is found among TEXT_COLUMNS unless --column.
A CSV is parsed strictly: a malformed record is an error naming its line, never a misread tweet.

Cleaning, in order: keep one author (`handle`), drop retweets (an `is_retweet` column that is true,
a `retweeted_status` object, or text starting with "RT @"), unescape HTML entities (the Twitter API
sends "&amp;"), keep/strip/mask URLs, trim whitespace, drop empty tweets and exact duplicates (the
first one stays). Every step's count goes to meta.json.
"""
from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

from charlstm.corpora.build import EncodeOptions, dataset_dir, safe_name, write_records
from charlstm.corpora.hub import hub_name, load_hub, pick_column
from charlstm.dataset import Dataset
from charlstm.errors import CharlstmError

HANDLE_COLUMNS = ("handle", "screen_name", "username", "user_screen_name", "author", "user")
URL_MODES = ("keep", "strip", "mask")
URL_MASK = "<url>"
_URL = re.compile(r"https?://\S+")
_TRUE = {"true", "1", "yes", "y", "t"}


def _json_rows(data: Any, path: Path) -> list:
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise CharlstmError(f"{path}: expected a JSON list of tweets (or an object holding one list)")
        data = lists[0]
    if not isinstance(data, list):
        raise CharlstmError(f"{path}: expected a JSON list of tweets")
    return data


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a tweets file as dicts (strings become {"text": s})."""
    path = Path(path)
    if not path.is_file():
        raise CharlstmError(f"no such file: {path}" if not path.exists() else f"{path} is not a file")
    try:
        raw = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as e:
        raise CharlstmError(f"cannot read {path}: {e.strerror}") from None
    suffix, head = path.suffix.lower(), raw.lstrip()[:1]
    if raw.lstrip().startswith("window."):  # Twitter archive: "window.YTD.tweets.part0 = [ ... ]"
        raw, head = raw[raw.index("=") + 1:], "["
    if suffix in (".jsonl", ".ndjson") or (suffix not in (".json", ".js") and head == "{"):
        rows = []
        for i, line in enumerate(raw.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as e:
                    raise CharlstmError(f"{path}, line {i}: not valid JSON ({e.msg})") from None
    elif suffix in (".json", ".js") or head == "[":
        try:
            rows = _json_rows(json.loads(raw), path)
        except ValueError as e:
            raise CharlstmError(f"{path}: not valid JSON ({e})") from None
    else:
        rows = _csv_rows(raw, path, "\t" if suffix == ".tsv" else ",")
    return [_flatten(r) for r in rows]


def _csv_rows(raw: str, path: Path, delimiter: str) -> list[dict[str, Any]]:
    """The records of a CSV/TSV with a header, as dicts. Parsed strictly, so a malformed file is an
    error naming the line where the bad record starts rather than a silent misreading: a quote never
    closed (which would make the rest of the file one tweet), text after a closing quote, or a
    record with more fields than the header (an unquoted delimiter: its columns no longer line up,
    so its text may be another field). A record with fewer fields gets None for the missing ones."""
    csv.field_size_limit(sys.maxsize)
    # newline="" keeps line endings, so quoted newlines inside a tweet survive.
    reader = csv.reader(io.StringIO(raw, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    rows: list[dict[str, Any]] = []
    while True:
        start = reader.line_num + 1  # the line this record starts on
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            if "unexpected end of data" in str(e):
                raise CharlstmError(f"{path}, line {start}: a quoted field is never closed (it would run to the end "
                                    "of the file); fix the quote on that line") from None
            raise CharlstmError(f"{path}, line {start}: not valid CSV ({e}); a quote inside a quoted field is "
                                "written twice (\"\")") from None
        if not fields:
            continue  # a blank line
        if header is None:
            header = fields
        elif len(fields) > len(header):
            raise CharlstmError(f"{path}, line {start}: {len(fields)} fields but the header has {len(header)}; "
                                "quote the field that holds a delimiter (or fix the header)")
        else:
            rows.append(dict(zip(header, fields + [None] * (len(header) - len(fields)))))
    return rows


def _flatten(row: Any) -> dict[str, Any]:
    if isinstance(row, str):
        return {"text": row}
    if not isinstance(row, dict):
        raise CharlstmError(f"expected tweets as objects or strings, found {type(row).__name__}")
    if isinstance(row.get("tweet"), dict):  # Twitter archive wrapper
        return row["tweet"]
    return row


def _columns(rows: Sequence[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows[:1000]:
        seen.update(dict.fromkeys(r))
    return list(seen)


def _handle_of(v: Any) -> str:
    """The author's handle as written ("@Name" -> "Name")."""
    if isinstance(v, dict):  # API JSON: "user": {"screen_name": ...}
        v = v.get("screen_name") or v.get("name")
    return str(v or "").lstrip("@")


def clean_tweets(rows: Iterable[dict[str, Any]], column: str, *, handle: str | None = None,
                 handle_column: str | None = None, urls: str = "keep", keep_retweets: bool = False,
                 unescape: bool = True) -> tuple[list[str], dict[str, int]]:
    """Rows -> cleaned tweet texts (in input order) and counts of what was dropped and why."""
    if urls not in URL_MODES:
        raise CharlstmError(f"unknown --urls mode '{urls}'; use one of {', '.join(URL_MODES)}")
    want = handle.lstrip("@").lower() if handle else None
    out, seen, n = [], set(), Counter()
    for row in rows:
        n["read"] += 1
        if want is not None and _handle_of(row.get(handle_column)).lower() != want:
            n["other_authors"] += 1
            continue
        text = row.get(column)
        if not isinstance(text, str):
            n["empty"] += 1
            continue
        if not keep_retweets and (str(row.get("is_retweet", "")).strip().lower() in _TRUE
                                  or row.get("retweeted_status") or text.lstrip().startswith("RT @")):
            n["retweets"] += 1
            continue
        if unescape:
            text = html.unescape(text)
        if urls == "strip":
            text = re.sub(r"[ \t]*" + _URL.pattern, "", text)
        elif urls == "mask":
            text = _URL.sub(URL_MASK, text)
        text = text.strip()
        if not text:
            n["empty"] += 1
            continue
        if text in seen:
            n["duplicates"] += 1
            continue
        seen.add(text)
        out.append(text)
    n["kept"] = len(out)
    return out, {k: n[k] for k in ("read", "kept", "retweets", "duplicates", "empty", "other_authors")}


def write_tweets(source: str | os.PathLike | None = None, name: str | None = None, *, hub: str | None = None,
                 config: str | None = None, split: str | None = None, column: str | None = None,
                 handle: str | None = None, urls: str = "keep", keep_retweets: bool = False,
                 unescape: bool = True, opts: EncodeOptions | None = None,
                 data_dir: str | os.PathLike | None = None, force: bool = False, progress: bool = False) -> Dataset:
    """Build a record dataset (one tweet per record, each ending in <eot>) from a file or `hub`.

    The name defaults to the handle when one is kept, else the file's (or hub dataset's) name."""
    opts = opts or EncodeOptions()
    opts.validate()
    if (source is None) == (hub is None):
        raise CharlstmError("give a tweets file or --hub NAME (one of the two)")
    if hub is None and not Path(source).exists():
        raise CharlstmError(f"no such file: {source}")
    default = safe_name(handle.lstrip("@")) if handle else (hub_name(hub) if hub else safe_name(Path(source).stem))
    out = dataset_dir(name or default, data_dir, force)
    if hub is not None:
        with load_hub(hub, config, split, quiet=not progress) as ds:
            columns, rows = ds.column_names, ds.to_list()
        src: dict[str, Any] = {"kind": "tweets", "hub": hub, "config": config, "split": split or "train"}
    else:
        rows = read_rows(source)
        columns = _columns(rows)
        src = {"kind": "tweets", "path": str(Path(source).resolve())}
    if not rows:
        raise CharlstmError(f"no tweets in {hub or source}")
    col = pick_column(columns, column)
    handle_col = None
    if handle:
        handle_col = pick_column(columns, None, HANDLE_COLUMNS, what="author (handle)")
    texts, counts = clean_tweets(rows, col, handle=handle, handle_column=handle_col, urls=urls,
                                 keep_retweets=keep_retweets, unescape=unescape)
    if not texts:
        if handle and counts["other_authors"] == counts["read"]:
            present = sorted({_handle_of(r.get(handle_col)) for r in rows} - {""})
            raise CharlstmError(f"no tweets by '{handle}' (authors present: {', '.join(present[:10])})")
        why = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v and k != "kept")
        raise CharlstmError(f"no tweets left after cleaning {hub or source} ({why})")
    src.update(column=col, handle=handle)
    options = {"urls": urls, "keep_retweets": keep_retweets, "unescape": unescape}
    return write_records(out, texts, opts, source=src, options=options, stats={"tweets": counts},
                         force=force, what="tweets")
