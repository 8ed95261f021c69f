"""charlstm.neurons.ablation: the explicit cells held to the fused model and to equivalent weight edits
(the slow, obvious twins of an intervention), and `ablate` on a run."""
from __future__ import annotations

import copy
import numpy as np
import pytest
import torch

from charlstm.config import ModelConfig
from charlstm.errors import CharlstmError
from charlstm.inputs import read_input
from charlstm.model import CharRNN
from charlstm.neurons import ablate, compute, explicit_losses, format_ablation, fused_losses
from charlstm.units import Clamp
from helpers import TEXT, make_run

IDS = np.array([3, 5, 1, 7, 2, 2, 9, 4, 1, 6, 8, 3, 3, 5, 0, 7, 6, 2, 9, 1, 4, 4, 8, 5], dtype=np.int64)


def _model(cell: str, layers: int = 2, hidden: int = 6, seed: int = 0) -> CharRNN:
    torch.manual_seed(seed)
    m = CharRNN(ModelConfig(cell=cell, vocab_size=10, embed_dim=5, hidden_size=hidden, num_layers=layers)).eval()
    with torch.no_grad():  # larger weights than the default init, so the gates really vary
        for p in m.parameters():
            p.mul_(2.0)
    return m



# ----------------------------------------------------------------------------------------------
# The explicit run equals the fused model; interventions equal weight edits


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "peephole"])
def test_unablated_explicit_run_equals_the_fused_model(cell):
    m = _model(cell)
    explicit = explicit_losses(m, IDS)[0]
    fused = fused_losses(m, IDS)
    assert explicit.shape == (len(IDS) - 1,)
    np.testing.assert_allclose(explicit, fused, atol=2e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru", "peephole"])
def test_many_interventions_in_one_batch_equal_each_alone(cell):
    # Interventions of the same kind share one forced step per layer; each row must still see only
    # its own unit forced to its own value.
    m = _model(cell)
    kinds = ("h", "c", "i", "f", "g", "o") if cell != "gru" else ("h", "r", "z", "n")
    ivs = [Clamp(layer, kind, (layer + k) % 6, 0.3 * k - 0.5) for layer in (0, 1) for k, kind in enumerate(kinds)]
    ivs += [Clamp(0, kinds[0], 5, 0.0), Clamp(0, kinds[0], 4, 0.7)]  # several of one kind and layer
    together = explicit_losses(m, IDS, [None, *ivs])
    for k, iv in enumerate(ivs, 1):
        np.testing.assert_allclose(together[k], explicit_losses(m, IDS, [iv])[0], atol=1e-6)
    np.testing.assert_allclose(together[0], fused_losses(m, IDS), atol=2e-5)


def test_clamps_held_together_equal_their_weight_edits():
    m = _model("lstm")
    units = (1, 3, 4)
    got = explicit_losses(m, IDS, [[Clamp(1, "h", u, 0.0) for u in units] + [Clamp(0, "c", 2, 0.0)]])[0]

    def edit(m2):  # top-layer h units feed their own recurrence and the head; layer 0's c:2 = its h:2
        for u in units:
            m2.rnn.weight_hh_l1[:, u] = 0
            m2.head.weight[:, u] = 0
        m2.rnn.weight_hh_l0[:, 2] = 0
        m2.rnn.weight_ih_l1[:, 2] = 0

    np.testing.assert_allclose(got, fused_losses(_edited(m, edit), IDS), atol=2e-5)
    with pytest.raises(CharlstmError, match="one kind per layer"):
        explicit_losses(m, IDS, [[Clamp(0, "h", 1, 0.0), Clamp(0, "c", 2, 0.0)]])


def _edited(m: CharRNN, edit) -> CharRNN:
    m2 = copy.deepcopy(m)
    with torch.no_grad():
        edit(m2)
    return m2


def _check(m: CharRNN, iv: Clamp, edit) -> None:
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

    _check(m, Clamp(0, "h", u, 0.0), edit)

    def edit_top(m2):  # the top layer's h_u feeds its own recurrence and the head
        m2.rnn.weight_hh_l1[:, u] = 0
        m2.head.weight[:, u] = 0

    _check(m, Clamp(1, "h", u, 0.0), edit_top)


def test_zeroing_a_cell_unit_equals_zeroing_its_hidden_unit():
    m = _model("lstm")
    a = explicit_losses(m, IDS, [Clamp(1, "c", 2, 0.0)])[0]
    b = explicit_losses(m, IDS, [Clamp(1, "h", 2, 0.0)])[0]
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("cell,kind,block", [("lstm", "i", 0), ("lstm", "f", 1), ("lstm", "o", 3),
                                             ("peephole", "i", 0), ("peephole", "f", 1),
                                             ("gru", "r", 0), ("gru", "z", 1)])
def test_closing_a_gate_equals_a_huge_negative_bias(cell, kind, block):
    m = _model(cell)
    H, u, layer = m.cfg.hidden_size, 4, 0

    def edit(m2):  # sigmoid(-1e4) is exactly 0 in float32
        getattr(m2.rnn, f"bias_ih_l{layer}")[block * H + u] = -1e4

    _check(m, Clamp(layer, kind, u, 0.0), edit)


def test_zeroing_the_candidate_equals_zeroing_its_row():
    m = _model("gru")
    H, u = m.cfg.hidden_size, 1

    def edit(m2):  # n = tanh(0) when every input to its pre-activation is zero
        for name in ("weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"):
            getattr(m2.rnn, name)[2 * H + u] = 0

    _check(m, Clamp(1, "n", u, 0.0), edit)


def test_explicit_run_with_a_given_initial_state_continues_the_fused_model():
    m = _model("lstm")
    with torch.no_grad():
        _, state = m(torch.as_tensor(IDS[:7])[None])
    got = explicit_losses(m, IDS[7:], state=state)[0]
    np.testing.assert_allclose(got, fused_losses(m, IDS)[7:], atol=2e-5)


# ----------------------------------------------------------------------------------------------
# ablate on a run


def _run(tmp_path):
    path, model, vocab = make_run(tmp_path, hidden=8, layers=2)
    return model, vocab, read_input(vocab, text=TEXT * 2)




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
