"""charlstm.dictionary: the TopK autoencoder against its slow twins, the sparse training step against
dense autograd, the stored format read back without charlstm, exact resume, fidelity (a perfect
dictionary splices in for free; a poor one costs bits), steering against an explicit twin, the
page's data (effects, labels, contexts) and the [T, F] activations for the atlas."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from charlstm import cells
from charlstm.api import load
from charlstm.dictionary import Dictionary, FeatureClamp, Splice, fidelity, store, text_activations
from charlstm.dictionary.dashboard import PageOptions, build, effects
from charlstm.dictionary.labels import library, scores
from charlstm.dictionary.step import sparse_step, sparse_step_slow
from charlstm.dictionary.train import TrainOptions, train_dictionary
from charlstm.errors import CharlstmError
from charlstm.sample.stepper import Stepper
from helpers import make_data_run

pytestmark = pytest.mark.usefixtures("one_thread")


def _random_dictionary(H=6, F=10, k=3, code="relu", seed=0, layer=0, kind="c", name="d") -> Dictionary:
    d = Dictionary(H, F, k, code, layer, kind, name=name, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        d.W_enc.copy_(torch.randn(F, H, generator=g))
        d.b_enc.copy_(torch.randn(F, generator=g) * 0.3)
        d.b_dec.copy_(torch.randn(H, generator=g) * 0.1)
        d.center.copy_(torch.randn(H, generator=g))
        d.scale.fill_(1.7)
    return d.eval()


@pytest.mark.parametrize("code", ["relu", "signed"])
def test_encode_decode_match_the_definition(code):
    d = _random_dictionary(code=code)
    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(5)) * 2
    with torch.no_grad():
        dense = d.dense(x).double()
        slow = d.encode_slow(x)
        assert torch.allclose(dense, slow, atol=1e-5)
        assert ((slow != 0).sum(1) <= 3).all() and ((slow != 0).sum(1) == 3).any()
        if code == "relu":
            assert (slow >= 0).all()
        else:
            assert (slow < 0).any()
        want = d.center.double() + d.scale.double() * (slow @ d.W_dec.double() + d.b_dec.double())
        assert torch.allclose(d.reconstruct(x).double(), want, atol=1e-5)
    assert np.allclose(d.activations(x.numpy()), slow.numpy(), atol=1e-5)


@pytest.mark.parametrize("code, with_aux", [("relu", False), ("signed", False), ("relu", True), ("signed", True)])
def test_the_sparse_training_step_has_the_autograd_gradient(code, with_aux):
    d = _random_dictionary(code=code)
    u = torch.randn(32, 6, generator=torch.Generator().manual_seed(2))
    dead = torch.tensor([i % 3 == 0 for i in range(10)]) if with_aux else None
    loss, main, idx = sparse_step(d, u, dead=dead, aux=0.5)
    fast = {n: p.grad.clone() for n, p in d.named_parameters()}
    loss2, main2, idx2 = sparse_step_slow(d, u, dead=dead, aux=0.5)
    assert torch.equal(idx, idx2) and torch.allclose(main, main2, atol=1e-6) and torch.allclose(loss, loss2, atol=1e-6)
    assert (loss > main) == with_aux
    for n, p in d.named_parameters():
        assert torch.allclose(fast[n], p.grad, atol=1e-5), n
        assert p.grad.abs().sum() > 0, n


@pytest.fixture
def drun(tmp_path):
    path, model, vocab = make_data_run(tmp_path / "checkpoints", hidden=8, layers=2)
    return path


def _train(path, **kw):
    m = load(path)
    opts = TrainOptions(**{"name": "t", "chars": 6000, "batch": 200, "streams": 8, "buffer": 800, "warmup": 4,
                           "fidelity_chars": 400, **kw}).resolved(m.module.cfg)
    return m, opts


def test_training_writes_the_format_and_numpy_reads_it(drun):
    m, opts = _train(drun, size=12, k=3)
    assert (opts.layer, opts.kind) == (1, "h")  # defaults: the top layer's hidden state
    res = train_dictionary(m.module, m.split("train"), drun, opts)
    assert res.status == "done" and res.states >= 6000 and not (res.folder / store.LAST).exists()
    where = drun / "dictionaries" / "t"
    info = json.loads((where / "dictionary.json").read_text())
    assert info["format"] == "charlstm-dictionary" and info["size"] == 12 and info["k"] == 3
    assert info["model_sha256"] == store.model_sha256(m.module) and info["train"]["status"] == "done"
    # the documented formula, in numpy only
    t = load_file(str(where / "dictionary.safetensors"))
    x = np.random.default_rng(0).normal(size=(7, 8)).astype(np.float32)
    u = (x - t["center"]) / t["scale"]
    pre = (u - t["b_dec"]) @ t["W_enc"].T + t["b_enc"]
    top = np.argsort(-pre, 1)[:, :3]
    z = np.zeros_like(pre)
    np.put_along_axis(z, top, np.maximum(np.take_along_axis(pre, top, 1), 0), 1)
    xhat = t["center"] + t["scale"] * (z @ t["W_dec"] + t["b_dec"])
    d, _ = store.load(drun, "t", model=m.module)
    assert np.allclose(d.reconstruct(torch.from_numpy(x)).detach().numpy(), xhat, atol=1e-5)
    assert np.allclose(np.linalg.norm(t["W_dec"], axis=1), 1, atol=1e-5)


def test_a_resumed_dictionary_equals_an_uninterrupted_one(drun):
    m, opts = _train(drun, size=12, k=2, save_every=0)
    whole = train_dictionary(m.module, m.split("train"), drun, opts).dictionary.tensors()
    stopped = train_dictionary(m.module, m.split("train"), drun, opts, force=True, should_stop=lambda step: step == 7)
    assert stopped.status == "interrupted" and stopped.steps == 7
    assert (drun / "dictionaries" / "t" / "last.safetensors").exists()
    assert json.loads((drun / "dictionaries" / "t" / "dictionary.json").read_text())["train"]["status"] == "interrupted"
    with pytest.raises(CharlstmError, match="already exists"):
        train_dictionary(m.module, m.split("train"), drun, opts)
    resumed = train_dictionary(m.module, m.split("train"), drun, opts, resume=True)
    assert resumed.status == "done" and resumed.steps > 7
    for k, v in whole.items():
        assert torch.equal(v, resumed.dictionary.tensors()[k]), k
    with pytest.raises(CharlstmError, match="nothing to resume|no last.safetensors"):
        train_dictionary(m.module, m.split("train"), drun, opts, resume=True)


def test_a_dictionary_is_refused_for_other_weights(drun):
    m, opts = _train(drun, size=12, k=2)
    train_dictionary(m.module, m.split("train"), drun, opts)
    with torch.no_grad():
        m.module.head.bias.add_(1.0)
    with pytest.raises(CharlstmError, match="trained on other weights"):
        store.load(drun, "t", model=m.module)
    with pytest.raises(CharlstmError, match="no dictionary 'nope'; it has t"):
        store.load(drun, "nope")
    (drun / "dictionaries" / "t" / "dictionary.safetensors").write_bytes(b"garbage")
    with pytest.raises(CharlstmError, match="truncated or corrupted"):
        store.load(drun, "t")


def _identity(model, layer=1, kind="c") -> Dictionary:
    """A dictionary that reconstructs every state exactly: signed code, k = H, W = identity."""
    H = model.cfg.hidden_size
    d = Dictionary(H, H, H, "signed", layer, kind, name="id")
    with torch.no_grad():
        d.W_enc.copy_(torch.eye(H))
        d.W_dec.copy_(torch.eye(H))
    return d.eval()


def test_fidelity_of_a_perfect_and_of_a_poor_dictionary(drun):
    m = load(drun)
    val = m.split("val")
    f = fidelity.measure(m.module, _identity(m.module), val, chars=200, streams=4, warmup=0)
    assert f["variance_explained"] == pytest.approx(1.0, abs=1e-6) and f["dead"] == 0
    assert f["spliced_bpc"] == pytest.approx(f["bpc"], abs=1e-5) and f["l0"] <= 8
    # the clean run is the model's own: the same pieces read with model.read give the same bits
    offsets, n = fidelity.pieces(np.asarray(val[:200], dtype=np.int64), 4, m.module.reset_id)
    bits, scored = 0.0, 0
    for o in offsets:
        x = torch.from_numpy(np.asarray(val[o:o + n], dtype=np.int64))[None]
        with torch.no_grad():
            logits, _ = m.module.read(x)
        lp = torch.log_softmax(logits[0, :-1], -1)
        bits -= float(lp.gather(1, x[0, 1:, None]).sum()) / np.log(2)
        scored += n - 1
    assert f["bpc"] == pytest.approx(bits / scored, abs=1e-4) and f["scored"] == scored
    warm = fidelity.measure(m.module, _identity(m.module), val, chars=200, streams=4, warmup=5)
    assert warm["warmup"] == 5 and warm["scored"] == scored - 5 * len(offsets)
    poor = _random_dictionary(H=8, F=4, k=1, layer=1, kind="c", seed=3)
    g = fidelity.measure(m.module, poor, val, chars=200, streams=4)
    assert g["variance_explained"] < 0.9 and g["spliced_bpc"] != pytest.approx(g["bpc"], abs=1e-3)


def _explicit_clamped(model, ids, d, feature, value):
    """The slow twin of steering: cells.step one step at a time, the feature's edit applied to the
    layer's c by the documented formula, the reset rule of records, logits from the head."""
    cfg = model.cfg
    H, L = cfg.hidden_size, cfg.num_layers
    h = [torch.zeros(1, H) for _ in range(L)]
    c = [torch.zeros(1, H) for _ in range(L)]
    direction = d.scale * d.W_dec[feature]
    out = []
    for i in ids:
        if i == model.reset_id:
            h = [torch.zeros(1, H) for _ in range(L)]
            c = [torch.zeros(1, H) for _ in range(L)]
        x = model.embed(torch.tensor([i]))
        for layer in range(L):
            r = cells.step(cfg.cell, x, (h[layer], c[layer]), model.layer_params(layer))
            cn = r["c"]
            if layer == d.layer:
                a = d.dense(cn)[0, feature]
                cn = cn + (value - a) * direction
            c[layer] = cn
            h[layer] = r["o"] * torch.tanh(cn)
            x = h[layer]
        out.append(model.head(x)[0])
    return torch.stack(out)


def test_steering_holds_the_feature_as_documented(drun):
    m = load(drun)
    d = _random_dictionary(H=8, F=10, k=3, layer=1, kind="c", seed=4)
    ids = [int(i) for i in m.split("val")[:40]]
    with torch.no_grad():
        want = _explicit_clamped(m.module, ids, d, 2, 1.5)
        st = Stepper(m.module, 1, clamp=[FeatureClamp(d, 2, 1.5)])
        got = torch.stack([st.step(torch.tensor([i])).clone()[0] for i in ids])
        assert torch.allclose(got, want, atol=1e-4)
        plain = Stepper(m.module, 1)
        free = torch.stack([plain.step(torch.tensor([i])).clone()[0] for i in ids])
        assert not torch.allclose(got, free, atol=1e-3)
    with pytest.raises(CharlstmError, match="features 0..9"):
        FeatureClamp(d, 10, 1.0)


def test_the_splice_is_the_reconstruction_in_place_of_the_state(drun):
    m = load(drun)
    ident = _identity(m.module, layer=0, kind="h")
    with torch.no_grad():
        a, b = Stepper(m.module, 2), Stepper(m.module, 2, clamp=[Splice(ident)])
        for i in m.split("val")[:30]:
            ids = torch.tensor([int(i), int(i)])
            assert torch.allclose(a.step(ids), b.step(ids), atol=1e-5)


def test_effects_of_a_top_layer_h_feature_are_its_direction_through_the_head(tmp_path):
    path, model, vocab = make_data_run(tmp_path / "checkpoints", name="one", hidden=8, layers=1)
    m = load(path)
    d = _random_dictionary(H=8, F=10, k=3, layer=0, kind="h", seed=7)
    ids = np.asarray(m.split("val")[:60], dtype=np.int64)
    acts = text_activations(m.module, m.vocab, d, ids)
    t = int(np.argmax(np.abs(acts[1:, 4]))) + 1
    eff = effects(m.module, d, ids, [(4, t)])[0]
    want = acts[t, 4] * (m.module.head.weight @ d.directions()[4]).detach().numpy()
    assert np.allclose(eff, want, atol=1e-4)


def test_the_page_data_has_every_feature_with_contexts_labels_and_effects(drun):
    m = load(drun)
    d = _identity(m.module, layer=1, kind="c")
    ids = m.split("val")[:150]
    data = build(m.module, m.vocab, d, ids, source="test", opts=PageOptions(contexts=3, before=5, after=2))
    feats = data["features"]
    assert len(feats) == 8 and data["chars"] == 150 and data["format"] == "charlstm-dictionary-page"
    f = next(f for f in feats if f["n"])
    assert len(f["contexts"]) <= 3 and sum(f["hist"]) == f["n"] and f["promote"] and f["match"]
    assert all(c["s"] <= c["p"] <= c["s"] + 7 for c in f["contexts"])


def test_labels_name_a_feature_that_is_a_library_feature():
    text = "x = 1  # one\ny = 'two'  # three\n" * 8
    symbols = list(text)
    cands = library(symbols, chars=4)
    comment = next(c for c in cands if c.name == "comment").values
    T = len(symbols)
    vals = np.stack([comment, np.linspace(0, 1, T)], 1).astype(np.float32)  # feature 0 = comment, 1 = a ramp
    idx = np.tile(np.array([[0, 1]], dtype=np.int32), (T, 1))
    s = scores(vals, idx, 2, cands)
    names = [c.name for c in cands]
    assert s[0, names.index("comment")] == pytest.approx(1.0)
    assert s[1, names.index("comment")] < 0.9


@pytest.mark.slow
def test_a_dictionary_of_the_counting_task_finds_the_count(tmp_path):
    """The synthetic acceptance test (docs/experiments.md, "Dictionaries"): the counting model of
    `charlstm experiment counting`, then a small signed dictionary over its cell state; one feature
    carries the count #a - #b (|r| >= 0.9 on fresh records), and splicing it in costs almost nothing."""
    import dataclasses

    from charlstm.corpora.synthetic import generate
    from charlstm.dictionary import session
    from charlstm.experiments import counting
    from charlstm.experiments.common import record_ids, train_task
    from charlstm.inputs import step_symbols
    from charlstm.neurons import compute, rank_units
    from charlstm.neurons.sparse import rank_sparse
    from charlstm.trace import trace_ids

    out = tmp_path / "counting"
    model, vocab, _, _ = train_task("counting", out, 0, counting.MODEL, dataclasses.replace(counting.TRAIN, seed=0),
                                    counting.NUM, log=lambda s: None)
    opts = TrainOptions(name="count", size=4, k=4, code="signed", chars=1_000_000, lr=3e-3, batch=256, streams=32,
                        fidelity_chars=20_000)
    res, fid = session.train(out / "run", opts)
    d = res.dictionary
    ids, _ = record_ids(vocab, generate("counting", 200, seed=4242))
    states = trace_ids(model, vocab, ids, kinds=["c"]).arrays["layer0.c"]
    count = compute("count:a-b", step_symbols(vocab, ids))
    vals, idx = d.codes(states)
    best = rank_sparse(d.key, vals, idx, d.size, count, top=1)[0]
    assert best.score >= 0.9, best
    assert fid["variance_explained"] >= 0.99 and fid["delta_bpc"] <= 0.02, fid
    assert rank_units({"layer0.c": states}, count, top=1)[0].score >= 0.9  # the unit the experiment finds


def test_ctrl_c_stops_after_the_step_and_saves(drun):
    import os
    import signal

    m, opts = _train(drun, size=12, k=2, save_every=0)
    before = signal.getsignal(signal.SIGINT)  # the default handler, or SIG_IGN in a background job

    def interrupt(step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends; the handler asks for a stop
        return False

    res = train_dictionary(m.module, m.split("train"), drun, opts, should_stop=interrupt)
    assert res.status == "interrupted" and res.steps == 4  # the step under way when the signal came finished
    assert (drun / "dictionaries" / "t" / "last.safetensors").exists()
    assert signal.getsignal(signal.SIGINT) is before  # put back


def test_a_time_budget_ends_training(drun):
    m, opts = _train(drun, size=12, k=2, chars=None, time_budget=0.5)
    res = train_dictionary(m.module, m.split("train"), drun, opts)
    assert res.status == "done" and res.seconds >= 0.5 and res.states < 10_000_000
