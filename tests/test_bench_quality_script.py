"""scripts/bench_quality.py's GPT anchor: its sliding-window scoring against one forward pass per
target (the slow, obvious twin), and a few steps of its training."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F


SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_quality.py"


@pytest.fixture(scope="module")
def bq():
    spec = importlib.util.spec_from_file_location("bench_quality", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


pytestmark = pytest.mark.usefixtures("one_thread")


def _net(bq, V=11, block=8):
    torch.manual_seed(0)
    return bq.GPTNet(V, {**bq.GPT, "n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": block}).eval()


def _by_hand(net, ids, context):
    """Each target t >= 1 from its own forward pass over the `context(t)` characters before it."""
    bits = 0.0
    with torch.no_grad():
        for t in range(1, len(ids)):
            a = t - context(t)
            logits = net(torch.tensor(ids[a:t])[None])
            bits -= F.log_softmax(logits[0, -1].double(), -1)[ids[t]].item() / math.log(2)
    return bits


@pytest.mark.parametrize("stride", [1, 3, 8])
def test_sliding_window_scores_each_target_once_from_the_right_context(bq, stride):
    net = _net(bq)
    ids = np.random.default_rng(0).integers(0, 11, 50)
    B = net.block_size
    # the first window scores targets 1..B from all they have; a later window's new targets are its last
    # `stride`, so target t in window ending at hi sees B - (hi - t) characters
    ends, done = {}, 0
    while done < len(ids) - 1:
        hi = min(done + (B if done == 0 else stride), len(ids) - 1)
        for t in range(done + 1, hi + 1):
            ends[t] = hi
        done = hi
    want = _by_hand(net, ids, lambda t: t if t <= B else B - (ends[t] - t))
    bits, n = bq.gpt_bits(net, ids, stride, batch=4)
    assert n == len(ids) - 1 and bits == pytest.approx(want, rel=1e-5)
    if stride == 1:  # every target from min(t, B) characters: the full window
        assert bits == pytest.approx(_by_hand(net, ids, lambda t: min(t, B)), rel=1e-5)


def test_weights_are_tied_and_initialised_as_nanogpt(bq):
    net = bq.GPTNet(65, bq.GPT)
    assert net.wte.weight is net.lm_head.weight
    assert sum(p.numel() for p in net.parameters()) == 65 * 128 + 64 * 128 + 4 * (12 * 128 * 128 + 2 * 128) + 128
    proj = [p for n, p in net.named_parameters() if n.endswith("c_proj.weight")]
    assert len(proj) == 8 and abs(float(torch.cat([p.detach().flatten() for p in proj]).std()) - 0.02 / math.sqrt(8)) < 1e-3
    assert all(not isinstance(m, torch.nn.Linear) or m.bias is None for m in net.modules())
