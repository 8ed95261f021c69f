"""Finding and reading corpus files: a safe, deterministic walk and newline-cut chunked reads.

Shared by the code and text sources. The walk never leaves the root (symlinked folders are not
entered; a symlinked file counts only if it resolves inside the root), skips version-control,
vendored and generated folders, and returns files sorted by relative POSIX path, so the same tree
always gives the same corpus.
"""
from __future__ import annotations

import os
import stat
import subprocess
from collections import Counter
from pathlib import Path
from typing import BinaryIO, Iterator

# Folders that hold other people's code, build output or tool state rather than the project's own
# source. Hidden folders (.git, .venv, .tox, .idea, ...) are skipped as well.
SKIP_DIRS = frozenset({
    "node_modules", "bower_components", "vendor", "third_party", "third-party", "build", "dist",
    "target", "_build", "__pycache__", "site-packages", "venv",
})

PIECE = 1 << 22  # bytes per piece read from a big file; bounds the encoder's memory


def _skip_dir(name: str, extra: frozenset[str]) -> bool:
    return name.startswith(".") or name in SKIP_DIRS or name in extra or name.endswith(".egg-info")


def _inside(path: Path, root_real: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(root_real)
        return True
    except ValueError:
        return False


def git_files(root: Path) -> list[str] | None:
    """Tracked files of the git work tree whose top is root (relative POSIX paths), else None.

    Tracked files leave out what .gitignore hides (build output, virtualenvs) better than any list.
    A folder *inside* some repository is walked instead: its files may well be untracked there."""
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-prefix"], capture_output=True,
                             text=True, stdin=subprocess.DEVNULL, timeout=60)
        if top.returncode != 0 or top.stdout.strip():
            return None
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached"], capture_output=True,
                             stdin=subprocess.DEVNULL, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return [p.decode("utf-8", errors="surrogateescape") for p in out.stdout.split(b"\0") if p]


def git_commit(root: Path) -> str | None:
    """The HEAD commit of a git work tree (None for a folder or a repository with no commit)."""
    try:
        r = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def list_files(root: Path, skipped: Counter, *, use_git: bool = True,
               skip_dirs: frozenset[str] = frozenset()) -> list[tuple[str, Path]]:
    """Regular files under root as sorted (relative path, path) pairs.

    Uses `git ls-files` in a git work tree (only tracked files), else walks the folder. Either way
    hidden and SKIP_DIRS folders are left out, and files that are not regular or that resolve outside
    the root are counted in `skipped` by reason."""
    root_real = Path(os.path.realpath(root))
    rels = git_files(root) if use_git else None
    if rels is None:
        rels = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = [d for d in dirnames if not _skip_dir(d, skip_dirs)]
            base = Path(dirpath).relative_to(root)
            rels.extend((base / f).as_posix() for f in filenames if not f.startswith("."))
    out = []
    for rel in sorted(rels):
        parts = rel.split("/")
        if any(_skip_dir(d, skip_dirs) for d in parts[:-1]) or parts[-1].startswith("."):
            continue
        path = root / rel
        if path.is_symlink() and not _inside(path, root_real):
            skipped["symlink_outside"] += 1
            continue
        try:
            mode = path.stat().st_mode
        except OSError:
            skipped["unreadable"] += 1
            continue
        if not stat.S_ISREG(mode):
            skipped["not_regular"] += 1
            continue
        out.append((rel, path))
    return out


def is_binary(head: bytes) -> bool:
    """NUL bytes mean binary (images, archives, UTF-16): text in UTF-8 never contains them."""
    return b"\0" in head


def read_pieces(f: BinaryIO, size: int | None = None) -> Iterator[bytes]:
    """A seekable binary file as pieces of about `size` bytes, each ending just after a newline (so
    no UTF-8 sequence or NFC composition is split). A line longer than `size` (4 MB: minified code,
    a book without line breaks) is cut before a UTF-8 lead byte instead, and the rest is read again
    with the next piece; only NFC can notice such a cut, if it falls between a letter and its
    combining accent. `size` defaults to PIECE."""
    size = size or PIECE
    while block := f.read(size):
        if block[-1:] != b"\n":
            block += f.readline(size)  # finish the line: one copy, no carried buffer
            if block[-1:] != b"\n":   # a very long line, or the end of the file
                cut = _utf8_cut(block)
                if 0 < cut < len(block):
                    f.seek(cut - len(block), os.SEEK_CUR)
                    block = block[:cut]
        yield block


def _utf8_cut(buf: bytes) -> int:
    """An index near the end of buf that does not fall inside a UTF-8 sequence."""
    n = len(buf)
    for k in range(1, min(4, n) + 1):
        b = buf[n - k]
        if b < 0x80:
            return n
        if b >= 0xC0:  # lead byte: cut before it
            return n - k
    return n
