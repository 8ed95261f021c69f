"""The atlas report in a real browser (Debian's headless chromium): it loads with no console errors,
fetches nothing, shows text that looks like HTML as text, and its "open in the viewer" shows the
trace viewer on the chosen unit (the `#open=` hook; the report copies the viewer's own test hooks
onto its <html>). Without chromium the test fails under CI (CI=true) and skips elsewhere."""
import json
import re
from html.parser import HTMLParser

import pytest

from charlstm.inputs import read_input
from charlstm.neurons.atlas import build_atlas
from charlstm.neurons.atlas.report import write_report
from helpers import TEXT, make_run
from test_viewer_browser import PAYLOAD, _chromium, _dump_doms, _parse

pytestmark = pytest.mark.browser


def test_atlas_report_in_chromium(tmp_path, one_thread):
    browser = _chromium()
    text = (TEXT + "s = 'it''s' # note\n") * 4 + PAYLOAD + "\n" + TEXT * 2
    path, model, vocab = make_run(tmp_path, text=text, hidden=8, layers=2)
    cfg = json.loads((path / "config.json").read_text())
    cfg["dataset"]["meta"] = {"source": {"kind": "code"}}
    inp = read_input(vocab, cfg, text=text)
    atlas = build_atlas(model, vocab, inp, cfg, run="tiny <b>run</b>", features=["regex:<script>"], controls=99,
                        untrained=1, top=1, ngram=0)
    page = write_report(atlas, tmp_path / "report.html")
    src = page.read_text()
    assert "<b>run</b>" not in src and "&lt;b&gt;run&lt;/b&gt;" in src  # the run name is escaped too
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", src)  # nothing fetched from anywhere
    best = atlas.features[0].best.unit
    url = page.as_uri()
    a, b = map(_parse, _dump_doms(browser, tmp_path, [url, url + f"#open={best}"]))
    assert a.root.get("data-ready") == "1" and a.root.get("data-errors") == "0"
    assert "data-pwned" not in a.root and "data-pwned" not in b.root
    assert "data-viewer-selected" not in a.root  # the viewer opens on a click only
    assert b.root.get("data-viewer-ready") == "1" and b.root.get("data-viewer-errors") == "0"
    assert b.root.get("data-viewer-selected") == best and b.root.get("data-errors") == "0"
    assert a.imgs >= 1  # the pictures are inline data: URIs
    shown = _Chars()
    shown.feed(_dump_doms(browser, tmp_path, [url])[0])
    assert PAYLOAD in "".join(shown.text)  # the regex:<script> feature's window shows the payload, as text
    assert shown.scripts == 3  # the two JSON blocks and the page's own script: none from the text


class _Chars(HTMLParser):
    """The text inside the coloured-character rows (div.chars), and how many <script> elements."""

    def __init__(self):
        super().__init__()
        self.text, self.depth, self.scripts = [], 0, 0

    def handle_starttag(self, tag, attrs):
        self.scripts += tag == "script"
        if tag == "div" and ("class", "chars") in attrs:
            self.depth = 1
        elif tag == "div" and self.depth:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag == "div" and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)
