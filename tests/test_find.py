"""charlstm.neurons.find: ranking every unit of a run against a feature, as a table and a viewer page."""
from __future__ import annotations

import pytest

from charlstm.errors import CharlstmError
from charlstm.inputs import read_input
from charlstm.neurons import compute, find_html, find_units, format_find, rank_units
from helpers import TEXT, make_run


def _run(tmp_path):
    path, model, vocab = make_run(tmp_path, hidden=8, layers=2)
    return model, vocab, read_input(vocab, text=TEXT * 2)




def test_find_units_ranks_like_rank_units_and_formats(tmp_path):
    model, vocab, inp = _run(tmp_path)
    res = find_units(model, vocab, inp, "indentation", top=4)
    from charlstm.trace import trace_ids

    tr = trace_ids(model, vocab, inp.ids)
    want = rank_units(tr.arrays, compute("indentation", inp.symbols), top=4)
    assert [u.name for u in res.ranking] == [u.name for u in want]
    assert res.kind == "continuous"
    table = format_find(res)
    assert "feature indentation (continuous, ranked by |Pearson r|)" in table
    assert res.ranking[0].name in table
    binary = find_units(model, vocab, inp, "string", top=3, kinds="h,c", probe=True, max_units=2)
    assert all(u.key.endswith((".h", ".c")) for u in binary.ranking)
    assert binary.probe is not None and len(binary.probe.units) <= 2
    assert "L1 probe (logistic" in format_find(binary) and "mean on" in format_find(binary)
    assert binary.best(("c",)).key.endswith(".c")


def test_find_html_is_the_viewer_with_the_ranking_as_scores(tmp_path):
    import json
    import re

    model, vocab, inp = _run(tmp_path)
    res = find_units(model, vocab, inp, "string", top=3)
    page = find_html(res, tmp_path / "out" / "find.html").read_text()
    blob = re.search(r'<script type="application/json"[^>]*>(.*?)</script>', page, re.S).group(1)
    data = json.loads(blob)
    (name, rows), = data["scores"].items()
    assert name.startswith("string")
    assert [f"{k}:{u}" for k, u, _ in rows] == [u.name for u in res.ranking]
    assert data["select"] == res.ranking[0].name
    # only the layers and kinds of the ranked units are embedded, over at most max_chars characters
    assert set(data["kinds"]) == {u.key.split(".")[1] for u in res.ranking}
    small = json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>',
                                 find_html(res, tmp_path / "s.html", max_chars=10).read_text(), re.S).group(1))
    assert small["n"] == 10 and small["total"] == len(inp)


def test_a_constant_feature_is_a_clear_error(tmp_path):
    model, vocab, inp = _run(tmp_path)
    with pytest.raises(CharlstmError, match="constant"):
        find_units(model, vocab, inp, "hashtag")
