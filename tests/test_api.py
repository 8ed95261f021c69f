"""The Python API: charlstm.load(run) -> Model with generate / score / evaluate / trace."""
from __future__ import annotations


import pytest
import torch

import charlstm
from charlstm import sample as S
from charlstm.api import Model
from charlstm.checkpoint import save_tensors
from charlstm.config import DynamicSettings
from charlstm.runs import LAST
from charlstm.runtime import resolve_device
from charlstm.errors import CharlstmError
from charlstm.score import score_text

from helpers import TEXT, make_run


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def run(tmp_path):
    path, module, vocab = make_run(tmp_path / "checkpoints")  # CHARLSTM_CHECKPOINTS points here
    return path, module, vocab


def test_load_by_name_or_path(run):
    path, module, vocab = run
    for where in ("tiny", path, str(path)):
        m = charlstm.load(where)
        assert isinstance(m, Model)
        assert m.vocab.symbols == vocab.symbols
        assert m.config["model"]["cell"] == "lstm"
        assert m.device == torch.device("cpu") and not m.module.training
        for a, b in zip(m.module.state_dict().values(), module.state_dict().values()):
            assert torch.equal(a, b)
    assert "lstm 2x16" in repr(m)


def test_generate_returns_text_or_a_list(run):
    m = charlstm.load("tiny")
    a = m.generate("def ", length=30, seed=4, stop_at_eot=False)
    assert isinstance(a, str) and a == m.generate("def ", length=30, seed=4, stop_at_eot=False)
    many = m.generate("def ", length=30, seed=4, num_samples=3, stop_at_eot=False)
    assert isinstance(many, list) and len(many) == 3
    assert m.generate("def ", length=20, greedy=True, num_samples=2, stop_at_eot=False) == \
        [m.generate("def ", length=20, greedy=True, stop_at_eot=False)] * 2
    pieces = []
    text = m.generate("def ", length=25, seed=1, stop_at_eot=False, on_text=pieces.append)
    assert "".join(pieces) == text
    g = m.generate_full("", length=10, seed=9)
    assert g.seed == 9 and g.samples[0].stop_reason in ("length", "eot")


def test_generate_checks_its_options(run):
    m = charlstm.load("tiny")
    with pytest.raises(CharlstmError, match="not in the model's vocabulary: 'é' at 1"):
        m.generate("déf")
    assert isinstance(m.generate("déf", unknown="skip", length=5), str)
    assert isinstance(m.generate("déf", unknown="replace", length=5), str)
    with pytest.raises(CharlstmError, match="temperature"):
        m.generate("d", temperature=0)
    with pytest.raises(CharlstmError, match="policy"):
        m.encode("x", unknown="drop")


def test_clamp_forms(run):
    m = charlstm.load("tiny")
    o = dict(length=30, greedy=True, stop_at_eot=False)
    a = m.generate("def ", clamp="layer1.h:3=5", **o)
    assert a == m.generate("def ", clamp=["layer1.h:3=5"], **o)
    assert a == m.generate("def ", clamp={"layer1.h:3": 5.0}, **o)
    assert a == m.generate("def ", clamp=[S.Clamp(1, "h", 3, 5.0)], **o)
    with pytest.raises(CharlstmError, match="unit 16 does not exist"):
        m.generate("def ", clamp=S.Clamp(1, "h", 16, 5.0))


def test_score_and_evaluate(run):
    path, module, vocab = run
    m = charlstm.load("tiny")
    bpc = m.score(TEXT)
    assert isinstance(bpc, float)
    assert abs(bpc - score_text(module, vocab, TEXT).bpc) < 1e-9
    r = m.evaluate(TEXT, per_char=True, top=3)
    assert r.bpc == bpc and r.top_ids.shape == (len(TEXT) - 1, 3)
    with pytest.raises(CharlstmError, match="exactly one"):
        m.evaluate(TEXT, split="val")
    with pytest.raises(CharlstmError, match="dataset"):
        m.evaluate(split="val")


def test_trace_delegates_to_charlstm_trace(run, monkeypatch):
    import charlstm.api as api

    calls = []
    monkeypatch.setattr(api, "trace_ids", lambda model, vocab, ids, **kw: calls.append((model, vocab, ids, kw)) or "TRACE")
    m = charlstm.load("tiny")
    assert m.trace("def f", layers=[1]) == "TRACE"
    (model, vocab, ids, kw), = calls
    assert (model, vocab, kw) == (m.module, m.vocab, {"layers": [1]})
    assert ids.tolist() == m.encode("def f").tolist()


def test_last_checkpoint(run):
    path, module, vocab = run
    other = {f"model.{k}": v + 1.0 for k, v in module.state_dict().items()}
    save_tensors(path / LAST, other, {"step": 5})
    best, last = charlstm.load("tiny"), charlstm.load("tiny", checkpoint="last")
    assert torch.equal(last.module.head.bias, module.head.bias + 1.0)
    assert torch.equal(best.module.head.bias, module.head.bias)
    assert last.config["checkpoint_meta"]["step"] == 5


def test_bad_runs_and_weights(run):
    path, _, _ = run
    with pytest.raises(CharlstmError, match="no run named 'nope'"):
        charlstm.load("nope")
    w = path / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-3] ^= 0x55
    w.write_bytes(bytes(data))
    with pytest.raises(CharlstmError, match="checksum"):
        charlstm.load("tiny")
    w.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(CharlstmError, match="truncated or corrupted"):
        charlstm.load("tiny")


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(CharlstmError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(CharlstmError, match="not available"):
            resolve_device("cuda")


def test_trace_with_the_real_tracer(run):
    m = charlstm.load("tiny")
    t = m.trace("def f(x):")
    assert t["layer1.c"].shape == (len("def f(x):"), 16)


def test_dynamic_score_and_evaluate(run):
    path, module, vocab = run
    m = charlstm.load("tiny")
    before = [p.detach().clone() for p in m.module.parameters()]
    text = "abc" * 200
    static = m.score(text)
    dyn = m.score(text, dynamic={"step": 3e-2, "segment": 20})
    assert dyn < 0.5 * static  # it learns the repetition while reading
    r = m.evaluate(text, dynamic=True, per_char=True)
    assert r.dynamic == DynamicSettings().as_dict() and r.as_dict()["dynamic"] == r.dynamic
    assert r.scored == len(text) - 1 == len(r.surprisal)
    assert all(torch.equal(p, q) for p, q in zip(m.module.parameters(), before))
    with pytest.raises(CharlstmError, match="step size"):
        m.score(text, dynamic={"step": 0})


def test_evaluate_with_the_compressor_baseline(run):
    import lzma

    m = charlstm.load("tiny")
    r = m.evaluate(TEXT, baseline=True)
    assert r.baseline.scored == r.scored
    assert r.baseline.compressed == len(lzma.compress(TEXT[1:].encode(), preset=9 | lzma.PRESET_EXTREME))
    assert r.as_dict()["baseline"]["bpc"] == r.baseline.bpc
    assert m.evaluate(TEXT).baseline is None


def test_adapted_and_generate_with_adapt(run):
    m = charlstm.load("tiny")
    before = [p.detach().clone() for p in m.module.parameters()]
    plain = m.generate("abc", length=30, greedy=True)
    settings = {"step": 3e-2, "segment": 20}
    adapted = m.generate("abc", length=30, greedy=True, adapt="abc" * 300, adapt_settings=settings)
    assert adapted == "abc" * 10 and plain != adapted
    with m.adapted("abc" * 300, dynamic=settings) as r:
        assert r.scored == 899 and r.bpc < 1.5
        assert m.generate("abc", length=9, greedy=True) == "abcabcabc"
    assert all(torch.equal(p, q) for p, q in zip(m.module.parameters(), before))
    assert m.generate("abc", length=30, greedy=True) == plain
    with pytest.raises(CharlstmError, match="adapting is dynamic evaluation"):
        with m.adapted("abc", dynamic=False):
            pass
