"""`charlstm data`: build datasets from code, tweets, text and synthetic tasks; list and inspect them.

Thin by design: each command parses its options, calls one `charlstm.corpora` function and prints
the result. Errors are CharlstmError, shown by the group as one `Error: ...` line.
"""
from __future__ import annotations

import functools
from pathlib import Path

import click

from charlstm.cli.common import quiet_option
from charlstm.corpora.build import EncodeOptions
from charlstm.dataset import Dataset, list_datasets, open_dataset, symbol_counts
from charlstm.errors import CharlstmError
from charlstm.dataset import data_root

_ENCODING_KEYS = ("units", "min_count", "nfc", "val_frac", "test_frac", "seed")


def encoding_options(f):
    """Options every source shares: naming, where to write, and how text becomes ids."""
    opts = [
        click.option("--name", help="Dataset name (default: derived from the source)."),
        click.option("--force", is_flag=True, help="Replace an existing dataset of that name."),
        click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), envvar="CHARLSTM_DATA",
                     help="Folder of datasets [env CHARLSTM_DATA; default ./data]."),
        click.option("--units", type=click.Choice(["char", "byte"]), default="char", show_default=True,
                     help="char: one symbol per Unicode character; byte: the 256 UTF-8 byte values."),
        click.option("--min-count", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Characters seen fewer times become <unk> (char units)."),
        click.option("--nfc/--no-nfc", default=True, show_default=True,
                     help="Unicode NFC normalisation (composed and decomposed accents become one symbol)."),
        click.option("--val-frac", type=float, default=0.05, show_default=True,
                     help="Fraction for validation: whole files (or hub rows) from all over the corpus, the end of a "
                          "single text, or random whole records."),
        click.option("--test-frac", type=float, default=0.0, show_default=True,
                     help="Fraction for a test split (chosen like val)."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed choosing the files, rows or records of each split (and synthetic sequences)."),
        quiet_option,
    ]
    return functools.reduce(lambda g, o: o(g), reversed(opts), f)


def _encode_opts(kw: dict) -> EncodeOptions:
    return EncodeOptions(**{k: kw.pop(k) for k in _ENCODING_KEYS})


def _warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


def _n(x: int) -> str:
    return f"{x:,}"


def _describe_source(src: dict) -> str:
    kind = src.get("kind", "?")
    rest = ", ".join(f"{k}={v}" for k, v in src.items() if k != "kind" and v not in (None, False))
    return f"{kind} ({rest})" if rest else kind


def _short(v, width: int = 40) -> str:
    text = str(v)
    return text if len(text) <= width else text[: width - 3] + "..."


def _splits_line(ds: Dataset) -> str:
    return ", ".join(f"{s} {_n(ds.meta['splits'][s]['tokens'])}" for s in ds.splits)


def _describe_split(m: dict) -> str:
    """How a dataset was split, in one line: by document (with counts and a few names), by record,
    or contiguous (with the reason when there were several documents)."""
    sp = m.get("split") or {"by": "record" if m.get("records") else "contiguous"}
    if sp["by"] == "record":
        return "by record" + (f", seed {sp['seed']}" if "seed" in sp else "") + ": whole records dealt at random"
    if sp["by"] == "contiguous":
        return "contiguous: val (then test) is the end of the stream" + (f" ({sp['note']})" if sp.get("note") else "")
    what, docs = sp.get("document", "document"), sp["documents"]
    line = (f"by document, seed {sp['seed']}: val {_n(docs['val'])} {what}s, test {_n(docs['test'])}, "
            f"train {_n(docs['train'])}")
    names = sp.get("names", {}).get("val", [])
    if names:
        more = docs["val"] - 3
        line += (f"; val: {'rows ' if what == 'row' else ''}{', '.join(map(str, names[:3]))}"
                 + (f" and {_n(more)} more" if more > 0 else ""))
    return line


def _report(ds: Dataset, quiet: bool) -> None:
    """The result of a build: one line always, a few details unless --quiet."""
    m = ds.meta
    click.echo(f"Wrote {ds.path}: {m['vocab_size']} {m['units']} symbols ({m['dtype']}), tokens: {_splits_line(ds)}")
    if quiet:
        return
    st = m.get("stats", {})
    if "files" in st:
        click.echo(f"  files: {_n(st['files'])} kept" + "".join(f", {k}={v}" for k, v in st.get("skipped", {}).items()))
    sp = m.get("split") or {}
    if sp.get("by") == "document" or sp.get("note"):  # a single text or records: the usual rule, said in info
        click.echo(f"  split: {_describe_split(m)}")
    if st.get("tweets"):
        click.echo("  tweets: " + ", ".join(f"{k}={v}" for k, v in st["tweets"].items()))
    for key, what in (("invalid_utf8", "invalid UTF-8 sequence(s) replaced by U+FFFD"),
                      ("unknown", "character(s) mapped to <unk> by --min-count")):
        if st.get(key):
            click.echo(f"  {_n(st[key])} {what}")


@click.group("data")
def data_group() -> None:
    """Build datasets from code, tweets, text or synthetic tasks, and inspect them.

    A dataset is a folder under the data dir (./data, or --data-dir / CHARLSTM_DATA) holding
    train.bin, val.bin, tokenizer.json and meta.json (see docs/formats.md).

    \b
    Examples:
      charlstm data code                           # Python's standard library
      charlstm data code https://github.com/apache/commons-lang
      charlstm data tweets tweets.csv --handle realDonaldTrump
      charlstm data text war-and-peace.txt
      charlstm data synthetic counting
      charlstm data list
    """


@data_group.command("code")
@click.argument("source", required=False)
@click.option("--ext", help="Comma-separated file extensions to keep, e.g. py,java ('*' = any) [default: common languages].")
@click.option("--max-file-size", type=int, default=1_000_000, show_default=True, help="Skip files larger than this (bytes).")
@click.option("--max-files", type=int, help="Keep at most this many files (the first in path order).")
@click.option("--separator/--no-separator", default=True, show_default=True,
              help="Put a line '==> path <==' before each file so the model sees file boundaries.")
@encoding_options
def code_cmd(source, ext, max_file_size, max_files, separator, name, force, data_dir, quiet, **kw):
    """Source code from a git URL, a local repository or folder, or (no SOURCE) Python's stdlib.

    A URL is cloned shallowly (git clone --depth 1) into a temporary folder. In a repository only
    tracked files are read; hidden, vendored and build folders are skipped, and so are binary,
    non-UTF-8 and oversized files. Files are concatenated in sorted path order; validation (and
    test) take whole files chosen at random (--seed) from all over the corpus.

    \b
    Examples:
      charlstm data code                                   # -> data/stdlib
      charlstm data code https://github.com/apache/commons-lang --ext java
      charlstm data code ~/src/myproject --name mine --units byte
    """
    from charlstm.corpora.code import write_code

    ds = write_code(source, name, opts=_encode_opts(kw), exts=ext, max_file_size=max_file_size,
                    max_files=max_files, separator=separator, data_dir=data_dir, force=force,
                    progress=not quiet, on_warning=_warn)
    _report(ds, quiet)


@data_group.command("tweets")
@click.argument("source", required=False)
@click.option("--hub", metavar="NAME", help="Read a Hugging Face dataset (or a local .json/.jsonl/.csv file through `datasets`).")
@click.option("--config", help="Dataset configuration (with --hub).")
@click.option("--split", help="Dataset split (with --hub) [default: train].")
@click.option("--column", help="Column with the tweet text [default: text, full_text, tweet, content, body...].")
@click.option("--handle", help="Keep only tweets by this author (a handle/screen_name column).")
@click.option("--urls", type=click.Choice(["keep", "strip", "mask"]), default="keep", show_default=True,
              help="Keep URLs, strip them, or replace each by <url>.")
@click.option("--keep-retweets", is_flag=True, help="Keep retweets (dropped by default).")
@click.option("--unescape/--no-unescape", default=True, show_default=True, help="Turn HTML entities like &amp; into characters.")
@encoding_options
def tweets_cmd(source, hub, config, split, column, handle, urls, keep_retweets, unescape, name, force, data_dir,
               quiet, **kw):
    """Tweets from a CSV, JSON or JSONL file (or --hub), one record per tweet ending in <eot>.

    Retweets and duplicates are dropped; records are dealt to train/val/test at random (--seed).

    \b
    Examples:
      charlstm data tweets tweets.csv --handle realDonaldTrump --urls mask
      charlstm data tweets archive/tweets.js --name me
      charlstm data tweets --hub someone/tweets --column content
    """
    from charlstm.corpora.tweets import write_tweets

    ds = write_tweets(source, name, hub=hub, config=config, split=split, column=column, handle=handle,
                      urls=urls, keep_retweets=keep_retweets, unescape=unescape, opts=_encode_opts(kw),
                      data_dir=data_dir, force=force, progress=not quiet)
    _report(ds, quiet)


@data_group.command("text")
@click.argument("paths", nargs=-1)
@click.option("--hub", metavar="NAME", help="Read a Hugging Face dataset (or a local data file through `datasets`).")
@click.option("--config", help="Dataset configuration (with --hub).")
@click.option("--split", help="Dataset split (with --hub) [default: train].")
@click.option("--column", help="Column with the text (with --hub) [default: text, content, ...].")
@click.option("--ext", help="In folders, keep only these extensions, e.g. txt,md [default: any text file].")
@encoding_options
def text_cmd(paths, hub, config, split, column, ext, name, force, data_dir, quiet, **kw):
    """Plain text files or folders (concatenated), or a text column of a hub dataset.

    Several files (or hub rows) are split by whole files (rows) chosen at random (--seed) from all
    over the corpus; a single file contiguously: its last --val-frac is validation, then test.

    \b
    Examples:
      charlstm data text war-and-peace.txt
      charlstm data text notes/ --ext txt,md --name notes
      charlstm data text --hub wikitext --config wikitext-2-raw-v1 --column text
    """
    from charlstm.corpora.text import write_text

    ds = write_text(list(paths), name, hub=hub, column=column, config=config, split=split, exts=ext,
                    opts=_encode_opts(kw), data_dir=data_dir, force=force, progress=not quiet, on_warning=_warn)
    _report(ds, quiet)


@data_group.command("synthetic")
@click.argument("task", metavar="TASK")
@click.option("--num", type=int, default=10000, show_default=True, help="Number of sequences.")
@click.option("--min-n", type=int, help="Smallest N (count, run of x's, or string length) [default: task's].")
@click.option("--max-n", type=int, help="Largest N [default: task's].")
@encoding_options
def synthetic_cmd(task, num, min_n, max_n, name, force, data_dir, quiet, **kw):
    """A synthetic task: counting, selective-counting, remember or copy.

    \b
      counting            aaaaaXbbbbb     N a's, X, N b's (N in 1..10)
      selective-counting  aaXaXaaYbbbbb   a's among distractor X's, Y, as many b's as a's
      remember            AxxxxxxYa       A or B, 1..10 x's, Y, the first letter in lower case
      copy                baaXbaa         3 letters over {a,b,c}, X, the same letters

    Each sequence is one record ending in <eot>.

    \b
    Examples:
      charlstm data synthetic counting
      charlstm data synthetic copy --num 20000 --seed 1
      charlstm data synthetic counting --min-n 1 --max-n 20 --name counting-20
    """
    from charlstm.corpora.synthetic import write_synthetic

    opts = _encode_opts(kw)
    ds = write_synthetic(task, name, num=num, min_n=min_n, max_n=max_n, seed=opts.seed, opts=opts,
                         data_dir=data_dir, force=force)
    _report(ds, quiet)


@data_group.command("info")
@click.argument("name")
@click.option("--top", type=click.IntRange(min=0), default=20, show_default=True, help="How many of the most frequent symbols to show.")
@click.option("--verify", is_flag=True, help="Also check every split's sha256.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), envvar="CHARLSTM_DATA",
              help="Folder of datasets [env CHARLSTM_DATA; default ./data].")
def info_cmd(name, top, verify, data_dir):
    """Statistics of a dataset: source, units, vocabulary, tokens per split, frequent symbols.

    \b
    Examples:
      charlstm data info stdlib
      charlstm data info data/stdlib --verify
    """
    ds = _open(name, data_dir, verify)
    m = ds.meta
    st = dict(m.get("stats", {}))
    per_split = st.pop("records_per_split", {})
    records = "no (running text)"
    if m.get("records"):
        records = "yes, each ends in <eot>: " + ", ".join(f"{s} {_n(per_split[s])}" for s in ds.splits if s in per_split)
    rows = [("name", ds.name), ("path", str(ds.path)), ("source", _describe_source(m.get("source", {}))),
            ("units", f"{m['units']}, vocabulary {m['vocab_size']} symbols, {m['dtype']}"),
            ("records", records), ("tokens", _splits_line(ds)), ("split", _describe_split(m)),
            ("options", ", ".join(f"{k}={_short(v)}" for k, v in m.get("options", {}).items()))]
    for key in ("skipped", "tweets"):
        if st.get(key):
            rows.append((key.replace("_", " "), ", ".join(f"{k}={v}" for k, v in st.pop(key).items())))
    rows.append(("stats", ", ".join(f"{k}={_n(v) if isinstance(v, int) else v}" for k, v in st.items())))
    if verify:
        rows.append(("checksums", "ok"))
    for k, v in rows:
        click.echo(f"{k + ':':<10} {v}")
    if top and m["splits"]["train"]["tokens"]:
        counts = symbol_counts(ds, "train")
        total = counts.sum()
        order = [int(i) for i in counts.argsort(kind="stable")[::-1][:top] if counts[i]]
        shown = "  ".join(f"{ds.vocab.symbol(i)!r} {100 * counts[i] / total:.1f}%" for i in order)
        click.echo(f"{'top:':<10} {shown}")


@data_group.command("list")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), envvar="CHARLSTM_DATA",
              help="Folder of datasets [env CHARLSTM_DATA; default ./data].")
def list_cmd(data_dir):
    """The datasets under the data dir, with units, vocabulary size, tokens and source.

    \b
    Example:
      charlstm data list
    """
    root = data_dir if data_dir is not None else data_root()
    found = list_datasets(root)
    if not found:
        click.echo(f"No datasets in {root}; create one with `charlstm data code` (see `charlstm data -h`).")
        return
    click.echo(f"{'NAME':<24} {'UNITS':<5} {'VOCAB':>6} {'TRAIN':>12} {'VAL':>10} {'TEST':>10}  SOURCE")
    for ds in found:
        if isinstance(ds, tuple):
            click.echo(f"{ds[0].name:<24} (unreadable: {ds[1]})")
            continue
        m, sp = ds.meta, ds.meta["splits"]
        tok = [_n(sp[s]["tokens"]) if s in sp else "-" for s in ("train", "val", "test")]
        click.echo(f"{ds.name:<24} {m['units']:<5} {m['vocab_size']:>6} {tok[0]:>12} {tok[1]:>10} {tok[2]:>10}  "
                   f"{_describe_source(m.get('source', {}))}")


def _open(name: str, data_dir: Path | None, verify: bool) -> Dataset:
    """A dataset by path, or by name under --data-dir (default: paths.data_root())."""
    if data_dir is not None and not (Path(name) / "meta.json").is_file():
        if not (Path(data_dir) / name / "meta.json").is_file():
            raise CharlstmError(f"no dataset named '{name}' in {data_dir}; run `charlstm data list --data-dir {data_dir}`")
        name = str(Path(data_dir) / name)
    return open_dataset(name, verify=verify)


COMMANDS = [data_group]
