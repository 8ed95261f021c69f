#!/usr/bin/env python
"""Make a tweet-shaped corpus with no network: Debian's `fortunes` collection as a tweets CSV.

    apt-get install fortunes                       # or: apt-get download fortunes && dpkg-deb -x fortunes_*.deb /tmp/f
    .venv/bin/python scripts/make_tweet_corpus.py  # -> /tmp/charlstm-fortunes.csv, then data/fortunes
    .venv/bin/python scripts/make_tweet_corpus.py --dir /tmp/f/usr/share/games/fortunes --csv /tmp/f.csv

Real tweets cannot be downloaded on our machines (no access to the Hugging Face hub or Kaggle), so
the tweet model in the README is trained on the closest thing Debian ships: the short quotations,
jokes and one-liners of the `fortunes` package (about 15,000 of them, written by people over
decades). Each fortune of at most `--max-chars` characters (280, a tweet's limit) becomes one row
of a CSV in the layout of Kaggle's clinton-trump tweets (`id,handle,text,is_retweet`), with the
fortune file's name (computers, science, wisdom, ...) as the handle, and the CSV is then encoded by
`charlstm data tweets CSV --name NAME --force` (each record ends in `<eot>`; duplicates dropped;
records dealt to train/val at random). Terminal overstriking (`_\\b` underlining, `X\\bX` bold) is
removed and tabs become single spaces; line breaks inside a fortune are kept, as in tweets.
With fortunes 1:1.99.1-7.3 (Debian 12) this makes 13,155 rows and 1.3 MB of text (13,075 records
after duplicates are dropped, 105 symbols).
"""
from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
from pathlib import Path

DEFAULT_DIR = Path("/usr/share/games/fortunes")
OVERSTRIKE = re.compile(r".\x08")  # a character then backspace: the next character prints over it


def read_fortunes(folder: Path, max_chars: int) -> list[tuple[str, str]]:
    """(file name, fortune) for every fortune of 1..max_chars characters, in sorted file order."""
    out = []
    for f in sorted(folder.iterdir()):
        if f.suffix in (".dat", ".u8") or f.is_symlink() or not f.is_file():
            continue  # .dat: strfile's index; .u8: links to the same text
        text = f.read_text(encoding="utf-8", errors="replace")
        for rec in text.split("\n%\n"):
            rec = OVERSTRIKE.sub("", rec)
            rec = re.sub(r"[ \t]*\t[ \t]*", " ", rec).strip("\n%").strip()
            if 0 < len(rec) <= max_chars:
                out.append((f.name, rec))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"fortune files (default {DEFAULT_DIR})")
    ap.add_argument("--csv", type=Path, default=Path("/tmp/charlstm-fortunes.csv"), help="CSV to write")
    ap.add_argument("--max-chars", type=int, default=280, help="longest fortune kept (default 280)")
    ap.add_argument("--name", default="fortunes", help="dataset name (default fortunes)")
    ap.add_argument("--no-encode", action="store_true", help="only write the CSV")
    a = ap.parse_args()
    if not a.dir.is_dir():
        sys.exit(f"error: no fortune files in {a.dir}; install them with `apt-get install fortunes` "
                 "(or `apt-get download fortunes` and `dpkg-deb -x` it) and pass --dir")
    rows = read_fortunes(a.dir, a.max_chars)
    with open(a.csv, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "handle", "text", "is_retweet"])
        for i, (handle, text) in enumerate(rows):
            w.writerow([i, handle, text, "False"])
    print(f"wrote {a.csv}: {len(rows):,} fortunes, {sum(len(t) for _, t in rows):,} characters", file=sys.stderr)
    if not a.no_encode:
        charlstm = Path(sys.executable).with_name("charlstm")
        subprocess.run([str(charlstm), "data", "tweets", str(a.csv), "--name", a.name, "--force"], check=True)


if __name__ == "__main__":
    main()
