"""Source-code corpora: a git URL (shallow clone), a local repository or folder, or Python's stdlib.

The corpus is the concatenation of the kept files in sorted path order. Each file is preceded by a
separator line in the style of `head` with several files, which no programming language uses:

    ==> path/to/file.py <==

(with a blank line before it from the second file on), so a model sees where files begin and what
language follows. Each file, with its separator line, is one document: validation and test take
whole files from all over the corpus (see corpora/build.py). Kept files: a known source extension (`--ext`), at most `max_file_size` bytes, no
NUL byte and valid UTF-8 (anything else is binary or a legacy encoding, and would teach the model
noise); everything skipped is counted by reason in meta.json.

The default corpus is the standard library of the running interpreter: present everywhere, a few MB
of varied, well-written Python. Its tests, IDLE, turtle demos, generated tables (pydoc topics,
codec tables) and bundled wheels are left out.
"""
from __future__ import annotations

import os
import platform
import re
import subprocess
import sysconfig
import tempfile
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator

from charlstm.corpora.build import EncodeOptions, dataset_dir, safe_name, write_stream
from charlstm.corpora.files import git_commit, is_binary, list_files
from charlstm.dataset import Dataset
from charlstm.errors import CharlstmError

DEFAULT_EXTS = frozenset("""
    py pyi pyx c h cc cpp cxx hpp hh hxx cu java kt kts scala groovy go rs js jsx mjs cjs ts tsx
    rb php cs fs swift m mm sh bash zsh pl pm lua r jl hs ml mli clj cljs ex exs erl hrl dart sql
    f f90 f95 zig nim el lisp scm rkt vim ps1 asm s v sv vhd tcl awk
""".split())
STDLIB_SKIP = frozenset({"test", "tests", "idlelib", "turtledemo", "pydoc_data", "encodings", "ensurepip", "lib-dynload"})
MAX_FILE_SIZE = 1_000_000

_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://|[\w.-]+@[\w.-]+:)")


def stdlib_path() -> Path:
    """The running interpreter's standard library source folder."""
    return Path(sysconfig.get_paths()["stdlib"])


def parse_exts(text: str | Iterable[str] | None) -> frozenset[str] | None:
    """'py,java' / ['.py', 'JAVA'] -> {'py', 'java'}; None -> the default set; '*' -> None (any)."""
    if text is None:
        return DEFAULT_EXTS
    items = text.split(",") if isinstance(text, str) else list(text)
    exts = frozenset(e.strip().lstrip(".").lower() for e in items if e.strip())
    if "*" in exts:
        return None
    if not exts:
        raise CharlstmError("--ext needs at least one extension, e.g. --ext py,java (or '*' for any)")
    return exts


def url_name(url: str) -> str:
    """The repository name in a URL: https://host/org/commons-lang.git -> commons-lang."""
    tail = re.split(r"[/:]", url.rstrip("/"))[-1]
    return safe_name(tail[:-4] if tail.endswith(".git") else tail)


def clone(url: str, dest: Path) -> None:
    """Shallow-clone url into dest; a failure raises CharlstmError with git's own last words."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # fail instead of asking for a password
    try:
        r = subprocess.run(["git", "clone", "--depth", "1", "--quiet", "--", url, str(dest)],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env)
    except OSError as e:
        raise CharlstmError(f"cannot run git to clone {url} ({e.strerror}); install git or pass a local folder") from None
    if r.returncode != 0:
        lines = [ln.strip() for ln in r.stderr.splitlines() if ln.strip()]
        fatal = [ln for ln in lines if ln.startswith("fatal:")]  # git's own diagnosis comes first
        why = (fatal or lines or [f"exit status {r.returncode}"])[0]
        raise CharlstmError(f"git clone {url} failed: {why}")


class CodeCorpus:
    """The kept files under a root, as byte pieces for `write_stream` (re-iterable), one document
    per file.

    The first iteration reads every candidate and decides which files are kept (and counts the rest
    in `skipped`); later iterations read just the kept files again."""

    def __init__(self, root: Path, exts: frozenset[str] | None = DEFAULT_EXTS, max_file_size: int = MAX_FILE_SIZE,
                 max_files: int | None = None, separator: bool = True, use_git: bool = True,
                 skip_dirs: frozenset[str] = frozenset(), on_warning: Callable[[str], None] | None = None):
        self.root, self.max_files, self.separator = root, max_files, separator
        self.on_warning = on_warning
        self.skipped: Counter = Counter()
        self.candidates: list[tuple[str, Path]] = []
        self.total_bytes = 0
        for rel, path in list_files(root, self.skipped, use_git=use_git, skip_dirs=skip_dirs):
            if exts is not None and Path(rel).suffix.lstrip(".").lower() not in exts:
                self.skipped["extension"] += 1
                continue
            size = path.stat().st_size
            if size > max_file_size:
                self.skipped["too_large"] += 1
                continue
            self.candidates.append((rel, path))
            self.total_bytes += size
        self.kept: list[tuple[str, Path]] | None = None
        self.document = "file"

    def _framed(self, i: int, rel: str, data: bytes) -> Iterator[tuple[int, bytes]]:
        # A file's document includes its separator line (and the blank line before it), so the
        # split files keep every file with its name.
        if self.separator:
            yield i, f"{chr(10) if i else ''}==> {rel} <==\n".encode("utf-8", errors="replace")
        yield i, data
        if data and not data.endswith(b"\n"):
            yield i, b"\n"

    def _scan(self) -> Iterator[tuple[int, bytes]]:
        kept: list[tuple[str, Path]] = []
        unreadable: list[str] = []
        for rel, path in self.candidates:
            if self.max_files is not None and len(kept) >= self.max_files:
                break
            try:
                data = path.read_bytes()
            except OSError as e:
                self.skipped["unreadable"] += 1
                unreadable.append(f"{rel} ({e.strerror})")
                continue
            if is_binary(data):
                self.skipped["binary"] += 1
                continue
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                self.skipped["not_utf8"] += 1
                continue
            yield from self._framed(len(kept), rel, data)
            kept.append((rel, path))
        if unreadable and self.on_warning:
            more = f" and {len(unreadable) - 3} more" if len(unreadable) > 3 else ""
            self.on_warning(f"skipped {len(unreadable)} unreadable file(s): {', '.join(unreadable[:3])}{more}")
        if not kept:
            why = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in sorted(self.skipped.items()))
            raise CharlstmError(f"no usable source files in {self.root}" + (f" (skipped: {why})" if why else "")
                                + "; check the path or choose extensions with --ext")
        self.kept = kept

    def pieces(self) -> Iterator[tuple[int, bytes]]:
        """(file index, piece) pairs: each kept file is one document."""
        if self.kept is None:
            yield from self._scan()
            return
        for i, (rel, path) in enumerate(self.kept):
            try:
                data = path.read_bytes()
            except OSError as e:
                raise CharlstmError(f"{rel} became unreadable during the build ({e.strerror}); run the command again") from None
            yield from self._framed(i, rel, data)

    def names(self) -> list[str]:
        return [rel for rel, _ in self.kept or []]

    def stats(self) -> dict:
        return {"documents": len(self.kept or []), "files": len(self.kept or []), "skipped": dict(sorted(self.skipped.items()))}


def write_code(source: str | os.PathLike | None = None, name: str | None = None, *,
               opts: EncodeOptions | None = None, exts: str | Iterable[str] | None = None,
               max_file_size: int = MAX_FILE_SIZE, max_files: int | None = None, separator: bool = True,
               data_dir: str | os.PathLike | None = None, force: bool = False, progress: bool = False,
               on_warning: Callable[[str], None] | None = None) -> Dataset:
    """Build a code dataset from a git URL, a local repository/folder, or (source None) the stdlib.

    Returns the written Dataset (data_dir/name, name derived from the source when None).
    """
    opts = opts or EncodeOptions()
    opts.validate()
    ext_set = parse_exts(exts)
    if max_file_size < 1:
        raise CharlstmError(f"--max-file-size must be positive, got {max_file_size}")
    if max_files is not None and max_files < 1:
        raise CharlstmError(f"--max-files must be positive, got {max_files}")
    use_git, skip_dirs = True, frozenset()
    if source is None:
        root, url = stdlib_path(), None
        src: dict = {"kind": "code", "path": str(root), "stdlib": True, "python": platform.python_version()}
        default_name, use_git, skip_dirs = "stdlib", False, STDLIB_SKIP
    elif Path(source).exists():
        root, url = Path(source), None
        if not root.is_dir():
            raise CharlstmError(f"{source} is a file, not a folder or repository; use `charlstm data text {source}` for a text file")
        root = Path(os.path.realpath(root))
        src = {"kind": "code", "path": str(root), "commit": git_commit(root)}
        default_name = safe_name(root.name)
    elif _URL.match(str(source)):
        root, url = None, str(source)
        src = {"kind": "code", "url": url}
        default_name = url_name(url)
    else:
        raise CharlstmError(f"no such folder or repository: {source} (give a path, a git URL, or nothing for the stdlib)")
    out = dataset_dir(name or default_name, data_dir, force)
    options = {"ext": ",".join(sorted(ext_set)) if ext_set is not None else "*", "max_file_size": max_file_size,
               "max_files": max_files, "separator": separator}
    with tempfile.TemporaryDirectory(prefix="charlstm-clone-") as tmp:
        if url is not None:
            root = Path(tmp) / "repo"
            clone(url, root)
            src["commit"] = git_commit(root)
        corpus = CodeCorpus(root, ext_set, max_file_size, max_files, separator, use_git, skip_dirs, on_warning)
        return write_stream(out, corpus, opts, source=src, options=options, force=force, progress=progress,
                            what=f"code in {source or root}")
