"""Generation: the fast carried-state path against its slow twins, sampling filters, stopping,
byte streaming and clamping. Tiny random-weight models; no training."""
from __future__ import annotations

from collections import Counter

import pytest
import torch

from charlstm import cells
from charlstm import sample as S
from charlstm.config import ModelConfig
from charlstm.errors import CharlstmError
from charlstm.model import CharRNN
from charlstm.sample import (Clamp, RowText, SampleOptions, Stepper, filter_top_k, filter_top_p, generate,
                             naive_generate, read_prime, sample_next)
from charlstm.vocab import Vocab

from helpers import make_run

CELLS = ["lstm", "gru", "rnn", "peephole"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(cell: str, layers: int = 2, V: int = 11, H: int = 7, seed: int = 0) -> CharRNN:
    torch.manual_seed(seed)
    return CharRNN(ModelConfig(cell=cell, vocab_size=V, embed_dim=5, hidden_size=H, num_layers=layers)).eval()


def _run(tmp_path, cell="lstm", **kw):
    _, model, vocab = make_run(tmp_path, cell=cell, **kw)
    return model, vocab


# ----------------------------------------------------------------------------- the step
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 3])
def test_stepper_equals_model(cell, layers):
    m = _model(cell, layers)
    x = torch.randint(0, 11, (3, 12))
    with torch.inference_mode():
        want, want_state = m(x)
        st = Stepper(m, 3)
        for t in range(12):
            got = st.step(x[:, t])
            torch.testing.assert_close(got, want[:, t], atol=1e-5, rtol=0)
        for a, b in zip(st.get_state(), want_state):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_generic_lstm_step_equals_the_plain_one():
    """LSTM steps run a specialised loop unless clamping; the general loop must agree with it."""
    m = _model("lstm", 3)
    x = torch.randint(0, 11, (2, 9))
    with torch.inference_mode():
        want, _ = m(x)
        st = Stepper(m, 2)
        st.plain = None
        for t in range(9):
            got = st.step(x[:, t])
    torch.testing.assert_close(got, want[:, -1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell", CELLS)
def test_stepper_continues_from_read_prime(cell):
    m = _model(cell)
    x = torch.randint(0, 11, (1, 20))
    with torch.inference_mode():
        want, _ = m(x)
        st = Stepper(m, 4)  # one prime, four rows
        st.set_state(read_prime(m, x[0, :15].numpy(), chunk=4))
        for t in range(15, 20):
            got = st.step(x[0, t].expand(4))
        torch.testing.assert_close(got, want[0, -1].expand(4, -1), atol=1e-5, rtol=0)


def test_stepper_temperature_and_unk_mask():
    m = _model("lstm")
    x = torch.tensor([3, 1, 4])
    with torch.inference_mode():
        want, _ = m(x[None])
        st = Stepper(m, 1, temperature=0.5, unk_id=0)
        for t in range(3):
            got = st.step(x[t:t + 1])
    ref = S.temper(want[:, -1], 0.5, 0)
    assert got[0, 0] == float("-inf")
    torch.testing.assert_close(got[:, 1:], ref[:, 1:], atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- filters and draws
def test_top_k_keeps_the_k_most_likely():
    logits = torch.log(torch.tensor([[0.1, 0.4, 0.2, 0.3], [0.25, 0.05, 0.3, 0.4]]))
    out = filter_top_k(logits.clone(), 2)
    assert torch.isfinite(out).tolist() == [[False, True, False, True], [False, False, True, True]]
    assert torch.equal(filter_top_k(logits.clone(), 4), logits)
    assert torch.equal(filter_top_k(logits.clone(), 10), logits)  # k > V: no-op


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    logits = torch.log(probs)
    keep = lambda p: torch.isfinite(filter_top_p(logits.clone(), p))[0].tolist()  # noqa: E731
    assert keep(0.4) == [True, False, False, False]
    assert keep(0.7) == [True, True, False, False]
    assert keep(0.85) == [True, True, True, False]
    assert keep(0.99) == [True, True, True, True]
    assert keep(1.0) == [True, True, True, True]
    assert keep(1e-6) == [True, False, False, False]  # the most likely always stays
    # order does not matter: a shuffled row keeps the same symbols
    perm = torch.tensor([2, 0, 3, 1])
    assert torch.isfinite(filter_top_p(logits[:, perm].clone(), 0.7))[0].tolist() == [False, True, False, True]


def test_exponential_race_draws_from_the_distribution():
    p = torch.tensor([0.5, 0.3, 0.15, 0.05, 0.0])
    n = 40000
    logits = torch.log(p).expand(n, -1).clone()
    g = torch.Generator().manual_seed(0)
    ids = sample_next(logits, generator=g)
    freq = torch.bincount(ids, minlength=5).double() / n
    assert freq[4] == 0
    torch.testing.assert_close(freq, p.double(), atol=0.01, rtol=0)


def test_filtered_draws_and_greedy():
    p = torch.tensor([0.5, 0.3, 0.15, 0.05])
    n = 20000
    g = torch.Generator().manual_seed(1)
    ids = sample_next(torch.log(p).expand(n, -1).clone(), top_p=0.7, generator=g)
    freq = torch.bincount(ids, minlength=4).double() / n
    torch.testing.assert_close(freq, torch.tensor([0.625, 0.375, 0, 0]).double(), atol=0.015, rtol=0)
    ids = sample_next(torch.log(p).expand(n, -1).clone(), top_k=1, generator=g)
    assert ids.eq(0).all()
    assert sample_next(torch.log(p)[None].clone(), greedy=True).tolist() == [0]


# ----------------------------------------------------------------------------- generation
def test_same_seed_same_text(tmp_path):
    m, v = _run(tmp_path)
    o = dict(length=60, temperature=1.3, stop_at_eot=False)
    a = generate(m, v, v.encode("def "), SampleOptions(seed=7, **o)).samples[0]
    b = generate(m, v, v.encode("def "), SampleOptions(seed=7, **o)).samples[0]
    c = generate(m, v, v.encode("def "), SampleOptions(seed=8, **o)).samples[0]
    assert a.text == b.text and len(a.ids) == 60
    assert a.text != c.text


def test_unseeded_generation_reports_its_seed(tmp_path):
    m, v = _run(tmp_path)
    g = generate(m, v, [], SampleOptions(length=30, stop_at_eot=False))
    again = generate(m, v, [], SampleOptions(length=30, stop_at_eot=False, seed=g.seed))
    assert g.samples[0].text == again.samples[0].text


def _greedy_by_hand(model, vocab, prime: str, length: int) -> str:
    """Argmax of the full model over the whole context, step by step (no shared code)."""
    ids = list(vocab.encode(prime))
    out = []
    with torch.no_grad():
        for _ in range(length):
            logits, _ = model(torch.tensor([ids]))
            last = logits[0, -1].clone()
            last[vocab.unk_id] = float("-inf")
            nxt = int(last.argmax())
            if nxt == vocab.eot_id:
                break
            out.append(nxt)
            ids.append(nxt)
    return vocab.decode(out)


@pytest.mark.parametrize("cell", CELLS)
def test_greedy_equals_argmax_of_the_slow_path(tmp_path, cell):
    m, v = _run(tmp_path, cell=cell, hidden=24)
    got = generate(m, v, v.encode("class "), SampleOptions(length=40, greedy=True)).samples[0].text
    assert got == _greedy_by_hand(m, v, "class ", 40)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("filt", [{}, {"top_k": 5}, {"top_p": 0.9}, {"temperature": 0.7, "top_k": 8, "top_p": 0.95}])
def test_carried_state_equals_full_recompute(tmp_path, cell, filt):
    m, v = _run(tmp_path, cell=cell)
    for n in (1, 3):
        opts = SampleOptions(length=50, seed=11, num_samples=n, stop_at_eot=False, **filt)
        fast = generate(m, v, v.encode("def f"), opts)
        slow = naive_generate(m, v, v.encode("def f"), opts)
        assert [s.text for s in fast.samples] == [s.text for s in slow.samples]


def test_prime_is_read_once_and_each_character_is_one_step(tmp_path, monkeypatch):
    m, v = _run(tmp_path)
    fed = []  # characters the model's fused layers read
    real = m.recurrent

    def counting(emb, state):
        fed.append(emb.shape[1])
        return real(emb, state)

    monkeypatch.setattr(m, "recurrent", counting)
    step_sizes = []
    real_step = Stepper.step

    def step(self, ids, **kw):
        step_sizes.append(tuple(ids.shape))
        return real_step(self, ids, **kw)

    monkeypatch.setattr(Stepper, "step", step)
    prime = "def f(x):\n    return"
    g = generate(m, v, v.encode(prime), SampleOptions(length=100, seed=1, num_samples=2, stop_at_eot=False))
    assert sum(fed) == len(prime) - 1  # the prime but its last character, once, in one pass
    assert len(fed) == 1
    assert g.steps == 100 and len(step_sizes) == 100  # the last prime character + 99 generated
    assert set(step_sizes) == {(2,)}  # one character per row per step
    assert all(len(s.ids) == 100 for s in g.samples)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_batched_greedy_equals_sequential(tmp_path, cell):
    m, v = _run(tmp_path, cell=cell, hidden=24)
    one = generate(m, v, v.encode("def "), SampleOptions(length=40, greedy=True, stop_at_eot=False)).samples[0].text
    many = generate(m, v, v.encode("def "), SampleOptions(length=40, greedy=True, num_samples=5, stop_at_eot=False))
    assert [s.text for s in many.samples] == [one] * 5


def test_batched_rows_differ_when_sampling(tmp_path):
    m, v = _run(tmp_path)
    g = generate(m, v, v.encode("def "), SampleOptions(length=40, num_samples=4, seed=3, stop_at_eot=False))
    assert len({s.text for s in g.samples}) > 1


def test_empty_prime_and_zero_length(tmp_path):
    m, v = _run(tmp_path)
    assert generate(m, v, [], SampleOptions(length=0)).samples[0].text == ""
    g = generate(m, v, [], SampleOptions(length=25, greedy=True, stop_at_eot=False))
    # An empty prime starts from <eot>, the start of a new document.
    assert g.samples[0].text == naive_generate(m, v, [v.eot_id], SampleOptions(length=25, greedy=True, stop_at_eot=False)).samples[0].text


# ----------------------------------------------------------------------------- stopping
def test_stop_string_ends_the_sample_and_is_kept(tmp_path):
    m, v = _run(tmp_path)
    for n in (1, 3):
        full = generate(m, v, v.encode("def "), SampleOptions(length=80, seed=5, stop_at_eot=False, num_samples=n))
        stop = full.samples[0].text[30:32]
        opts = SampleOptions(length=80, seed=5, stop_at_eot=False, stop=(stop, "never-there"), num_samples=n)
        got = generate(m, v, v.encode("def "), opts).samples
        for row, want in zip(got, full.samples):
            if stop in want.text:
                assert row.text == want.text[:want.text.index(stop) + len(stop)] and row.stop_reason == "stop"
            else:
                assert row.text == want.text and row.stop_reason == "length"
    g = generate(m, v, v.encode("def "), SampleOptions(length=80, seed=5, stop_at_eot=False, stop=("never-there",)))
    assert len(g.samples[0].ids) == 80 and g.samples[0].stop_reason == "length"


def test_eot_ends_a_sample_unless_told_otherwise(tmp_path):
    m, v = _run(tmp_path)
    with torch.no_grad():
        m.head.bias[v.eot_id] += 50.0  # <eot> is now always by far the most likely
    g = generate(m, v, v.encode("def "), SampleOptions(length=20, seed=1))
    assert g.samples[0].text == "" and g.samples[0].stop_reason == "eot"
    g = generate(m, v, v.encode("def "), SampleOptions(length=3, seed=1, stop_at_eot=False))
    assert g.samples[0].text == "<eot><eot><eot>"
    g = generate(m, v, v.encode("def "), SampleOptions(length=20, seed=1, num_samples=3))
    assert [s.stop_reason for s in g.samples] == ["eot"] * 3


def test_rows_stop_independently(tmp_path):
    m, v = _run(tmp_path)  # random weights: <eot> is about as likely as any symbol
    opts = SampleOptions(length=200, seed=2, num_samples=8, temperature=1.5)
    fast = generate(m, v, v.encode("d"), opts)
    slow = naive_generate(m, v, v.encode("d"), opts)
    assert [(s.text, s.stop_reason) for s in fast.samples] == [(s.text, s.stop_reason) for s in slow.samples]
    assert "eot" in {s.stop_reason for s in fast.samples}
    assert len({len(s.text) for s in fast.samples}) > 1


# ----------------------------------------------------------------------------- bytes
def test_row_text_decodes_utf8_incrementally():
    v = Vocab.build_byte(records=True)
    r = RowText(v)
    data = "a😀é".encode()
    pieces = [r.feed([b]) for b in data]
    assert pieces == ["a", "", "", "", "😀", "", "é"]
    r.feed([v.eot_id, ord("x")])
    assert r.text == "a😀é" and r.reason == "eot"
    r2 = RowText(v)
    r2.feed(list("x😀".encode())[:-1])
    assert r2.finish() == "\ufffd" and r2.text == "x\ufffd"


def test_byte_model_streams_emoji_whole(tmp_path, monkeypatch):
    m, v = _run(tmp_path, units="byte")
    target = list("ok 😀 é!".encode())
    it = iter(target)

    def scripted(logits, *, out=None, **kw):  # the model "chooses" the next byte of target
        out.fill_(next(it))
        return out

    monkeypatch.setattr(S.loop, "sample_next", scripted)
    pieces: list[str] = []
    g = generate(m, v, v.encode("héllo "), SampleOptions(length=len(target), top_k=300), on_text=pieces.append)
    assert "".join(pieces) == g.samples[0].text == "ok 😀 é!"
    assert "😀" in pieces and "\ufffd" not in "".join(pieces)


def test_byte_model_accepts_any_prime(tmp_path):
    m, v = _run(tmp_path, units="byte")
    g = generate(m, v, v.encode("naïve ☃ 𝄞"), SampleOptions(length=30, seed=0, stop_at_eot=False))
    assert len(g.samples[0].ids) == 30


# ----------------------------------------------------------------------------- clamping
def _steps(m, clamp, ids, n=1):
    with torch.inference_mode():
        st = Stepper(m, n, clamp=clamp)
        states, logits = [], []
        for i in ids:
            logits.append(st.step(torch.full((n,), i)).clone())
            states.append(st.get_state())
    return states, logits


@pytest.mark.parametrize("cell,kind", [("lstm", "c"), ("lstm", "h"), ("gru", "h"), ("rnn", "h"), ("peephole", "c")])
def test_clamped_state_holds(cell, kind):
    m = _model(cell, H=9)
    states, _ = _steps(m, [Clamp(1, kind, 4, 0.75), Clamp(0, kind, 2, -0.5)], [1, 5, 2, 7, 3])
    j = cells.KINDS[cell].index(kind) if kind in ("h", "c") else None
    for s in states:
        assert torch.all(s[j][1, :, 4] == 0.75) and torch.all(s[j][0, :, 2] == -0.5)


def test_clamped_lower_layer_feeds_the_upper_layer():
    """A clamped h of layer 0 is layer 1's input at the same step: check against explicit cells."""
    m = _model("lstm", H=9)
    ids = [1, 5, 2, 7]
    _, got = _steps(m, [Clamp(0, "h", 3, 0.9)], ids)
    p0, p1 = m.layer_params(0), m.layer_params(1)
    with torch.no_grad():
        st = m.init_state(1)
        s0, s1 = (st[0][0], st[1][0]), (st[0][1], st[1][1])
        for i, want_logits in zip(ids, got):
            r0 = cells.step("lstm", m.embed(torch.tensor([i])), s0, p0)
            h0 = r0["h"].clone()
            h0[:, 3] = 0.9
            s0 = (h0, r0["c"])
            r1 = cells.step("lstm", h0, s1, p1)
            s1 = (r1["h"], r1["c"])
            torch.testing.assert_close(want_logits, m.head(r1["h"]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell", ["lstm", "peephole"])
def test_clamped_lstm_gates(cell):
    m = _model(cell, H=9)
    ids = [1, 5, 2, 7, 3]
    # input gate shut, forget gate open: the cell keeps its value
    states, _ = _steps(m, [Clamp(1, "i", 4, 0.0), Clamp(1, "f", 4, 1.0)], ids)
    cs = [s[1][1, 0, 4].item() for s in states]
    assert cs == [0.0] * len(ids)  # starts at zero and never takes anything in
    # output gate shut: the hidden state is zero; g with i=1, f=0: the cell equals g
    states, _ = _steps(m, [Clamp(0, "o", 2, 0.0), Clamp(0, "i", 5, 1.0), Clamp(0, "f", 5, 0.0),
                           Clamp(0, "g", 5, 0.3)], ids)
    for s in states:
        assert s[0][0, 0, 2] == 0 and abs(s[1][0, 0, 5] - 0.3) < 1e-7


def test_clamped_gru_gates():
    m = _model("gru", H=9)
    ids = [1, 5, 2, 7, 3]
    states, _ = _steps(m, [Clamp(1, "z", 4, 1.0)], ids)  # update gate closed: h keeps its value
    assert [s[0][1, 0, 4].item() for s in states] == [0.0] * len(ids)
    states, _ = _steps(m, [Clamp(0, "z", 2, 0.0), Clamp(0, "n", 2, -0.4), Clamp(0, "r", 3, 0.0)], ids)
    for s in states:
        assert abs(s[0][0, 0, 2] + 0.4) < 1e-7


def test_clamp_changes_the_output(tmp_path):
    m, v = _run(tmp_path, hidden=24)
    unit = int(m.head.weight.abs().sum(0).argmax())  # the unit with the most say in the output
    o = dict(length=40, greedy=True, stop_at_eot=False)
    plain = generate(m, v, v.encode("def "), SampleOptions(**o)).samples[0].text
    clamp = (Clamp(1, "h", unit, 8.0),)
    held = generate(m, v, v.encode("def "), SampleOptions(clamp=clamp, **o)).samples[0].text
    assert held != plain
    again = generate(m, v, v.encode("def "), SampleOptions(clamp=clamp, **o)).samples[0].text
    assert again == held


def test_clamp_prime_reads_the_prime_clamped(tmp_path, monkeypatch):
    m, v = _run(tmp_path)
    seen = []
    real = Stepper.step

    def step(self, ids, **kw):
        seen.append(self.any_clamp and self.clamping)
        return real(self, ids, **kw)

    monkeypatch.setattr(Stepper, "step", step)
    prime = v.encode("def f(x):")
    generate(m, v, prime, SampleOptions(length=3, seed=0, clamp=(Clamp(0, "c", 0, 1.0),), clamp_prime=True, stop_at_eot=False))
    assert seen == [True] * (len(prime) - 1 + 3)  # every prime character and every generated step
    seen.clear()
    generate(m, v, prime, SampleOptions(length=3, seed=0, clamp=(Clamp(0, "c", 0, 1.0),), stop_at_eot=False))
    assert seen == [True] * 3  # the prime went through the fused module; only the steps clamp


# ----------------------------------------------------------------------------- options
@pytest.mark.parametrize("bad,msg", [
    (dict(temperature=0.0), "temperature"), (dict(temperature=-1.0), "temperature"),
    (dict(top_p=0.0), "top-p"), (dict(top_p=1.5), "top-p"), (dict(top_k=0), "top-k"),
    (dict(length=-1), "length"), (dict(num_samples=0), "num-samples"), (dict(stop=("",)), "stop"),
])
def test_bad_options(tmp_path, bad, msg):
    m, v = _run(tmp_path)
    with pytest.raises(CharlstmError, match=msg):
        generate(m, v, [], SampleOptions(**bad))


def test_one_thread_for_small_steps_or_a_busy_machine(monkeypatch):
    from charlstm import runtime

    m = _model("lstm")
    cpu = torch.device("cpu")
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert runtime.step_threads(cpu, 1 * m.step_macs()) == 1
    assert runtime.step_threads(cpu, 1_000_000 * m.step_macs()) is None
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (99.0, 99.0, 99.0))
    assert runtime.step_threads(cpu, 1_000_000 * m.step_macs()) == 1
    before = torch.get_num_threads()
    with runtime.cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_prepared_weights_are_cached_until_a_weight_changes(tmp_path):
    m, v = _run(tmp_path)
    assert S.prepared_weights(m) is S.prepared_weights(m)
    opts = SampleOptions(length=30, greedy=True, stop_at_eot=False)
    before = generate(m, v, v.encode("def "), opts).samples[0].text
    with torch.no_grad():
        m.rnn.weight_hh_l1.mul_(-3.0)  # an in-place edit, as ablation code would make
    after = generate(m, v, v.encode("def "), opts).samples[0].text
    assert after == naive_generate(m, v, v.encode("def "), opts).samples[0].text
    assert after != before


def test_row_text_stops_across_pieces():
    v = Vocab.build_char(Counter("abcxyz\n"))
    r = RowText(v, stop=("yz\n", "q"))
    for ch in "abxyz\nc":
        r.feed(v.encode(ch).tolist())
    assert r.text == "abxyz\n" and r.reason == "stop" and r.ids == v.encode("abxyz\n").tolist()
    r = RowText(v, stop=("\n\n", "ab"))
    assert r.feed(v.encode("xa").tolist()) == "xa"
    assert r.feed(v.encode("bc").tolist()) == "b"  # "ab" completes with the b
    assert r.text == "xab"
    r = RowText(v, stop=("ab",))
    r.feed(v.encode("a" * 5000).tolist())
    assert r.reason is None and len(r.text) == 5000


def test_model_built_under_inference_mode():
    with torch.inference_mode():  # its parameters have no version counter: no cache, still right
        m = _model("lstm")
        x = torch.randint(0, 11, (1, 5))
        want, _ = m(x)
        st = Stepper(m, 1)
        for t in range(5):
            got = st.step(int(x[0, t]))
    torch.testing.assert_close(got, want[:, -1], atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- blocks (the CUDA graph's loop)
@pytest.mark.parametrize("opts", [dict(seed=4, temperature=1.2), dict(greedy=True), dict(seed=9, stop=("e(",)),
                                  dict(seed=2, temperature=1.5)])  # random weights at 1.5: some rows hit <eot>
def test_block_generation_equals_step_by_step(tmp_path, opts):
    """generate(blocks=True) runs BlockSampler's loop (on CUDA: replays of a captured graph); the
    text, ids and stop reasons must be those of the step-by-step loop, for any length."""
    m, v = _run(tmp_path, hidden=24, layers=3)
    for n in (1, 4):
        for length in (1, 63, 64, 150):
            o = SampleOptions(length=length, num_samples=n, **opts)
            a = generate(m, v, v.encode("def f"), o, blocks=False)
            b = generate(m, v, v.encode("def f"), o, blocks=True)
            assert [(s.text, s.ids, s.stop_reason) for s in a.samples] == [(s.text, s.ids, s.stop_reason) for s in b.samples]


def test_block_generation_streams_the_same_text(tmp_path):
    m, v = _run(tmp_path)
    pieces: list[str] = []
    g = generate(m, v, v.encode("x"), SampleOptions(length=200, seed=1, stop_at_eot=False), on_text=pieces.append,
                 blocks=True)
    assert "".join(pieces) == g.samples[0].text and len(g.samples[0].ids) == 200 and len(pieces) >= 3


@pytest.mark.cuda  # CUDA graphs need a CUDA GPU (the loop they replay is tested above)
def test_cuda_graph_sampling_equals_the_eager_loop(tmp_path):
    m, v = _run(tmp_path, hidden=64, layers=3)
    m = m.cuda()
    for n in (1, 8):
        o = SampleOptions(length=300, num_samples=n, seed=3, stop_at_eot=False)
        graph = generate(m, v, v.encode("def f"), o)  # the default on CUDA: blocks, captured
        eager = generate(m, v, v.encode("def f"), o, blocks=False)
        # the same kernels on the same buffers in the same order: the same numbers, the same text
        assert [s.ids for s in graph.samples] == [s.ids for s in eager.samples]
    with torch.inference_mode():
        st = S.Stepper(m, 2)
        first = torch.zeros(2, dtype=torch.long, device="cuda")
        g = S.BlockSampler(st, first, 16, graph=True)
        assert g.graph is not None
        ids_graph = g.run(None).clone()
        st2 = S.Stepper(m, 2)
        e = S.BlockSampler(st2, first, 16, graph=False)
        torch.testing.assert_close(ids_graph, e.run(None))


@pytest.mark.parametrize("layers", [1, 3])
def test_numpy_step_equals_the_torch_step(layers):
    """One row of a small LSTM on the CPU steps in numpy (int ids); tensor ids take the torch step.
    Same logits and state, step after step, from the same buffers."""
    m = _model("lstm", layers, H=24)
    x = torch.randint(0, 11, (40,))
    with torch.inference_mode():
        a, b = Stepper(m, 1, temperature=0.7, unk_id=3), Stepper(m, 1, temperature=0.7, unk_id=3)
        assert a.np_plain is not None
        bias = torch.randn(1, 11)
        for t in range(40):
            hb = bias if t % 2 else None
            got = a.step(int(x[t]), head_bias=hb).clone()
            want = b.step(x[t:t + 1], head_bias=hb)
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        for s1, s2 in zip(a.get_state(), b.get_state()):
            torch.testing.assert_close(s1, s2, atol=1e-5, rtol=1e-5)
    assert Stepper(m, 2).np_plain is None and Stepper(_model("gru", 2), 1).np_plain is None
