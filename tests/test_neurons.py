"""charlstm.neurons: inputs, finding, and ablation with the explicit cells held to the fused model
and to equivalent weight edits (the slow, obvious twins of an intervention)."""
from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import pytest
import torch

from charlstm.config import ModelConfig
from charlstm.errors import CharlstmError
from charlstm.features import compute
from charlstm.model import CharRNN
from charlstm.neurons import (Intervention, TextInput, ablate, encode_with_boundaries, explicit_losses,
                             find_html, find_units, format_ablation, format_find, fused_losses, load_input,
                             parse_intervention, step_symbols)
from charlstm.ranking import rank_units
from charlstm.vocab import Vocab
from helpers import TEXT, make_run

IDS = np.array([3, 5, 1, 7, 2, 2, 9, 4, 1, 6, 8, 3, 3, 5, 0, 7, 6, 2, 9, 1, 4, 4, 8, 5], dtype=np.int64)


def _model(cell: str, layers: int = 2, hidden: int = 6, seed: int = 0) -> CharRNN:
    torch.manual_seed(seed)
    m = CharRNN(ModelConfig(cell=cell, vocab_size=10, embed_dim=5, hidden_size=hidden, num_layers=layers)).eval()
    with torch.no_grad():  # larger weights than the default init, so the gates really vary
        for p in m.parameters():
            p.mul_(2.0)
    return m


def _vocab() -> Vocab:
    return Vocab.build_char(Counter("abcXYx\n "))


# ----------------------------------------------------------------------------------------------
# Inputs


def test_encode_with_boundaries_maps_literal_eot_to_the_boundary_id():
    v = _vocab()
    ids = encode_with_boundaries(v, "ab<eot>c<eot>")
    assert ids.tolist() == [v.encode("a")[0], v.encode("b")[0], v.eot_id, v.encode("c")[0], v.eot_id]
    assert step_symbols(v, ids) == ["a", "b", "<eot>", "c", "<eot>"]


def test_step_symbols_of_a_byte_vocabulary_are_one_character_each():
    v = Vocab.build_byte(records=True)
    ids = np.array([104, 195, 169, 256])
    assert step_symbols(v, ids) == ["h", "\ufffd", "\ufffd", "<eot>"]


def test_load_input_needs_exactly_one_source_and_some_text(tmp_path):
    v = _vocab()
    with pytest.raises(CharlstmError, match="exactly one of --text, --file or --split"):
        load_input(v)
    with pytest.raises(CharlstmError, match="got --text and --split"):
        load_input(v, text="ab", split="val")
    with pytest.raises(CharlstmError, match="the text is empty"):
        load_input(v, text="")
    with pytest.raises(CharlstmError, match="no such file"):
        load_input(v, file=tmp_path / "missing.txt")
    (tmp_path / "e.txt").write_text("")
    with pytest.raises(CharlstmError, match="the file is empty"):
        load_input(v, file=tmp_path / "e.txt")
    with pytest.raises(CharlstmError, match="not in the model's vocabulary"):
        load_input(v, text="abz")
    inp = load_input(v, text="abzc", unknown="skip")
    assert inp.symbols == ["a", "b", "c"] and inp.source == "--text"


def test_load_input_limit_truncates_and_says_so():
    inp = load_input(_vocab(), text="abc" * 10, limit=7)
    assert len(inp) == 7 and inp.truncated


def test_load_input_reads_a_split_of_the_runs_dataset(tmp_path):
    from charlstm.corpora.synthetic import write_synthetic

    ds = write_synthetic("counting", num=50, seed=1, data_dir=tmp_path / "data")
    cfg = {"dataset": {"name": ds.name, "path": str(ds.path)}}
    inp = load_input(ds.vocab, cfg, split="val", limit=30)
    assert len(inp) == min(30, ds.meta["splits"]["val"]["tokens"])
    assert inp.ids.tolist() == np.asarray(ds.split("val")[:len(inp)]).tolist()
    assert inp.source == "split val of counting"
    with pytest.raises(CharlstmError, match="names no dataset"):
        load_input(ds.vocab, {}, split="val")


# ----------------------------------------------------------------------------------------------
# The explicit run equals the fused model; interventions equal weight edits


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "peephole"])
def test_unablated_explicit_run_equals_the_fused_model(cell):
    m = _model(cell)
    explicit = explicit_losses(m, IDS)[0]
    fused = fused_losses(m, IDS)
    assert explicit.shape == (len(IDS) - 1,)
    np.testing.assert_allclose(explicit, fused, atol=2e-5)


def _edited(m: CharRNN, edit) -> CharRNN:
    m2 = copy.deepcopy(m)
    with torch.no_grad():
        edit(m2)
    return m2


def _check(m: CharRNN, iv: Intervention, edit) -> None:
    got = explicit_losses(m, IDS, [None, iv])
    np.testing.assert_allclose(got[0], fused_losses(m, IDS), atol=2e-5)
    want = fused_losses(_edited(m, edit), IDS)
    np.testing.assert_allclose(got[1], want, atol=2e-5)
    assert np.abs(got[1] - got[0]).max() > 1e-3  # the intervention did something


def test_zeroing_a_hidden_unit_equals_removing_its_outgoing_weights():
    m = _model("lstm")
    u = 3

    def edit(m2):  # h_u of layer 0 is read by layer 0's recurrence and layer 1's input only
        m2.rnn.weight_hh_l0[:, u] = 0
        m2.rnn.weight_ih_l1[:, u] = 0

    _check(m, Intervention(0, "h", u, 0.0), edit)

    def edit_top(m2):  # the top layer's h_u feeds its own recurrence and the head
        m2.rnn.weight_hh_l1[:, u] = 0
        m2.head.weight[:, u] = 0

    _check(m, Intervention(1, "h", u, 0.0), edit_top)


def test_zeroing_a_cell_unit_equals_zeroing_its_hidden_unit():
    m = _model("lstm")
    a = explicit_losses(m, IDS, [Intervention(1, "c", 2, 0.0)])[0]
    b = explicit_losses(m, IDS, [Intervention(1, "h", 2, 0.0)])[0]
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("cell,kind,block", [("lstm", "i", 0), ("lstm", "f", 1), ("lstm", "o", 3),
                                             ("peephole", "i", 0), ("peephole", "f", 1),
                                             ("gru", "r", 0), ("gru", "z", 1)])
def test_closing_a_gate_equals_a_huge_negative_bias(cell, kind, block):
    m = _model(cell)
    H, u, layer = m.cfg.hidden_size, 4, 0

    def edit(m2):  # sigmoid(-1e4) is exactly 0 in float32
        getattr(m2.rnn, f"bias_ih_l{layer}")[block * H + u] = -1e4

    _check(m, Intervention(layer, kind, u, 0.0), edit)


def test_zeroing_the_candidate_equals_zeroing_its_row():
    m = _model("gru")
    H, u = m.cfg.hidden_size, 1

    def edit(m2):  # n = tanh(0) when every input to its pre-activation is zero
        for name in ("weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"):
            getattr(m2.rnn, name)[2 * H + u] = 0

    _check(m, Intervention(1, "n", u, 0.0), edit)


def test_explicit_run_with_a_given_initial_state_continues_the_fused_model():
    m = _model("lstm")
    with torch.no_grad():
        _, state = m(torch.as_tensor(IDS[:7])[None])
    got = explicit_losses(m, IDS[7:], state=state)[0]
    np.testing.assert_allclose(got, fused_losses(m, IDS)[7:], atol=2e-5)


def test_parse_intervention_checks_the_model():
    m = _model("lstm")
    assert parse_intervention("layer1.c:5", m, 0.5) == Intervention(1, "c", 5, 0.5)
    with pytest.raises(CharlstmError, match="out of range"):
        parse_intervention("layer1.c:6", m)
    with pytest.raises(CharlstmError, match="unknown trace 'layer0.z'"):
        parse_intervention("layer0.z:1", m)
    with pytest.raises(CharlstmError, match="unknown trace 'layer2.h'"):
        parse_intervention("layer2.h:1", m)
    with pytest.raises(CharlstmError, match="bad unit"):
        parse_intervention("layer1.c37", m)


# ----------------------------------------------------------------------------------------------
# ablate and find on a run


def _run(tmp_path):
    path, model, vocab = make_run(tmp_path, hidden=8, layers=2)
    return model, vocab, load_input(vocab, text=TEXT * 2)


def test_ablate_groups_predictions_by_the_feature_and_checks_the_fused_model(tmp_path):
    model, vocab, inp = _run(tmp_path)
    res = ablate(model, vocab, inp, "layer1.h:3", "string")
    g = res.groups
    active = compute("string", inp.symbols)[:-1] > 0.5
    assert g["active"].count == active.sum() and g["inactive"].count == (~active).sum()
    assert g["all"].count == len(inp) - 1
    assert abs(g["all"].before - res.fused_bpc) < 1e-5
    # "all" is the count-weighted mean of the two groups
    mix = (g["active"].after * g["active"].count + g["inactive"].after * g["inactive"].count) / g["all"].count
    assert abs(mix - g["all"].after) < 1e-9
    text = format_ablation(res)
    assert "layer1.h:3 (set to 0)" in text and "check: the unablated explicit run" in text


def test_ablate_mean_mode_uses_the_units_mean(tmp_path):
    from charlstm.trace import trace_ids

    model, vocab, inp = _run(tmp_path)
    res = ablate(model, vocab, inp, "layer0.c:1", "comment", mode="mean")
    mean = trace_ids(model, vocab, inp.ids, layers=[0], kinds=["c"]).unit("layer0.c", 1).mean()
    assert res.intervention.value == pytest.approx(float(mean), abs=1e-6)
    with pytest.raises(CharlstmError, match="--value"):
        ablate(model, vocab, inp, "layer0.c:1", "comment", mode="value")
    res = ablate(model, vocab, inp, "layer0.c:1", "comment", mode="value", value=2.5)
    assert res.intervention.value == 2.5


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
