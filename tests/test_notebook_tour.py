"""docs/notebooks/tour.ipynb, executed end to end with nbclient in a kernel of this very Python (so it
never rots): it trains, samples, traces, finds the counting unit and clamps it without an error, and
its outputs say what its text says.

The kernel: a kernelspec written into a temporary folder on JUPYTER_PATH whose argv is this
interpreter running ipykernel, so the notebook sees the same charlstm as the tests whatever other
kernels the machine has. nbclient, nbformat and ipykernel are in the dev extra; without them the
test fails under CI (CI=true) and skips elsewhere.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from helpers import need

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "notebooks" / "tour.ipynb"
KERNEL = "charlstm-tests"


def _need(name: str):
    return need(name, f"{name} is not installed (pip install -e '.[dev]'); the notebook test needs it")


def _text(cell) -> str:
    """Everything a code cell printed or displayed as text/plain."""
    out = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "stream":
            out.append(o["text"])
        elif "data" in o and "text/plain" in o["data"]:
            out.append(o["data"]["text/plain"])
    return "".join(out)


def _html(cell) -> str:
    return "".join(o["data"].get("text/html", "") for o in cell.get("outputs", []) if "data" in o)


@pytest.mark.slow
def test_the_tour_notebook_runs_end_to_end(tmp_path, monkeypatch):
    nbformat, nbclient = _need("nbformat"), _need("nbclient")
    _need("ipykernel")
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "charlstm tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=600,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    code = [c for c in nb.cells if c.cell_type == "code"]
    by_source = {c.source.splitlines()[0]: c for c in code}

    assert re.search(r"600 steps in [\d.]+ s: validation [\d.]+ bits per character",
                     _text(by_source["with cpu_threads(1):  # a model this small trains fastest on one thread"]))
    greedy = _text(by_source['model = charlstm.load(work / "counting")'])
    assert "aaaX -> bbb\n" in greedy and "aaaaaaaX -> bbbbbbb\n" in greedy, greedy
    table = _html(by_source['model.generate_full("", length=60, num_samples=4, temperature=0.8, seed=1)'])
    assert table.count("<tr>") == 5 and "seed 1" in table
    viewer = _html(by_source['trace = model.trace("aaaaaaaXbbbbbbb")'])
    assert viewer.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in viewer
    frame = _html(by_source['trace.to_pandas(kinds="c", wide=True).round(2)'])
    assert "<table" in frame and "layer0.c:9" in frame and frame.count("<tr") == 16  # header + 15 characters
    ranking = _html(by_source["from charlstm.inputs import read_input"])
    assert "count:a-b" in ranking and ranking.count("<tr>") == 6
    best = re.search(r"layer0\.[hc]:\d+: r = ([+-][\d.]+)", _text(by_source['best = found.best(("h", "c"))']))
    assert best and abs(float(best.group(1))) >= 0.9
    steer = _text(by_source["sign = 1 if best.r > 0 else -1"]).splitlines()
    counts = [len(line.split(": ", 1)[1]) for line in steer]
    assert len(counts) == 5 and counts[0] < counts[2] < counts[4], steer  # the b's follow the clamped value
    assert re.fullmatch(r"counting\.html: \d+ kB, [\d,]+ parameters as float16\n",
                        _text(by_source["from charlstm.export import write_page"]))
