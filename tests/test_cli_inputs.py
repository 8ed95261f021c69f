"""Every command and the Python API read the same text as the same ids (charlstm.inputs): `trace`,
`neurons find`, `eval` and `charlstm.load(...).trace/score/encode`, with a literal <eot>, non-ASCII
text, a char model and a byte model. (Before there was one home for this, `trace` read "<eot>" as
five characters while `neurons find` read it as the boundary.)"""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

import charlstm
from charlstm.cli import main
from helpers import make_run

TEXT = "añ b<eot>é\nab"


pytestmark = pytest.mark.usefixtures("one_thread")


def _invoke(*args):
    r = CliRunner().invoke(main, [*map(str, args)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r


@pytest.mark.parametrize("units", ["char", "byte"])
def test_every_command_reads_the_same_ids(tmp_path, units):
    path, model, vocab = make_run(tmp_path / "checkpoints", name=f"m{units}", text="añ bé\n", units=units)
    assert vocab.eot_id is not None
    head, tail = TEXT.split("<eot>")
    want = np.concatenate([vocab.encode(head), [vocab.eot_id], vocab.encode(tail)]).tolist()
    f = tmp_path / "t.txt"
    f.write_text(TEXT, encoding="utf-8")

    _invoke("trace", path, "--text", TEXT, "-o", tmp_path / "a.npz")
    _invoke("trace", path, "--file", f, "-o", tmp_path / "b.npz")
    from_trace = [np.load(tmp_path / n)["ids"].tolist() for n in ("a.npz", "b.npz")]

    _invoke("eval", path, f, "--per-char", tmp_path / "pc.jsonl")
    lines = [json.loads(ln) for ln in (tmp_path / "pc.jsonl").read_text(encoding="utf-8").splitlines()]
    from_eval = [want[0]] + [rec["id"] for rec in lines]  # every id after the first is scored

    _invoke("neurons", "find", path, "--feature", "char:a", "--text", TEXT, "--html", tmp_path / "f.html")
    page = (tmp_path / "f.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', page, re.S).group(1))
    from_find = np.frombuffer(base64.b64decode(data["ids"]), dtype="<u2").tolist()

    m = charlstm.load(path)
    api = [m.encode(TEXT).tolist(), m.trace(TEXT).ids.tolist(), m.evaluate(TEXT, per_char=True).ids.tolist()]
    for got in [*from_trace, from_eval, from_find, *api]:
        assert got == want
    # and the same score: eval's number is the API's
    r = _invoke("eval", path, f, "--json")
    assert json.loads(r.stdout)["bpc"] == pytest.approx(m.score(TEXT), abs=1e-6)
