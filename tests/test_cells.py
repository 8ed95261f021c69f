"""Traces are the explicit cells (charlstm.cells) run on the fused weights: they must equal a
step-by-step `cells.unroll`, the fused modules' outputs, and the cell equations themselves."""
import numpy as np
import pytest
import torch

from charlstm import cells
from charlstm.config import ModelConfig
from charlstm.model import CharRNN
from charlstm.trace import trace_ids
from charlstm.units import SATURATION_GATES as GATES

CELLS = ["lstm", "peephole", "gru", "rnn"]


def _model(cell, layers=2, hidden=9, vocab=13):
    torch.manual_seed(1)
    m = CharRNN(ModelConfig(cell=cell, vocab_size=vocab, embed_dim=5, hidden_size=hidden, num_layers=layers)).eval()
    # random biases everywhere (the forget-bias init would hide gate/bias mix-ups)
    with torch.no_grad():
        for n, p in m.rnn.named_parameters():
            if n.startswith("bias"):
                p.uniform_(-1, 1)
    return m


def _vocab(size):
    from charlstm.vocab import Vocab

    return Vocab.build_char({chr(97 + i): 1 for i in range(size - 2)})


def _unrolled(m, ids):
    """Reference: every kind of every layer by cells.unroll one step at a time, and the logits."""
    x = m.embed(torch.as_tensor(ids, dtype=torch.long)[None])
    state = m.init_state(1)
    ref = {}
    for layer in range(m.cfg.num_layers):
        x, _, rec = cells.unroll(m.cfg.cell, x, tuple(s[layer] for s in state), m.layer_params(layer),
                                 record=cells.KINDS[m.cfg.cell])
        for k, v in rec.items():
            ref[f"layer{layer}.{k}"] = v[0].detach().numpy()
    return ref, m.head(x)[0]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("chunk", [7, 4096])
def test_trace_equals_explicit_unroll_and_fused_outputs(cell, chunk):
    m = _model(cell)
    ids = np.random.default_rng(0).integers(0, 13, 40)
    tr = trace_ids(m, _vocab(13), ids, chunk=chunk)
    with torch.no_grad():
        ref, logits = _unrolled(m, ids)
        fused_logits, _ = m(torch.as_tensor(ids)[None])
    assert set(tr.arrays) == set(ref)
    for k, v in ref.items():
        assert tr.arrays[k].shape == (40, 9)
        np.testing.assert_allclose(tr.arrays[k], v, atol=1e-5, rtol=0, err_msg=k)
    # the explicit cells equal the fused module, and the trace's top layer gives the model's logits
    torch.testing.assert_close(logits, fused_logits[0], atol=1e-5, rtol=0)
    h_top = torch.from_numpy(tr.arrays["layer1.h"])
    torch.testing.assert_close(m.head(h_top).detach(), fused_logits[0], atol=1e-5, rtol=0)
    probs = torch.softmax(fused_logits[0], -1).detach().numpy()
    np.testing.assert_allclose(tr.next_prob[:-1], probs[np.arange(39), ids[1:]], atol=1e-6)
    assert np.isnan(tr.next_prob[-1])
    np.testing.assert_array_equal(tr.top_ids[:, 0], probs.argmax(-1))
    np.testing.assert_allclose(tr.top_probs[:, 0], probs.max(-1), atol=1e-6)
    assert np.all(np.diff(tr.top_probs, axis=1) <= 0)


@pytest.mark.parametrize("cell", ["lstm", "peephole"])
def test_lstm_equations(cell):
    m = _model(cell)
    tr = trace_ids(m, _vocab(13), np.arange(13).repeat(2), chunk=5)
    for layer in range(2):
        a = {k: tr.arrays[f"layer{layer}.{k}"] for k in "hcifgo"}
        c_prev = np.vstack([np.zeros((1, 9), np.float32), a["c"][:-1]])
        np.testing.assert_allclose(a["c"], a["f"] * c_prev + a["i"] * a["g"], atol=1e-5)
        np.testing.assert_allclose(a["h"], a["o"] * np.tanh(a["c"]), atol=1e-5)
        for g in "ifo":
            assert np.all((a[g] >= 0) & (a[g] <= 1))
        assert np.all(np.abs(a["g"]) <= 1)


def test_lstm_gates_from_weights():
    """Gate order i, f, g, o of PyTorch's layout, checked from the raw weights at step 0."""
    m = _model("lstm", layers=1)
    ids = np.array([3, 4])
    tr = trace_ids(m, _vocab(13), ids)
    p = m.layer_params(0)
    x0 = m.embed(torch.tensor([3]))[0]
    pre = (p["weight_ih"] @ x0 + p["bias_ih"] + p["bias_hh"]).detach().numpy()  # h_{-1} = 0
    H = 9
    sig = lambda v: 1 / (1 + np.exp(-v))
    np.testing.assert_allclose(tr.arrays["layer0.i"][0], sig(pre[:H]), atol=1e-6)
    np.testing.assert_allclose(tr.arrays["layer0.f"][0], sig(pre[H:2 * H]), atol=1e-6)
    np.testing.assert_allclose(tr.arrays["layer0.g"][0], np.tanh(pre[2 * H:3 * H]), atol=1e-6)
    np.testing.assert_allclose(tr.arrays["layer0.o"][0], sig(pre[3 * H:]), atol=1e-6)


def test_gru_equations():
    m = _model("gru")
    tr = trace_ids(m, _vocab(13), np.arange(13).repeat(2), chunk=6)
    for layer in range(2):
        h, r, z, n = (tr.arrays[f"layer{layer}.{k}"] for k in "hrzn")
        h_prev = np.vstack([np.zeros((1, 9), np.float32), h[:-1]])
        np.testing.assert_allclose(h, (1 - z) * n + z * h_prev, atol=1e-5)
        assert np.all((r >= 0) & (r <= 1)) and np.all((z >= 0) & (z <= 1))


def test_rnn_equation():
    m = _model("rnn", layers=1)
    ids = np.arange(13)
    tr = trace_ids(m, _vocab(13), ids)
    p = {k: v.detach().numpy() for k, v in m.layer_params(0).items()}
    x = m.embed(torch.as_tensor(ids)).detach().numpy()
    h = np.zeros(9, np.float32)
    for t in range(13):
        h = np.tanh(p["weight_ih"] @ x[t] + p["bias_ih"] + p["weight_hh"] @ h + p["bias_hh"])
        np.testing.assert_allclose(tr.arrays["layer0.h"][t], h, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_layer_and_kind_selection(cell):
    m = _model(cell, layers=3)
    kinds = list(cells.KINDS[cell])[-1:]
    tr = trace_ids(m, _vocab(13), np.arange(13), layers=[2], kinds=kinds, dtype=np.float16)
    assert list(tr.arrays) == [f"layer2.{kinds[0]}"]
    assert tr.arrays[f"layer2.{kinds[0]}"].dtype == np.float16
    full = trace_ids(m, _vocab(13), np.arange(13))
    np.testing.assert_allclose(tr.arrays[f"layer2.{kinds[0]}"], full.arrays[f"layer2.{kinds[0]}"], atol=2e-3)
    assert GATES[cell] == tuple(k for k in cells.KINDS[cell] if k in "ifozr")


def test_model_mode_restored():
    m = _model("lstm")
    m.train()
    trace_ids(m, _vocab(13), np.arange(5))
    assert m.training


@pytest.mark.parametrize("cell", CELLS)
def test_hidden_only_skips_gates_but_agrees(cell):
    m = _model(cell)
    ids = np.random.default_rng(2).integers(0, 13, 30)
    h_only = trace_ids(m, _vocab(13), ids, kinds="h", chunk=8)
    full = trace_ids(m, _vocab(13), ids, chunk=8)
    assert list(h_only.arrays) == ["layer0.h", "layer1.h"]
    for k in h_only.arrays:
        np.testing.assert_allclose(h_only.arrays[k], full.arrays[k], atol=1e-6)
    np.testing.assert_array_equal(h_only.top_ids, full.top_ids)
