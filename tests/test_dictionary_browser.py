"""The dictionary page and the viewer's dictionary features in a real browser (headless chromium):
no console errors, sorting, searching and opening a feature through the location hash, and corpus
text that looks like HTML stays text. Without chromium the tests fail under CI and skip elsewhere."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest
import torch

from charlstm.dictionary import Dictionary, session, store
from charlstm.trace.outputs import TraceOutputs, trace_outputs
from charlstm.units import DictUnit
from helpers import TEXT, make_run
from test_viewer_browser import PAYLOAD, _chromium, _dump_doms, _parse

pytestmark = pytest.mark.browser


class _Contexts(HTMLParser):
    """The text of every context line (div.ctx) of a dumped page."""

    def __init__(self):
        super().__init__()
        self.lines, self.depth = [], 0

    def handle_starttag(self, tag, attrs):
        if tag == "div" and "ctx" in (dict(attrs).get("class") or "").split():
            self.lines.append("")
            self.depth = 1
        elif self.depth and tag == "div":
            self.depth += 1

    def handle_endtag(self, tag):
        if self.depth and tag == "div":
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.lines[-1] += data


def _run_with_dictionary(tmp_path, text):
    path, model, vocab = make_run(tmp_path / "checkpoints", text=text, hidden=16, layers=2)
    d = Dictionary(16, 24, 3, "relu", layer=1, kind="c", name="d", seed=1)
    with torch.no_grad():
        d.b_enc.fill_(0.2)
        d.scale.fill_(0.3)
    where = store.folder(path, "d")
    where.mkdir(parents=True)
    store.save(where, d, {"run": path.name, "model_sha256": store.model_sha256(model), "train": {"states": 0}})
    return path, model, vocab


def test_the_dictionary_page_in_chromium(tmp_path):
    browser = _chromium()
    text = (TEXT + PAYLOAD + "\n") * 3
    path, _, _ = _run_with_dictionary(tmp_path, text)
    page = tmp_path / "dict.html"
    data = session.show(path, page, text=text)
    feats = data["features"]
    freq_first = sorted(feats, key=lambda f: (-f["freq"], f["i"]))[0]["i"]
    labelled = sum(1 for f in feats if f["match"] and f["match"][0][2])
    url = page.as_uri()
    a, b, c, d = map(_parse, _dump_doms(browser, tmp_path, [url + "#open=first", url + "#sort=freq",
                                                             url + "#q=%237", url + "#labelled=1"]))
    for p in (a, b, c, d):
        assert p.root.get("data-ready") == "1" and p.root.get("data-errors") == "0"
        assert "data-pwned" not in p.root and p.imgs == 0, "text from the corpus ran as HTML"
    assert a.root.get("data-rows") == "24" and a.root.get("data-open") == "0"
    assert b.root.get("data-first") == str(freq_first)
    assert c.root.get("data-rows") == "1" and c.root.get("data-first") == "7"
    assert d.root.get("data-rows") == str(labelled)
    dom = _dump_doms(browser, tmp_path, [url + "#open=first"])[0]
    shown = _Contexts()
    shown.feed(dom)
    lines = [ln for ln in shown.lines if ln]
    assert lines and any(("<script>" in ln or "<img" in ln or "</script>" in ln) for ln in lines), lines[:5]


def test_the_viewer_selects_a_dictionary_feature_in_chromium(tmp_path):
    browser = _chromium()
    path, model, vocab = _run_with_dictionary(tmp_path, TEXT)
    d, _ = store.load(path, "d", model=model)
    ids = vocab.encode(TEXT * 2)
    from charlstm.dictionary import resolve

    outs = TraceOutputs(html=tmp_path / "v.html", show=resolve(path, DictUnit(None, 5), model), dictionaries=[d])
    trace_outputs(model, vocab, ids, outs)
    url = outs.html.as_uri()
    a, b, c = map(_parse, _dump_doms(browser, tmp_path, [url, url + "#dict/d:6&tip=3", url + "#layer0.h:1"]))
    assert a.root.get("data-selected") == "dict/d:5" and a.root.get("data-errors") == "0"
    assert b.root.get("data-selected") == "dict/d:6" and b.root.get("data-errors") == "0"
    assert "dict/d:6 = " in "".join(b.tip)
    assert a.spans != b.spans, "another feature did not recolour the text"
    assert c.root.get("data-selected") == "layer0.h:1" and c.root.get("data-errors") == "0"
