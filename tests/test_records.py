"""Models of records read every record from the start of a record (charlstm.model, "Records"): the
layout training uses (charlstm.train.records), and every reader (read, score, sample, trace,
ablation) held to the obvious twin: each record run on its own from the zero state, <eot> first."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from charlstm.config import ModelConfig, TrainConfig
from charlstm.corpora.synthetic import write_synthetic
from charlstm.model import CharRNN
from charlstm.neurons import explicit_losses, fused_losses
from charlstm.sample import SampleOptions, generate, naive_generate
from charlstm.score import score_ids
from charlstm.trace import trace_ids
from charlstm.train import train
from charlstm.train.batches import IGNORE
from charlstm.train.records import EvalRecords, RecordBatches, split_records
from charlstm.train.validate import eval_layout, score_nats
from charlstm.vocab import Vocab

V = Vocab.build_char(Counter("abX"))
E = V.eot_id
RECORDS = ["aaXbb", "aXb", "aaaXbbb", "X", "abab"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _split(records=RECORDS) -> np.ndarray:
    ids = []
    for r in records:
        ids += V.encode(r).tolist() + [E]
    return np.array(ids, dtype=np.uint8)


def _model(cell="lstm", reset=True, seed=0) -> CharRNN:
    torch.manual_seed(seed)
    m = CharRNN(ModelConfig(cell=cell, vocab_size=V.size, embed_dim=4, hidden_size=6, num_layers=2,
                            reset_id=E if reset else None)).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(2.0)  # larger weights: states differ clearly between contexts
    return m


def _alone(m: CharRNN, record: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The twin: one record run on its own from the zero state, <eot> first -> (logits [n+1, V] for
    its characters and its <eot>, targets [n+1])."""
    ids = [E] + V.encode(record).tolist() + [E]
    with torch.no_grad():
        logits, _ = m(torch.tensor([ids[:-1]]))
    return logits[0], torch.tensor(ids[1:])


def test_split_records_reads_every_record_from_eot():
    got = [r.tolist() for r in split_records(_split(), E)]
    assert got == [[E, *V.encode(r).tolist(), E] for r in RECORDS]
    assert split_records(np.array([3, 4], dtype=np.uint8), E)[0].tolist() == [E, 3, 4, E]  # closed


def test_training_batches_cover_every_prediction_once_per_epoch_from_the_zero_state():
    ids = _split(RECORDS * 7)
    b = RecordBatches(ids, E, batch_size=4, seq_len=3, seed=1)
    seen = Counter()
    total = 0
    for k in range(b.n_chunks):
        c = b.step_chunk(0, k)
        assert c.x.shape == c.y.shape and c.x.shape[1] <= 3
        real = c.y != IGNORE
        assert int(real.sum()) == c.targets
        total += c.targets
        if c.fresh:
            rows = [[] for _ in range(c.x.shape[0])]
        for r in range(c.x.shape[0]):
            rows[r] += [(int(a), int(t)) for a, t in zip(c.x[r][real[r]], c.y[r][real[r]])]
        nxt = b.step_chunk(0, k + 1) if k + 1 < b.n_chunks else None
        if nxt is None or nxt.fresh:  # the group is complete: each row is one whole record
            for row in rows:
                if row:
                    seen[tuple(row)] += 1
    want = Counter(tuple(zip(r[:-1].tolist(), r[1:].tolist())) for r in split_records(ids, E))
    assert seen == want and total == len(ids)
    # each epoch reads the same groups in another order, decided by the seed
    order0 = [b.step_chunk(0, k).x.shape for k in range(b.n_chunks)]
    order1 = [b.step_chunk(1, k).x.shape for k in range(b.n_chunks)]
    assert sorted(map(tuple, order0)) == sorted(map(tuple, order1))
    assert order0 == [RecordBatches(ids, E, 4, 3, seed=1).step_chunk(0, k).x.shape for k in range(b.n_chunks)]


def test_ranks_split_each_group_and_read_in_step():
    ids = _split(RECORDS * 5)
    one = RecordBatches(ids, E, 4, 4, seed=0)
    two = [RecordBatches(ids, E, 4, 4, seed=0, rank=r, world_size=2) for r in range(2)]
    assert one.n_chunks == two[0].n_chunks == two[1].n_chunks
    for k in range(one.n_chunks):
        a, b0, b1 = one.step_chunk(0, k), two[0].step_chunk(0, k), two[1].step_chunk(0, k)
        assert b0.x.shape == b1.x.shape and b0.targets == b1.targets == a.targets
        both = torch.cat([b0.y, b1.y])
        assert int((both != IGNORE).sum()) == a.targets


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "peephole"])
def test_validation_of_records_is_the_sum_over_records_alone(cell):
    m = _model(cell)
    ids = _split()
    layout = eval_layout(ids, seq_len=2, rank=0, world_size=1, device="cpu", reset_id=E)
    assert isinstance(layout, EvalRecords) and layout.n_targets == len(ids)
    got = float(score_nats(m, layout))
    want = sum(float(torch.nn.functional.cross_entropy(*_alone(m, r), reduction="sum")) for r in RECORDS)
    assert got == pytest.approx(want, rel=1e-5)
    # and charlstm eval's scorer gives the same number on the same split (every token scored)
    r = score_ids(m, ids)
    assert r.scored == len(ids) and r.first == 0
    assert r.bits * np.log(2) == pytest.approx(want, rel=1e-5)


def test_read_and_begin_restart_at_each_eot():
    m = _model()
    ids = torch.tensor([[E] + V.encode("aaXbb").tolist() + [E] + V.encode("aX").tolist()])
    logits, _ = m.read(ids)
    a, _ = _alone(m, "aaXbb")
    b, _ = _alone(m, "aX")
    torch.testing.assert_close(logits[0, :6], a[:6])
    torch.testing.assert_close(logits[0, 6:], b[:3])
    state, first = m.begin(1)
    torch.testing.assert_close(first[0], a[0])
    assert m.context([5]) == [E, 5] and _model(reset=False).context([5]) == [5]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "peephole"])
def test_sampling_starts_a_record_and_restarts_after_eot(cell):
    m = _model(cell)
    prime = V.encode("aaX").tolist()
    for opts in (SampleOptions(length=12, greedy=True, stop_at_eot=False),
                 SampleOptions(length=12, seed=3, stop_at_eot=False, num_samples=3)):
        fast = generate(m, V, prime, opts)
        slow = naive_generate(m, V, prime, opts)
        assert [s.ids for s in fast.samples] == [s.ids for s in slow.samples]
    # greedy from the prime is the argmax chain of the record read alone (<eot> first; <unk> is
    # never written)
    g = generate(m, V, prime, SampleOptions(length=6, greedy=True)).samples[0]
    ids = [E] + prime
    for i in g.ids:
        with torch.no_grad():
            logits = m(torch.tensor([ids]))[0][0, -1]
        logits[V.unk_id] = float("-inf")
        assert int(logits.argmax()) == i
        ids.append(i)


def test_a_prime_across_records_reads_the_last_record_alone():
    m = _model()
    opts = SampleOptions(length=8, greedy=True, stop_at_eot=False)
    after = generate(m, V, V.encode("abab").tolist() + [E] + V.encode("aX").tolist(), opts).samples[0].ids
    alone = generate(m, V, V.encode("aX").tolist(), opts).samples[0].ids
    assert after == alone


def test_trace_and_ablation_read_each_record_from_its_start():
    m = _model()
    ids = _split(["aaXbb", "aX"])
    tr = trace_ids(m, V, ids, chunk=3)
    h = tr.arrays["layer1.h"]
    # the text starts as a record: its first row equals the first row of the record alone, and the
    # second record's rows equal that record traced alone
    alone1 = trace_ids(m, V, V.encode("aaXbb")).arrays["layer1.h"]
    alone2 = trace_ids(m, V, np.array([E] + V.encode("aX").tolist())).arrays["layer1.h"]
    np.testing.assert_allclose(h[:5], alone1, atol=1e-5)
    np.testing.assert_allclose(h[5:8], alone2, atol=1e-5)
    np.testing.assert_allclose(explicit_losses(m, ids)[0], fused_losses(m, ids), atol=2e-5)


def test_a_record_dataset_trains_records_from_their_start_and_resumes(tmp_path):
    ds = write_synthetic("counting", num=300, seed=0, data_dir=tmp_path / "data")
    m = ModelConfig(cell="lstm", embed_dim=4, hidden_size=8, num_layers=1)
    t = TrainConfig(batch_size=8, seq_len=8, max_steps=12, eval_every=6, log_every=3, sample_chars=0, device="cpu")
    r = train(ds, tmp_path / "a", m, t)
    from charlstm.runs import run_configs

    assert run_configs(tmp_path / "a")[0].reset_id == ds.vocab.eot_id
    # stopping at step 6 (in the middle of the data) and resuming gives the very same weights as one
    # run of 12 steps: the data position, the carried state of the group and the RNG all continue
    stopped = train(ds, tmp_path / "b", m, t, callbacks=[lambda e: e.step >= 6])
    assert stopped.stopped == "callback" and stopped.steps == 6
    train(ds, tmp_path / "b", m, t, resume=True)
    import charlstm

    wa = charlstm.load(tmp_path / "a", checkpoint="last").module.state_dict()
    wb = charlstm.load(tmp_path / "b", checkpoint="last").module.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert r.final_val_bpc is not None
