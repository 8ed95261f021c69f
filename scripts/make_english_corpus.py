#!/usr/bin/env python
"""Make a few-MB English text corpus with no network: Vim's help files, concatenated.

    .venv/bin/python scripts/make_english_corpus.py                 # -> /tmp/charlstm-english.txt, data/english
    .venv/bin/python scripts/make_english_corpus.py --mb 5 --name english --text /tmp/en.txt

Source: the help files that ship with Vim (`/usr/share/vim/vim90/doc/*.txt`, about 9 MB of English
prose about the editor, with some tables, key names and examples; Vim's licence allows copying).
Files that are more than 1% non-ASCII are left out (digraph.txt: a table of 1,300 symbols, which
would multiply the vocabulary tenfold). The rest are read in sorted name order and concatenated
whole (a file that would cross the limit is cut at a line boundary) until about `--mb` MB; the
text file is then encoded with `charlstm data text FILE --name NAME --force` (5% validation split
at the end, character units). With the defaults: 4,999,945 bytes from 138 of the 151 files of
vim90, a 362-symbol vocabulary, 4,749,426 training and 249,970 validation characters (the
validation split is the tail: usr_90.txt to the start of version5.txt).
The same files and limit give the same bytes, so the dataset is reproducible on any machine with the
same Vim version (`vim90`); another version gives a similar but not identical corpus.
"""
from __future__ import annotations

import argparse
import glob
import subprocess
import sys
from pathlib import Path

DEFAULT_GLOB = "/usr/share/vim/vim9*/doc/*.txt"


def build_text(files: list[Path], limit: int) -> tuple[bytes, int]:
    """(the files' bytes in the given order, up to `limit` bytes, cut after a newline; files used)."""
    out, used = bytearray(), 0
    for f in files:
        data = f.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # keep the corpus valid UTF-8 rather than guess an encoding
        if sum(ord(c) > 127 for c in text) > 0.01 * len(text):
            continue  # character tables (digraph.txt: 1,300 distinct symbols), not English prose
        if len(out) + len(data) > limit:
            cut = data[: limit - len(out)]
            out += cut[: cut.rfind(b"\n") + 1]
            return bytes(out), used + 1
        out += data
        used += 1
    return bytes(out), used


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--glob", default=DEFAULT_GLOB, help=f"help files to read (default {DEFAULT_GLOB})")
    ap.add_argument("--mb", type=float, default=5.0, help="corpus size in MB (10^6 bytes), default 5")
    ap.add_argument("--text", default="/tmp/charlstm-english.txt", help="where to write the text file")
    ap.add_argument("--name", default="english", help="dataset name (default english)")
    ap.add_argument("--no-dataset", action="store_true", help="only write the text file")
    a = ap.parse_args()
    files = sorted(Path(p) for p in glob.glob(a.glob))
    if not files:
        raise SystemExit(f"no files match {a.glob}; is Vim installed? (apt-get install vim-runtime)")
    text, used = build_text(files, int(a.mb * 1_000_000))
    Path(a.text).write_bytes(text)
    print(f"wrote {a.text}: {len(text):,} bytes from {used} of the {len(files)} help files in {files[0].parent}")
    if not a.no_dataset:
        subprocess.run([sys.executable, "-m", "charlstm", "data", "text", a.text, "--name", a.name, "--force"],
                       check=True)


if __name__ == "__main__":
    main()
