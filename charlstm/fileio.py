"""Writing files so that nothing is ever half-written, and the names charlstm gives folders.

Owns: atomic writes (a temporary file in the target's folder, fsync, rename over the target, fsync
the folder), for whole contents (`atomic_write_bytes/text/json`) and for output streamed piece by
piece (`atomic_file`); a temporary folder beside a target (`temp_dir_beside`) for outputs assembled
from several files; the rule for dataset and run names (`check_name`); checking an output path
before any work is done (`check_output`). Does not know: what the files contain.

A process killed at any instant leaves either the previous complete file or the new complete one.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

from charlstm.errors import CharlstmError

_NAME = re.compile(r"^[\w][\w.+-]*$")


def check_name(name: str, what: str = "dataset") -> str:
    """A dataset or run name is a plain folder name: letters, digits, '.', '_', '+' and '-', not
    starting with '.' or '-' (so it can never point outside its folder). Returns it unchanged."""
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise CharlstmError(f"invalid {what} name '{name}': use letters, digits, '.', '_', '+' and '-' "
                            "(not starting with '.' or '-')")
    return name


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass  # some filesystems cannot fsync a directory; the rename is still atomic


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; on a clean exit it is fsynced and renamed
    onto `path`, on an exception removed (the previous `path`, if any, is untouched)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            os.fchmod(f.fileno(), 0o644)  # mkstemp makes it private; outputs are ordinary files
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write data to path atomically."""
    with atomic_file(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text to path atomically (lone surrogates, from a byte model's text, pass through
    as the bytes they stand for)."""
    atomic_write_bytes(path, text.encode("utf-8", errors="surrogateescape"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write obj as indented JSON atomically. NaN and infinity are refused (they are not JSON)."""
    try:
        text = json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError as e:
        raise CharlstmError(f"cannot write {path}: {e}") from None
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def temp_dir_beside(path: str | os.PathLike) -> Path:
    """A new temporary folder in `path`'s folder (created if needed), for an output assembled from
    several files and then renamed into place; the caller removes it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; outputs are ordinary folders
    return tmp


def check_output(path: str | os.PathLike, what: str = "output", folder: bool = False) -> Path:
    """Check, before any work, that `path` can be written: not an existing folder (or, with
    folder=True, not an existing file), and no file standing where one of its parent folders would
    go. Returns the path. Raises CharlstmError naming the problem."""
    p = Path(path)
    if folder:
        if p.exists() and not p.is_dir():
            raise CharlstmError(f"{what} {p} is a file; give a folder")
    elif p.is_dir():
        raise CharlstmError(f"{what} {p} is a folder; give a file name")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CharlstmError(f"cannot write {what} {p}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK):
                raise CharlstmError(f"cannot write {what} {p}: no permission to write in {parent}")
            break
    return p
