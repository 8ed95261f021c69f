"""Scoring: exact bits per character against a one-pass hand computation, chunking, per-char
records, and scoring a dataset split."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from charlstm.errors import CharlstmError
from charlstm.score import per_char_records, score_ids, score_text, write_per_char_jsonl

from helpers import TEXT, make_run


pytestmark = pytest.mark.usefixtures("one_thread")


def _by_hand(model, ids: np.ndarray) -> tuple[float, torch.Tensor, torch.Tensor]:
    """log_softmax over the whole text in one pass -> (total bits, bits per position, log-probs)."""
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(ids[:-1])[None])
        logp = torch.log_softmax(logits[0].double(), -1)
        bits = -logp.gather(1, torch.from_numpy(ids[1:])[:, None])[:, 0] / math.log(2)
    return float(bits.sum()), bits, logp


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "peephole"])
@pytest.mark.parametrize("chunk", [1, 7, 2048])
def test_bpc_equals_a_hand_computation(tmp_path, cell, chunk):
    _, m, v = make_run(tmp_path, cell=cell)
    ids = v.encode(TEXT)
    total, _, _ = _by_hand(m, ids)
    r = score_ids(m, ids, chunk=chunk)
    assert r.scored == len(ids) - 1
    assert abs(r.bits - total) < 1e-3
    assert abs(r.bpc - total / (len(ids) - 1)) < 1e-5


def test_score_text_and_tiny_inputs(tmp_path):
    _, m, v = make_run(tmp_path)
    r = score_text(m, v, TEXT)
    assert r.units == "char" and r.scored == len(TEXT) - 1
    assert score_ids(m, v.encode("d")).scored == 0
    assert math.isnan(score_ids(m, v.encode("")).bpc)
    with pytest.raises(CharlstmError, match="not in the model's vocabulary"):
        score_text(m, v, "déf")
    assert score_text(m, v, "déf", unknown="skip").scored == 1  # "df"
    assert score_text(m, v, "déf", unknown="replace").scored == 2  # "d<unk>f"


def test_per_char_records(tmp_path):
    _, m, v = make_run(tmp_path)
    text = "def f(x):\n    return x\n"
    ids = v.encode(text)
    _, bits, logp = _by_hand(m, ids)
    r = score_ids(m, ids, per_char=True, top=5)
    out = tmp_path / "pc.jsonl"
    assert write_per_char_jsonl(out, r, v) == len(text) - 1
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [x["char"] for x in recs] == list(text[1:])
    assert [x["pos"] for x in recs] == list(range(1, len(text)))
    np.testing.assert_allclose([x["bits"] for x in recs], bits.numpy(), atol=1e-3)
    assert abs(sum(x["bits"] for x in recs) / len(recs) - r.bpc) < 1e-3
    for rec, lp in zip(recs, logp):
        assert len(rec["top"]) == 5
        probs = [p for _, p in rec["top"]]
        assert probs == sorted(probs, reverse=True)
        best = int(lp.argmax())
        assert rec["top"][0][0] == v.symbols[best]
        assert abs(rec["top"][0][1] - float(lp.exp().max())) < 1e-3
    assert list(per_char_records(score_ids(m, ids, per_char=True), v))[0].keys() == {"pos", "id", "char", "bits"}


def test_byte_model_scores_bytes(tmp_path):
    _, m, v = make_run(tmp_path, units="byte")
    r = score_text(m, v, "héllo 😀")
    assert r.units == "byte" and r.scored == len("héllo 😀".encode()) - 1
    recs = list(per_char_records(score_ids(m, v.encode("é"), per_char=True, top=2), v))
    assert recs[0]["char"] == "\\xa9" and recs[0]["id"] == 0xA9
