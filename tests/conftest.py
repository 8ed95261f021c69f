"""Shared fixtures: every test runs with data/ and checkpoints/ pointed at its own temp folders, so
no test touches the user's datasets or runs, and no progress bars clutter the output."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARLSTM_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("CHARLSTM_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("CHARLSTM_QUIET", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    yield
