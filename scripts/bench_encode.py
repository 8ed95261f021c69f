"""Benchmark the streaming encoder: throughput (MB/s) and peak memory on a large generated corpus.

    .venv/bin/python scripts/bench_encode.py                    # 300 MB ASCII, char units
    .venv/bin/python scripts/bench_encode.py --size 300 --kind utf8 --units char
    .venv/bin/python scripts/bench_encode.py --units byte

The corpus is Python standard-library source repeated up to --size MB (ASCII only for --kind ascii;
for --kind utf8 every line gets some accented, Cyrillic, CJK and emoji characters), written once to
/tmp and reused. The encode runs `charlstm data text` in this process (both passes, split files,
checksums, atomic rename), and the peak RSS of the process is reported: it should not grow with
the corpus size. Other processes on the machine slow it down: run it a few times. Results go in docs/benchmarks.md, "Encoding".
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from charlstm.corpora.build import EncodeOptions
from charlstm.corpora.code import stdlib_path
from charlstm.corpora.text import write_text

_EXTRA = " é ü ß Ж я 中文 🙂 ½\n"


def make_corpus(path: Path, size_mb: int, kind: str) -> None:
    """Write about size_mb MB of stdlib source (repeated) to path."""
    files = sorted(p for p in stdlib_path().glob("*.py"))
    blob = b"".join(p.read_bytes() for p in files)
    if kind == "ascii":
        blob = blob.decode("utf-8", errors="ignore").encode("ascii", errors="ignore")
    else:
        lines = blob.decode("utf-8", errors="ignore").splitlines()
        blob = "".join(ln + _EXTRA for ln in lines).encode("utf-8")
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as f:
        written = 0
        while written < size_mb * 10**6:
            f.write(blob)
            written += len(blob)
    tmp.rename(path)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is in KB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=300, help="corpus size in MB (default 300)")
    ap.add_argument("--kind", choices=["ascii", "utf8"], default="ascii")
    ap.add_argument("--units", choices=["char", "byte"], default="char")
    ap.add_argument("--corpus-dir", default="/tmp", help="where the generated corpus is kept")
    args = ap.parse_args()

    corpus = Path(args.corpus_dir) / f"charlstm-bench-{args.kind}-{args.size}MB.txt"
    if not corpus.exists():
        make_corpus(corpus, args.size, args.kind)
        # Start afresh so that the peak RSS measured below is the encoder's, not the generator's.
        os.execv(sys.executable, [sys.executable, *sys.argv])
    size = corpus.stat().st_size
    rss_before = peak_rss_mb()
    out = Path(tempfile.mkdtemp(prefix="charlstm-bench-"))
    try:
        t0 = time.perf_counter()
        ds = write_text([corpus], "bench", opts=EncodeOptions(units=args.units), data_dir=out, force=True)
        dt = time.perf_counter() - t0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"corpus      {corpus} ({size / 1e6:.0f} MB, {args.kind})")
    print(f"units       {args.units}, vocabulary {ds.vocab.size} ({ds.meta['dtype']}), "
          f"{sum(s['tokens'] for s in ds.meta['splits'].values()):,} tokens")
    print(f"time        {dt:.2f} s  ->  {size / 1e6 / dt:.0f} MB/s (two passes, split files, sha256, rename)")
    print(f"peak RSS    {peak_rss_mb():.0f} MB (after imports, before encoding: {rss_before:.0f} MB)")
    print(f"machine     {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
