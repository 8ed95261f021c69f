"""build_atlas on real models: a hand-built counter (a unit whose cell is #a - #b, exactly what the
counting task's model learns) is found, confirmed, beats chance and the untrained models, and its
ablation equals `neurons ablate`'s; an untrained model's findings are never called learned."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from charlstm.checkpoint import save_model
from charlstm.config import ModelConfig, TrainConfig
from charlstm.corpora.synthetic import write_synthetic
from charlstm.inputs import read_input
from charlstm.model import CharRNN
from charlstm.neurons import ablate
from charlstm.neurons.atlas import build_atlas
from charlstm.neurons.atlas.report import format_summary
from charlstm.runs import BEST, write_config
from helpers import TEXT, make_run

pytestmark = pytest.mark.usefixtures("one_thread")

CODE = (TEXT + "x = [1, (2, 3)]  # a list\nif x:\n    y = {'k': \"v\"}  # done\n") * 6


def counter_run(tmp_path, hidden: int = 6):
    """A counting dataset on disk and a record model whose layer0.c:0 counts #a - #b (input gate
    open on a and b, shut otherwise; forget gate open; candidate +1 on a, -1 on b); the other units
    random. Returns (run folder, model, dataset)."""
    ds = write_synthetic("counting", num=3000, seed=0, data_dir=tmp_path / "data")
    v = ds.vocab
    torch.manual_seed(0)
    cfg = ModelConfig(cell="lstm", vocab_size=v.size, embed_dim=v.size, hidden_size=hidden, num_layers=1,
                      reset_id=v.eot_id)
    m = CharRNN(cfg).eval()
    a, b = v.encode("a")[0], v.encode("b")[0]
    H = hidden
    with torch.no_grad():
        m.embed.weight.copy_(torch.eye(v.size))
        w, bias = m.rnn.weight_ih_l0, m.rnn.bias_ih_l0
        for gate in range(4):
            w[gate * H].zero_()
            m.rnn.weight_hh_l0[gate * H].zero_()
            bias[gate * H] = 0.0
            m.rnn.bias_hh_l0[gate * H] = 0.0
        w[0, :] = -8.0
        w[0, a] = w[0, b] = 8.0       # i: open on a and b
        bias[H] = 8.0                  # f: open
        w[2 * H, a], w[2 * H, b] = 6.0, -6.0  # g: +1 on a, -1 on b
    path = tmp_path / "checkpoints" / "counter"
    write_config(path, cfg, TrainConfig(), {"name": ds.name, "path": str(ds.path), "meta": ds.meta}, v.to_json())
    save_model(path / BEST, m, {"step": 0, "val_bpc": None})
    return path, m, ds


def hand_dictionary(hidden: int = 6):
    """A signed dictionary of the counter's cell state with every feature always active (k = size):
    feature 1 reads the counting unit c:0, features 0 and 2 read the random units c:1 and c:2."""
    from charlstm.dictionary import Dictionary

    d = Dictionary(hidden, 3, 3, code="signed", layer=0, kind="c", name="hand")
    with torch.no_grad():
        rows = torch.eye(hidden)[[1, 0, 2]]
        d.W_enc.copy_(rows)
        d.W_dec.copy_(rows)
    return d.eval()


def test_the_atlas_ranks_dictionary_features_like_units(tmp_path):
    path, m, ds = counter_run(tmp_path)
    cfg = json.loads((path / "config.json").read_text())
    inp = read_input(ds.vocab, cfg, split="val", limit=1500)
    atlas = build_atlas(m, ds.vocab, inp, cfg, run="counter", dictionaries=[hand_dictionary()], controls=99,
                        untrained=0, probe=False, ngram=0, top=0)
    f = atlas.feature("count:a-b")
    [d] = f.dictionary
    assert d["unit"] == "dict/hand:1" and d["dictionary"] == "hand" and d["kind"] == "c" and d["size"] == 3
    # the feature is the counting unit itself, so it scores as the unit does, on both parts
    assert d["score"] == pytest.approx(f.best.score, abs=1e-6) and d["heldout"] == pytest.approx(f.best.heldout, abs=1e-6)
    assert d["holds_up"] and d["chance_p"] == pytest.approx(1 / 100) and d["found"]
    assert atlas.settings["dictionaries"] == ["hand"] and "dictionaries" in atlas.seconds
    assert json.loads(json.dumps(atlas.to_json()))["features"][0]["dictionary"][0]["unit"] == "dict/hand:1"
    row = next(ln for ln in format_summary(atlas).splitlines() if ln.startswith("count:a-b") and "dict/hand:1" in ln)
    assert row.rstrip().endswith("found") and "layer0.c:0" in row


def test_the_atlas_finds_a_counter_and_checks_it(tmp_path):
    path, m, ds = counter_run(tmp_path)
    cfg = json.loads((path / "config.json").read_text())
    inp = read_input(ds.vocab, cfg, split="val", limit=1500)
    atlas = build_atlas(m, ds.vocab, inp, cfg, run="counter", controls=99, untrained=2, ngram=3)
    f = atlas.feature("count:a-b")
    assert [x.name for x in atlas.features] == ["count:a-b"] and f.kind == "continuous"
    assert f.best.unit == "layer0.c:0" and f.best.raw > 0.99 and f.best.heldout > 0.99 and f.best.holds_up
    assert f.p == pytest.approx(1 / 100) and f.chance["beaten"] == 1.0
    assert len(f.untrained) == 2 and f.untrained_best < 0.99 and f.learned and f.found
    # the gate table of the counting cell: open on a and b, shut on X
    by_char = f.gates["by_char"]
    assert f.gates["unit"] == "layer0.c:0" and by_char["X"]["i"] < 0.01 < 0.99 < by_char["a"]["i"]
    # the best unit's zero ablation equals `neurons ablate` on the same text
    ab = f.ablation("layer0.c:0", "zero")
    ref = ablate(m, ds.vocab, inp, "layer0.c:0", "count:a-b", mode="zero")
    for g in ("active", "inactive", "all"):
        assert ab.effects[g].count == ref.groups[g].count
        assert ab.effects[g].before == pytest.approx(ref.groups[g].before, abs=1e-6)  # float32 sums in other batches
        assert ab.effects[g].after == pytest.approx(ref.groups[g].after, abs=1e-6)  # float32 sums in other batches
    mean = f.ablation("layer0.c:0", "mean")
    assert mean.value == pytest.approx(float(atlas.trace.unit("layer0.c", 0).mean()), abs=1e-5)
    assert ab.effects["key"].count == int(np.sum(np.array(inp.symbols[1:]) == "b"))  # where the count falls
    # the error analysis ran on the training split; JSON holds every number
    assert atlas.errors["train_characters"] == ds.meta["splits"]["train"]["tokens"]
    assert [o["n"] for o in atlas.errors["orders"]] == [1, 2, 3]
    data = json.loads(json.dumps(atlas.to_json()))
    assert data["features"][0]["found"] is True and data["features"][0]["units"][0]["unit"] == "layer0.c:0"
    assert data["gate_saturation"]["layers"]["0"]["f"]["units"] == 6
    text = format_summary(atlas)
    assert "count:a-b" in text and "found" in text and "'X' i 0.00" in text


def test_an_untrained_model_is_never_called_learned(tmp_path):
    path, m, vocab = make_run(tmp_path, text=CODE, hidden=12, layers=2, seed=3)
    cfg = json.loads((path / "config.json").read_text())
    cfg["dataset"]["meta"] = {"source": {"kind": "code"}}
    inp = read_input(vocab, cfg, text=CODE)
    atlas = build_atlas(m, vocab, inp, cfg, controls=99, untrained=3, top=1, ngram=2)
    names = [f.name for f in atlas.features]
    assert {"string", "comment", "line-position", "indentation"} <= set(names)
    assert not any(f.learned for f in atlas.features) and not any(f.found for f in atlas.features)
    assert all(f.verdict().endswith("not learned") for f in atlas.features)
    # a reservoir's units do track simple features above chance: the learning control is what catches it
    assert any(f.p <= 0.01 and f.best.holds_up for f in atlas.features)
    assert atlas.errors is None and "n-gram error analysis skipped" in atlas.notes[0]
    skipped = dict(atlas.skipped)
    assert set(skipped) | set(names) == set(t for t in ["string", "comment", "bracket-depth", "paren-depth",
                                                         "square-depth", "curly-depth", "indentation", "line-position",
                                                         "digit", "whitespace"])


def test_without_untrained_models_nothing_is_learned(tmp_path):
    path, m, ds = counter_run(tmp_path)
    cfg = json.loads((path / "config.json").read_text())
    inp = read_input(ds.vocab, cfg, text="aaXbb<eot>aaaaXbbbb<eot>aXb<eot>" * 8)
    atlas = build_atlas(m, ds.vocab, inp, cfg, controls=99, untrained=0, probe=False, ngram=0, top=1,
                        features=["char:X"], ablate_chars=100)
    f = atlas.feature("count:a-b")
    assert f.best.unit == "layer0.c:0" and not f.learned and f.verdict() == "learning not checked"
    assert atlas.feature("char:X").why == "asked for with --feature" and f.probe is None
    assert [a.mode for a in f.ablations][:2] == ["zero", "mean"] and f.ablations[0].effects["all"].count == 99
    assert atlas.settings["ablated_characters"] == 100
