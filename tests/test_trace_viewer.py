"""The HTML viewer page (without a browser: see test_viewer_browser.py), the terminal view and the
gate statistics and plot."""
import base64
import json
import re

import numpy as np
import pytest

from charlstm.errors import CharlstmError
from charlstm.trace import GateStats, trace_text
from charlstm.units import gate_saturation
from charlstm.viz.colors import normalise, rgb
from charlstm.viz.html import render_html
from charlstm.viz.terminal import render_ansi
from helpers import TEXT, make_run

PAYLOAD = "<script>alert(1)</script> </script> <!-- & <img src=x onerror=alert(2)> \u2028"


@pytest.fixture
def traced(tmp_path):
    text = TEXT + PAYLOAD
    _, model, vocab = make_run(tmp_path, text=text)
    return trace_text(model, vocab, text)


def _data(page):
    m = re.search(r'<script type="application/json" id="trace-data">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def test_page_is_self_contained_and_escaped(traced):
    page = render_html(traced, title="a </title><script>alert(3)</script>")
    assert page.count("<script") == 3  # error hook, data, code: nothing from the text
    assert "alert(1)" not in page.split('id="trace-data">')[0]
    for bad in ("src=\"http", "src='http", "href=\"http", "@import", "//cdn"):
        assert bad not in page
    assert "&lt;/title&gt;&lt;script&gt;alert(3)" in page
    block = page.split('id="trace-data">')[1].split("</script>")[0]
    assert "<" not in block and ">" not in block and "&" not in block
    d = _data(page)
    shown = "".join(d["symbols"][i] for i in np.frombuffer(base64.b64decode(d["ids"]), "<u2"))
    assert shown == (TEXT + PAYLOAD).replace("\u2028", "\\u2028")  # invisible characters are spelled out
    assert "innerHTML" not in page and "document.write" not in page


def test_embedded_values_roundtrip(traced):
    d = _data(render_html(traced))
    n, H = d["n"], d["hidden"]
    assert n == len(traced) and d["total"] == len(traced)
    for k, a in d["arrays"].items():
        q = np.frombuffer(base64.b64decode(a["q"]), np.int8).reshape(n, H)
        scale = np.array(a["scale"], np.float32)
        np.testing.assert_allclose(q * scale, traced.arrays[k], atol=float(scale.max()) / 2 + 1e-6)
    top = np.frombuffer(base64.b64decode(d["top_ids"]), "<u2").reshape(n, 5)
    np.testing.assert_array_equal(top, traced.top_ids)
    assert set(d["gates"]) == {"0", "1"} and list(d["gates"]["0"]) == ["i", "f", "o"]
    # the overview ranks by variance, best first
    k = "layer1.c"
    var = np.var(traced.arrays[k], 0)
    assert d["rank"]["variance"][k][0][0] == int(np.argmax(var))
    assert d["select"] == f"layer1.c:{int(np.argmax(var))}"


def test_caps_and_notes(traced):
    d = _data(render_html(traced, max_chars=10))
    assert d["n"] == 10 and "first 10 of" in d["notes"][0]
    d = _data(render_html(traced, max_values=12 * 16 * 5))  # 12 arrays x 16 units x 5 characters
    assert d["n"] == 5 and "--kinds" in d["notes"][0]


def test_feature_scores(traced):
    page = render_html(traced, scores={"quotes <b>": [("layer1.c", 3, 0.9), ("layer0.h", 5, 0.5)]})
    d = _data(page)
    assert d["scores"] == {"quotes <b>": [["layer1.c", 3, 0.9], ["layer0.h", 5, 0.5]]}
    assert d["select"] == "layer1.c:3"
    with pytest.raises(CharlstmError, match="unit 99"):
        render_html(traced, scores={"x": [("layer1.c", 99, 1.0)]})
    with pytest.raises(CharlstmError, match="rows must be"):
        render_html(traced, scores={"x": [("c", 1, 1.0)]})


def test_colour_map():
    assert rgb(0) == (255, 255, 255)
    assert rgb(1) == (5, 113, 176) and rgb(-1) == (202, 0, 32)
    np.testing.assert_allclose(normalise(np.array([0, 0.5, 1]), "f"), [-1, 0, 1])
    np.testing.assert_allclose(normalise(np.array([-4, 2]), "c"), [-1, 0.5])
    np.testing.assert_allclose(normalise(np.array([-3, 0.2]), "h"), [-1, 0.2])


def test_terminal_view(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = render_ansi(list("ab\n\x1b"), np.array([-1, 1, 0, 0.5]), "h", title="layer0.h:1")
    assert "\x1b[48;2;202;0;32ma" in out.replace("\x1b[38;2;255;255;255m", "")
    assert "\\x1b" in out  # the ESC from the text is shown, not sent to the terminal
    assert out.count("\x1b[48;2") == 4
    monkeypatch.setenv("NO_COLOR", "1")
    plain = render_ansi(list("ab\n"), np.array([-1, 1, 0]), "h", title="layer0.h:1")
    assert "\x1b" not in plain and "2\t\\n\t0.0000" in plain


def test_gate_saturation_counts(traced):
    v = np.array([[0.05, 0.5], [0.95, 0.5], [0.05, 0.99], [0.5, 0.0]])
    lo, hi = gate_saturation(v)
    np.testing.assert_allclose(lo, [0.5, 0.25])
    np.testing.assert_allclose(hi, [0.25, 0.25])
    s = GateStats.from_trace(traced)
    fr = s.fractions()
    lo, hi = gate_saturation(traced.arrays["layer1.f"])
    np.testing.assert_allclose(fr[1]["f"][0], lo)
    assert "layer gate" in s.table()


def test_gate_plot(traced, tmp_path):
    pytest.importorskip("matplotlib")
    from charlstm.viz.plots import gate_plot

    p = gate_plot(GateStats.from_trace(traced), tmp_path / "x" / "g.png")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
