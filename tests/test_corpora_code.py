"""Code corpora: git repositories (local path and file:// clone), folders, filters, the stdlib."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from charlstm.corpora import code as code_mod
from charlstm.corpora.build import EncodeOptions
from charlstm.corpora.code import parse_exts, url_name, write_code
from charlstm.errors import CharlstmError
from charlstm.dataset import data_root

FILES = {
    "src/main.py": "def main():\n    print('héllo 😀')\n",
    "src/util.java": "class Util {\n    int x = 1;\n}\n",
    "README.md": "# not code\n",
    "a.c": "int main(void) { return 0; }",  # no final newline: one is added
    "node_modules/dep/index.js": "module.exports = 1;\n",
    "build/gen.py": "generated = True\n",
    ".hidden/x.py": "hidden = 1\n",
    "big.py": "x = 1\n" * 400,
    "blob.py": "abc\0def\n",
    "latin1.py": "caf\xe9 = 1\n",
}


def _tree(root: Path, files: dict[str, str] = FILES) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text.encode("latin-1") if rel == "latin1.py" else text.encode("utf-8"))
    return root


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com",
                    "-c", "init.defaultBranch=main", *args], check=True, capture_output=True)


def _repo(tmp_path: Path) -> Path:
    root = _tree(tmp_path / "myrepo")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "init")
    (root / "untracked.py").write_text("not in git = 1\n")
    return root


def _text(ds) -> str:
    return "".join(ds.vocab.decode(ds.split(s)) for s in ds.splits)


EXPECTED = ("==> a.c <==\nint main(void) { return 0; }\n"
            "\n==> src/main.py <==\ndef main():\n    print('héllo 😀')\n"
            "\n==> src/util.java <==\nclass Util {\n    int x = 1;\n}\n")


def test_local_repo_reads_tracked_files_in_order(tmp_path):
    root = _repo(tmp_path)
    ds = write_code(root, max_file_size=1000)
    assert ds.name == "myrepo" and ds.path == data_root() / "myrepo"
    assert _text(ds) == EXPECTED  # untracked.py, README, vendored, build, hidden, big, binary, latin-1 all left out
    st = ds.meta["stats"]
    assert st["files"] == 3
    assert st["skipped"] == {"binary": 1, "extension": 1, "not_utf8": 1, "too_large": 1}
    assert ds.meta["source"]["commit"] and len(ds.meta["source"]["commit"]) == 40
    assert ds.meta["records"] is False


def test_file_url_is_cloned(tmp_path, monkeypatch):
    root = _repo(tmp_path)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    ds = write_code(f"file://{root}", max_file_size=1000)
    assert ds.name == "myrepo" and _text(ds) == EXPECTED
    assert ds.meta["source"] == {"kind": "code", "url": f"file://{root}", "commit": ds.meta["source"]["commit"]}
    assert list((tmp_path / "tmp").iterdir()) == []  # the clone is gone


def test_plain_folder_is_walked(tmp_path):
    root = _tree(tmp_path / "proj")
    ds = write_code(root, "p", max_file_size=1000, separator=False, opts=EncodeOptions(val_frac=0))
    assert _text(ds) == ("int main(void) { return 0; }\ndef main():\n    print('héllo 😀')\n"
                         "class Util {\n    int x = 1;\n}\n")
    assert ds.meta["source"]["commit"] is None


def test_extensions_and_max_files(tmp_path):
    root = _tree(tmp_path / "proj")
    ds = write_code(root, "j", exts="java", opts=EncodeOptions(val_frac=0))
    assert _text(ds) == "==> src/util.java <==\nclass Util {\n    int x = 1;\n}\n"
    ds = write_code(root, "two", max_files=2, max_file_size=1000, opts=EncodeOptions(val_frac=0))
    assert ds.meta["stats"]["files"] == 2 and "==> src/util.java" not in _text(ds)
    ds = write_code(root, "any", exts="*", max_file_size=1000, opts=EncodeOptions(val_frac=0))
    assert "==> README.md <==\n# not code\n" in _text(ds)
    assert parse_exts(".PY, java") == {"py", "java"} and parse_exts("*") is None


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinks_never_leave_the_root(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("secret = 1\n")
    root = _tree(tmp_path / "proj", {"ok.py": "ok = 1\n"})
    (root / "link.py").symlink_to(outside / "secret.py")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    (root / "inside.py").symlink_to(root / "ok.py")
    ds = write_code(root, opts=EncodeOptions(val_frac=0))
    text = _text(ds)
    assert "secret" not in text and "==> inside.py <==\nok = 1\n" in text
    assert ds.meta["stats"]["skipped"] == {"symlink_outside": 1}


def test_same_source_gives_byte_identical_datasets(tmp_path):
    root = _repo(tmp_path)
    a = write_code(root, "a")
    b = write_code(root, "b")
    for f in ("train.bin", "val.bin", "tokenizer.json"):
        assert (a.path / f).read_bytes() == (b.path / f).read_bytes()
    assert (a.path / "meta.json").read_text().replace('"a"', '"b"') == (b.path / "meta.json").read_text()


def test_unreadable_files_are_skipped_and_warned(tmp_path, monkeypatch):
    root = _tree(tmp_path / "proj", {"a.py": "a = 1\n", "b.py": "b = 2\n"})
    real = Path.read_bytes

    def read_bytes(self):
        if self.name == "a.py":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    warnings = []
    ds = write_code(root, opts=EncodeOptions(val_frac=0), on_warning=warnings.append)
    assert _text(ds) == "==> b.py <==\nb = 2\n" and ds.meta["stats"]["skipped"] == {"unreadable": 1}
    assert warnings == ["skipped 1 unreadable file(s): a.py (Permission denied)"]


def test_bad_sources(tmp_path):
    (tmp_path / "empty").mkdir()
    _tree(tmp_path / "bin", {"x.py": "\0\0\0"})
    (tmp_path / "f.py").write_text("x = 1\n")
    cases = [(str(tmp_path / "missing"), "no such folder"), (str(tmp_path / "empty"), "no usable source files"),
             (str(tmp_path / "bin"), r"no usable source files .*\(skipped: 1 binary\)"),
             (str(tmp_path / "f.py"), "is a file"), ("file:///nonexistent/repo", "git clone .* failed")]
    for src, msg in cases:
        with pytest.raises(CharlstmError, match=msg):
            write_code(src)
    assert not data_root().exists()


def test_url_names():
    assert url_name("https://github.com/apache/commons-lang") == "commons-lang"
    assert url_name("https://github.com/apache/commons-lang.git/") == "commons-lang"
    assert url_name("git@github.com:user/My Repo.git") == "My-Repo"


def test_stdlib_default(monkeypatch):
    """The default corpus (here its first 20 files) reads the interpreter's stdlib, no tests."""
    ds = write_code(max_files=20)
    assert ds.name == "stdlib" and ds.meta["source"]["stdlib"] is True
    text = _text(ds)
    assert text.startswith("==> __future__.py <==\n") and text.count("\n==> ") == 19
    assert "==> test/" not in text and ds.meta["stats"]["files"] == 20
    assert Path(ds.meta["source"]["path"]) == code_mod.stdlib_path()


def _folders(root: Path, n_folders: int = 5, n_files: int = 8) -> Path:
    """n_folders x n_files Python files of equal length: pkg0/mod0.py ... pkg4/mod7.py."""
    for d in range(n_folders):
        for f in range(n_files):
            p = root / f"pkg{d}" / f"mod{f}.py"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(f"value_{d}_{f} = {d * f}\n" * 20)
    return root


def _files_in(ds, split: str) -> list[str]:
    """The files of a split, read back from their separator lines."""
    return re.findall(r"==> (\S+) <==", ds.vocab.decode(ds.split(split)))


def test_validation_takes_whole_files_from_every_folder(tmp_path):
    """The last 5% of the concatenation used to be the last folder; now val samples them all."""
    root = _folders(tmp_path / "proj")
    ds = write_code(root, "p", opts=EncodeOptions(val_frac=0.2))
    val, train = _files_in(ds, "val"), _files_in(ds, "train")
    assert {f.split("/")[0] for f in val} == {f"pkg{d}" for d in range(5)}
    assert sorted(val + train) == sorted(f"pkg{d}/mod{f}.py" for d in range(5) for f in range(8))
    assert val == sorted(val)  # in corpus order within the split
    text = ds.vocab.decode(ds.split("val"))
    for f in val:  # whole files: the separator line and every line of the file
        d, m = int(f[3]), int(f[8])
        assert f"==> {f} <==\n" + f"value_{d}_{m} = {d * m}\n" * 20 in text
    split = ds.meta["split"]
    assert split["by"] == "document" and split["seed"] == 0 and split["document"] == "file"
    assert split["names"]["val"] == val and split["documents"] == {"train": len(train), "val": len(val), "test": 0}
    quota = round(ds.meta["stats"]["characters"] * 0.2)
    assert quota - 200 < ds.meta["splits"]["val"]["tokens"] <= quota  # files are ~400 characters


def test_same_seed_same_bytes_other_seed_other_files(tmp_path):
    root = _folders(tmp_path / "proj")
    opts = EncodeOptions(val_frac=0.15, test_frac=0.1, seed=7)
    a = write_code(root, "p", opts=opts, data_dir=tmp_path / "a")
    b = write_code(root, "p", opts=opts, data_dir=tmp_path / "b")
    files = sorted(p.name for p in a.path.iterdir())
    assert files == ["meta.json", "test.bin", "tokenizer.json", "train.bin", "val.bin"]
    assert files == sorted(p.name for p in b.path.iterdir())
    for f in files:
        assert (a.path / f).read_bytes() == (b.path / f).read_bytes(), f
    val, test = _files_in(a, "val"), _files_in(a, "test")
    assert val and test and not set(val) & set(test)
    assert a.meta["split"]["names"] == {"val": val, "test": test}
    other = write_code(root, "p", opts=EncodeOptions(val_frac=0.15, test_frac=0.1, seed=8), data_dir=tmp_path / "c")
    assert _files_in(other, "val") != val
