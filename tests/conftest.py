"""Shared fixtures: every test runs with data/ and checkpoints/ pointed at its own temp folders, so
no test touches the user's datasets or runs, and no progress bars clutter the output.

Tests marked `cuda` need a CUDA GPU: they are skipped where torch sees none, and `pytest -m cuda`
selects them (scripts/gpu_check.sh runs them on a GPU machine)."""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    cuda_tests = [item for item in items if item.get_closest_marker("cuda")]
    if not cuda_tests:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (torch sees none here); on a GPU machine: pytest -m cuda")
        for item in cuda_tests:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARLSTM_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("CHARLSTM_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("CHARLSTM_QUIET", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    yield


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from a second thread, and on a busy machine two threads wait on each
    other; tests of tiny models opt in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    from charlstm.runtime import cpu_threads

    with cpu_threads(1):
        yield
