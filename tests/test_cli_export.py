"""`charlstm export` end to end with CliRunner (no browser: the page's behaviour is
tests/test_export_page.py's): what it writes, the page's data and escaping, the size limit, bad input."""
from __future__ import annotations

import base64
import json
import re
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from charlstm.cli import main
from charlstm.errors import CharlstmError
from charlstm.export.page import MAX_PARAMS, check_size, page_data, page_model

from helpers import assert_error_line, make_run


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path / "checkpoints")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _error(result, match: str) -> None:
    """One clear line on stderr, non-zero exit, no traceback."""
    assert_error_line(result, match)


def _data(page_text: str) -> dict:
    m = re.search(r'<script type="application/json" id="model-data">(.*?)</script>', page_text, re.S)
    return json.loads(m.group(1))


def test_export_html_writes_one_self_contained_page(run, tmp_path):
    path, module, vocab = run
    page = tmp_path / "out" / "demo.html"
    r = invoke("export", "tiny", "--html", page)
    assert r.exit_code == 0, r.output
    n = sum(p.numel() for p in module.parameters())
    assert r.stdout == f"wrote {page} ({page.stat().st_size / 1e3:.1f} kB: {n:,} parameters as float16; open it in a browser)\n"
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "the page loads nothing from the network"
    d = _data(text)
    assert d["format"] == "charlstm-page" and d["cell"] == "lstm" and d["params"] == n and d["dtype"] == "float16"
    assert d["symbols"] == vocab.symbols and d["units"] == "char" and d["unk_id"] == 0 and d["eot_id"] == 1
    assert d["reset_id"] is None and d["start_id"] == 1 and d["select"] == "layer1.c:0" and d["title"] == "tiny"
    # the weights are the model's, rounded to float16, little-endian
    w = d["weights"]["rnn.weight_hh_l1"]
    got = np.frombuffer(base64.b64decode(w["data"]), dtype="<f2").reshape(w["shape"])
    assert np.array_equal(got, module.rnn.weight_hh_l1.detach().numpy().astype(np.float16))
    assert set(d["weights"]) == set(module.state_dict())


def test_float32_pages_hold_the_exact_weights_and_byte_models_their_bytes(tmp_path):
    path, module, vocab = make_run(tmp_path / "checkpoints", name="b", units="byte", cell="gru")
    page = tmp_path / "b.html"
    r = invoke("export", "b", "--html", page, "--dtype", "float32", "--unit", "layer0.z:3", "--prime", "é<eot>x")
    assert r.exit_code == 0, r.output
    d = _data(page.read_text(encoding="utf-8"))
    w = d["weights"]["head.weight"]
    assert np.array_equal(np.frombuffer(base64.b64decode(w["data"]), dtype="<f4").reshape(w["shape"]),
                          module.head.weight.detach().numpy())
    assert d["units"] == "byte" and d["symbols"] == [None] * 256 + ["<eot>"] and d["eot_id"] == 256
    assert d["labels"][65] == "A" and d["labels"][200] == "\\xc8"
    assert d["select"] == "layer0.z:3" and d["prime"] == "é<eot>x" and d["kinds"] == ["h", "r", "z", "n"]


def test_page_model_is_the_model_the_float16_page_computes_with(run):
    _, module, _ = run
    pm = page_model(module, "float16")
    for (name, a), b in zip(pm.state_dict().items(), module.state_dict().values()):
        assert a.dtype == torch.float32 and torch.equal(a, b.half().float()), name
    assert not torch.equal(pm.head.weight, module.head.weight)  # it is a copy, rounded
    assert torch.equal(page_model(module, "float32").head.weight, module.head.weight)


def test_a_model_over_the_size_limit_is_refused_naming_the_limit(run, tmp_path):
    r = invoke("export", "tiny", "--html", tmp_path / "x.html", "--max-params", 1000)
    _error(r, "more than a page holds (at most 1,000, --max-params)")
    assert not (tmp_path / "x.html").exists()
    big = torch.nn.Linear(10_000, 1_000)  # 10,001,000 parameters
    with pytest.raises(CharlstmError, match=f"the model has 10,001,000 parameters, more than a page holds "
                                            f"\\(at most {MAX_PARAMS:,}, --max-params\\)"):
        check_size(big)
    assert check_size(torch.nn.Linear(9_999, 1_000)) == 10_000_000


def test_export_bad_input(run, tmp_path):
    r = invoke("export", "tiny")
    assert r.exit_code == 2 and "give --html FILE and/or --onnx FILE" in r.output
    _error(invoke("export", "nope", "--html", tmp_path / "x.html"), "nope")
    _error(invoke("export", "tiny", "--html", tmp_path), "is a folder; give a file name")
    _error(invoke("export", "tiny", "--html", tmp_path / "x.html", "--unit", "layer7.c:0"), "layer 7 does not exist")
    _error(invoke("export", "tiny", "--html", tmp_path / "x.html", "--unit", "layer0.z:0"), "has no kind 'z'")
    _error(invoke("export", "tiny", "--html", tmp_path / "x.html", "--prime", "→"),
           "the page's prime: 1 character(s) not in the model's vocabulary: '→' at 0")
    assert "--unknown" not in invoke("export", "tiny", "--html", tmp_path / "x.html", "--prime", "→").stderr
    with pytest.raises(CharlstmError, match="float16 or float32"):
        page_data(run[1], run[2], dtype="int8")


def test_export_onnx_without_the_optional_packages_says_how_to_get_them(run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    r = invoke("export", "tiny", "--onnx", tmp_path / "m.onnx", "--html", tmp_path / "x.html")
    _error(r, "--onnx needs the optional packages onnx and onnxruntime: pip install 'charlstm[export]'")
    assert not (tmp_path / "x.html").exists()  # said before any work
