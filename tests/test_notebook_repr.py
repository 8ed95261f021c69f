"""Traces, generations and rankings in notebooks: Trace.to_numpy / to_pandas, and the HTML that
Jupyter shows (`_repr_html_`, charlstm.viz.notebook), escaped; the inline viewer running in a real
browser inside its sandboxed frame (skips without chromium, fails under CI like the other browser
tests)."""
from __future__ import annotations

import html
import re
import sys
import time
from html.parser import HTMLParser

import numpy as np
import pytest

from charlstm.errors import CharlstmError
from charlstm.export.browser import Chromium
from charlstm.inputs import read_input
from charlstm.neurons import find_units
from charlstm.sample import SampleOptions, generate
from charlstm.trace import trace_text
from charlstm.viz.html import render_html
from charlstm.viz.notebook import NOTEBOOK_CHARS, NOTEBOOK_VALUES

from helpers import make_run, need, need_chromium

PAYLOAD = "<script>document.documentElement.setAttribute('data-pwned','1')</script>\"' & <!--"
TEXT = "def f(x):\n    return 'a' + \"b\" # c\n" + PAYLOAD + "\n"


def _optional(name: str, what: str = "pandas is not installed (pip install 'charlstm[pandas]')"):
    """An optional package: the test skips without it, and fails under CI (the dev extra has it)."""
    return need(name, what)


@pytest.fixture
def model(tmp_path):
    _, module, vocab = make_run(tmp_path, text=TEXT)
    return module, vocab


def test_to_numpy_stacks_the_chosen_arrays_in_order(model):
    module, vocab = model
    tr = trace_text(module, vocab, TEXT)
    a = tr.to_numpy()
    assert a.shape == (len(TEXT), 12, 16) and a.dtype == np.float32
    assert np.array_equal(a[:, 7], tr.arrays["layer1.c"])  # layer 1's kinds follow layer 0's h c i f g o
    b = tr.to_numpy(layers=[1], kinds="c,h")
    assert np.array_equal(b[:, 0], tr.arrays["layer1.h"]) and np.array_equal(b[:, 1], tr.arrays["layer1.c"])
    part = trace_text(module, vocab, TEXT, layers=[0], kinds="h")
    with pytest.raises(CharlstmError, match="layer0.c was not traced; this trace holds layer0.h"):
        part.to_numpy(kinds="c")


def test_to_pandas_long_and_wide(model):
    _optional("pandas")
    module, vocab = model
    tr = trace_text(module, vocab, TEXT)
    long = tr.to_pandas(layers=1, kinds="c", units=[2, 5])
    assert long.equals(tr.to_pandas(layers="1", kinds=["c"], units=[2, 5]))
    assert list(long.columns) == ["position", "char", "id", "layer", "kind", "unit", "value"]
    assert len(long) == len(TEXT) * 2
    row = long[(long.position == 4) & (long.unit == 5)].iloc[0]
    assert row.char == "f" and row.layer == 1 and row.kind == "c" and row.value == tr.arrays["layer1.c"][4, 5]
    wide = tr.to_pandas(kinds=["h"], units=[3], wide=True)
    assert list(wide.columns) == ["position", "char", "id", "layer0.h:3", "layer1.h:3"]
    assert "".join(wide.char) == TEXT and np.array_equal(wide["layer1.h:3"].to_numpy(), tr.arrays["layer1.h"][:, 3])
    full = tr.to_pandas()
    assert len(full) == len(TEXT) * 12 * 16
    assert np.array_equal(full.value.to_numpy(), tr.to_numpy().reshape(-1))
    with pytest.raises(CharlstmError, match="unit 16 does not exist; layers have units 0..15"):
        tr.to_pandas(units=[16])


def test_to_pandas_without_pandas_says_how_to_get_it(model, monkeypatch):
    module, vocab = model
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(CharlstmError, match=r"Trace.to_pandas needs pandas: pip install 'charlstm\[pandas\]'"):
        trace_text(module, vocab, "def").to_pandas()


class _Frame(HTMLParser):
    def __init__(self):
        super().__init__()
        self.frames = []

    def handle_starttag(self, tag, attrs):
        if tag == "iframe":
            self.frames.append(dict(attrs))


def test_trace_repr_html_is_the_viewer_escaped_into_a_sandboxed_frame(model):
    module, vocab = model
    tr = trace_text(module, vocab, TEXT)
    out = tr._repr_html_()
    assert out.startswith("<iframe ") and out.endswith("</iframe>") and "<script" not in out
    p = _Frame()
    p.feed(out)
    (frame,) = p.frames
    assert frame["sandbox"] == "allow-scripts"
    assert frame["srcdoc"] == render_html(tr, max_chars=NOTEBOOK_CHARS, max_values=NOTEBOOK_VALUES)


def test_generation_and_ranking_tables_escape_the_text(model):
    module, vocab = model
    g = generate(module, vocab, vocab.encode(PAYLOAD), SampleOptions(length=30, num_samples=2, seed=5))
    g.samples[0].text = PAYLOAD  # whatever the model writes is shown as text
    out = g._repr_html_()
    assert html.escape(PAYLOAD) in out and "<script>" not in out and "seed 5" in out
    assert out.count("<tr>") == 3 and "<td" in out
    found = find_units(module, vocab, read_input(vocab, text=TEXT), "double-quote", top=4)
    tab = found._repr_html_()
    assert tab.count("<tr>") == 5 and "AUROC" in tab
    best = found.ranking[0]
    assert re.search(rf"<td[^>]*>1</td><td[^>]*>{re.escape(best.name)}</td><td[^>]*>{best.score:.3f}</td>", tab)
    cont = find_units(module, vocab, read_input(vocab, text=TEXT), "indentation", top=3)._repr_html_()
    assert "|Pearson r|" in cont and cont.count("<tr>") == 4


def test_the_inline_viewer_runs_in_its_frame(model, tmp_path):
    browser = need_chromium("the inline viewer's test needs it")
    module, vocab = model
    tr = trace_text(module, vocab, TEXT)
    page = tmp_path / "notebook.html"  # what a notebook page holds: an output cell with the frame
    page.write_text(f'<!doctype html><html data-ready="1"><body><div class="output">{tr._repr_html_()}</div></body></html>',
                    encoding="utf-8")
    with Chromium(browser) as b:
        b.open(page.as_uri())
        root = "document.documentElement"
        deadline = time.monotonic() + 60
        while not (frames := b.frame_sessions()):
            assert time.monotonic() < deadline, "no frame"
            time.sleep(0.05)
        (frame,) = frames
        while b.evaluate(f"{root} && {root}.getAttribute('data-ready')", session=frame) != "1":
            assert time.monotonic() < deadline, "the viewer in the frame did not get ready"
            time.sleep(0.05)
        assert b.evaluate(f"{root}.getAttribute('data-errors')", session=frame) == "0"
        shown = b.evaluate("Array.from(document.querySelectorAll('#text span')).map(s => s.textContent).join('')",
                           session=frame)
        assert shown.replace("↵", "\n") == TEXT
        assert b.evaluate(f"{root}.getAttribute('data-pwned')", session=frame) is None
        assert b.evaluate(f"{root}.getAttribute('data-pwned')") is None
        assert b.evaluate("document.querySelectorAll('script').length") == 0  # nothing ran in the notebook itself
