"""The model: shapes, carried state equals one pass, explicit cells equal the fused modules."""
import pytest
import torch

from charlstm import cells
from charlstm.config import ModelConfig
from charlstm.model import CharRNN, detach_state


def _model(cell, layers=2):
    torch.manual_seed(0)
    return CharRNN(ModelConfig(cell=cell, vocab_size=11, embed_dim=5, hidden_size=7, num_layers=layers)).eval()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "peephole"])
def test_two_chunks_with_carried_state_equal_one_pass(cell):
    m = _model(cell)
    x = torch.randint(0, 11, (3, 20))
    full, s_full = m(x)
    a, s = m(x[:, :8])
    b, s = m(x[:, 8:], detach_state(s))
    assert full.shape == (3, 20, 11)
    torch.testing.assert_close(torch.cat([a, b], 1), full, atol=1e-6, rtol=0)
    for u, v in zip(s, s_full):
        torch.testing.assert_close(u, v, atol=1e-6, rtol=0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "peephole"])
def test_explicit_cells_match_model(cell):
    m = _model(cell)
    x = torch.randint(0, 11, (2, 9))
    want, _ = m(x)
    h = m.embed(x)
    state = m.init_state(2)
    for layer in range(2):
        h, _, _ = cells.unroll(cell, h, tuple(s[layer] for s in state), m.layer_params(layer))
    torch.testing.assert_close(m.head(h), want, atol=1e-5, rtol=0)


def test_lstm_forget_bias_is_one():
    m = _model("lstm")
    H = 7
    total = m.rnn.bias_ih_l0 + m.rnn.bias_hh_l0
    assert torch.all(total[H:2 * H] == 1.0)


def test_state_shapes():
    assert len(_model("lstm").init_state(4)) == 2
    assert _model("gru").init_state(4)[0].shape == (2, 4, 7)
