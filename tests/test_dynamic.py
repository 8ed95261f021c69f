"""Dynamic evaluation: held to a slow, obvious twin (one symbol at a time, plain per-weight
arithmetic), the weights restored bit for bit, static scoring recovered with step -> 0, and a model
that learns a repetition while reading it."""
from __future__ import annotations

import copy
import math
import random
from collections import Counter

import numpy as np
import pytest
import torch

from charlstm.config import ModelConfig
from charlstm.dynamic import BETA, EPS, FIXED_EPS, DynamicSettings, adapted, dynamic_score_ids, gradient_ms, settings_from
from charlstm.errors import CharlstmError
from charlstm.model import CharRNN
from charlstm.score import score_ids
from charlstm.vocab import Vocab

from helpers import TEXT, make_run


pytestmark = pytest.mark.usefixtures("one_thread")


def naive_dynamic(model, ids, s: DynamicSettings, fixed=None):
    """The rule written out plainly on a copy of the model: one symbol per forward call, the loss
    of a segment summed by hand, then each weight updated on its own -> (bits per scored symbol,
    the copy with its final weights). fixed: mean squared gradients to use instead of running ones."""
    m = copy.deepcopy(model)
    ctx = model.context(list(ids))
    w0 = {n: p.detach().clone() for n, p in m.named_parameters()}
    ms = {n: torch.zeros_like(p) for n, p in m.named_parameters()}
    bits, state, t = [], None, 0
    for a in range(0, len(ctx) - 1, s.segment):
        t += 1
        losses = []
        for j in range(a, min(a + s.segment, len(ctx) - 1)):
            logits, state = m.read(torch.tensor([[ctx[j]]]), state)
            nats = -torch.log_softmax(logits[0, 0].double(), -1)[ctx[j + 1]]
            losses.append(nats)
            bits.append(nats.item() / math.log(2))
        m.zero_grad()
        (sum(losses) / len(losses)).backward()
        state = tuple(x.detach() for x in state)
        with torch.no_grad():
            for n, p in m.named_parameters():
                g = p.grad
                if fixed is None:
                    ms[n] = BETA * ms[n] + (1 - BETA) * g * g
                    rms = (ms[n] / (1 - BETA ** t)).sqrt() + EPS
                else:
                    rms = fixed[n].sqrt() + FIXED_EPS
                p.copy_(p + s.decay * (w0[n] - p) - s.step * g / rms)
    return np.array(bits), m


def _record_model():
    v = Vocab.build_char(Counter("abX"))
    torch.manual_seed(3)
    m = CharRNN(ModelConfig(vocab_size=v.size, embed_dim=8, hidden_size=12, num_layers=2,
                            reset_id=v.eot_id)).eval()
    return m, np.concatenate([v.encode("aaXbb"), [v.eot_id], v.encode("aXbab"), [v.eot_id], v.encode("aaaXbbb")])


@pytest.mark.parametrize("cell", ["lstm", "gru", "peephole"])
@pytest.mark.parametrize("segment", [1, 7])
def test_equals_the_naive_twin(tmp_path, cell, segment):
    _, m, v = make_run(tmp_path, cell=cell)
    ids = v.encode(TEXT)
    s = DynamicSettings(step=3e-2, decay=0.1, segment=segment)
    bits, twin = naive_dynamic(m, ids, s)
    r = dynamic_score_ids(m, ids, s, per_char=True)
    assert r.scored == len(ids) - 1 == len(bits)
    np.testing.assert_allclose(r.surprisal, bits, rtol=1e-4, atol=1e-4)
    assert abs(r.bits - bits.sum()) < 1e-3
    with adapted(m, ids, s) as r2:
        assert r2.bits == pytest.approx(r.bits, abs=1e-9)
        for (n, p), q in zip(m.named_parameters(), twin.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=n)
    # It adapted: the twin's weights moved away from the trained ones.
    assert any(not torch.equal(p, q) for p, q in zip(m.parameters(), twin.parameters()))


def test_fixed_statistics_equal_the_naive_twin(tmp_path):
    _, m, v = make_run(tmp_path)
    ids = v.encode(TEXT)
    ms = gradient_ms(m, v.encode(TEXT * 4), segment=5, windows=3, per_window=4)
    # the statistics by hand: 3 stretches of 21 symbols, 4 segments each, gradients squared and averaged
    want = [torch.zeros_like(p) for p in m.parameters()]
    seq = v.encode(TEXT * 4)
    for a in np.linspace(0, len(seq) - 21, 3).astype(np.int64):
        state = None
        for b in range(0, 20, 5):
            x = torch.from_numpy(seq[a + b:a + b + 6])
            logits, state = m(x[None, :-1], state)
            loss = torch.nn.functional.cross_entropy(logits[0], x[1:])
            for w, g in zip(want, torch.autograd.grad(loss, list(m.parameters()))):
                w += g * g / 12
            state = tuple(h.detach() for h in state)
    for a, b in zip(ms, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-9)
    s = DynamicSettings(step=1e-2, decay=0.05, segment=6)
    bits, _ = naive_dynamic(m, ids, s, fixed=dict(zip([n for n, _ in m.named_parameters()], ms)))
    r = dynamic_score_ids(m, ids, s, per_char=True, ms=ms)
    np.testing.assert_allclose(r.surprisal, bits, rtol=1e-4, atol=1e-4)
    assert abs(r.bpc - dynamic_score_ids(m, ids, s).bpc) > 1e-4  # not the running statistics


def test_records_follow_the_records_rule():
    m, ids = _record_model()
    s = DynamicSettings(step=1e-2, segment=4)
    bits, _ = naive_dynamic(m, ids, s)
    r = dynamic_score_ids(m, ids, s, per_char=True)
    assert r.first == 0 and r.scored == len(ids) == len(bits)  # the first symbol is scored from <eot>
    np.testing.assert_allclose(r.surprisal, bits, rtol=1e-4, atol=1e-4)


def test_the_weights_are_restored_bit_for_bit(tmp_path):
    _, m, v = make_run(tmp_path)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    flags = {n: p.requires_grad for n, p in m.named_parameters()}
    ids = v.encode(TEXT)
    dynamic_score_ids(m, ids, DynamicSettings(step=0.1, segment=3))
    with adapted(m, ids, DynamicSettings(step=0.1, segment=3)):
        assert any(not torch.equal(p, before[n]) for n, p in m.named_parameters())
    with pytest.raises(RuntimeError, match="stop"):
        with adapted(m, ids, DynamicSettings(step=0.1, segment=3)):
            raise RuntimeError("stop")
    for n, p in m.named_parameters():
        assert torch.equal(p, before[n]) and p.requires_grad == flags[n], n
    assert not m.training


def test_tiny_steps_give_the_static_score(tmp_path):
    _, m, v = make_run(tmp_path)
    ids = v.encode(TEXT * 3)
    static = score_ids(m, ids, per_char=True, top=3)
    r = dynamic_score_ids(m, ids, DynamicSettings(step=1e-12, segment=5), per_char=True, top=3)
    assert r.scored == static.scored and r.first == static.first
    np.testing.assert_allclose(r.surprisal, static.surprisal, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(r.top_probs, static.top_probs, atol=1e-4)
    assert r.surprisal.sum() == pytest.approx(r.bits, rel=1e-5)


def test_dynamic_learns_a_repetition_a_static_model_cannot(tmp_path):
    random.seed(0)
    unit = "".join(random.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(40))
    text = unit * 25
    _, m, v = make_run(tmp_path, text=text, hidden=32, layers=1)
    ids = v.encode(text)
    static = score_ids(m, ids).bpc
    dyn = dynamic_score_ids(m, ids, DynamicSettings(step=3e-2, segment=20), per_char=True)
    assert static > 4.0  # random weights: about log2(27) bits
    assert dyn.bpc < 0.5 * static
    # It is the repetition that is learnt: the last repeats cost far less than the first.
    assert dyn.surprisal[-200:].mean() < 0.25 * dyn.surprisal[:40].mean()


@pytest.mark.parametrize("bad,match", [
    (dict(step=0), "step size must be a positive"),
    (dict(step=-1e-3), "step size must be a positive"),
    (dict(step=float("nan")), "step size must be a positive"),
    (dict(step=float("inf")), "step size must be a positive"),
    (dict(decay=-0.1), "decay must be between 0 and 1"),
    (dict(decay=1.5), "decay must be between 0 and 1"),
    (dict(segment=0), "segment must be at least 1"),
    (dict(segment=2.5), "segment must be at least 1"),
])
def test_settings_are_checked(bad, match):
    with pytest.raises(CharlstmError, match=match):
        DynamicSettings(**bad).validate()
    with pytest.raises(CharlstmError, match=match):
        settings_from(bad)


def test_settings_from():
    assert settings_from(False) is None and settings_from(None) is None
    assert settings_from(True) == DynamicSettings()
    assert settings_from({"step": 1e-2}) == DynamicSettings(step=1e-2)
    with pytest.raises(CharlstmError, match="unknown dynamic evaluation setting"):
        settings_from({"lr": 1e-2})
