"""Stream batching: rows continue across chunks, ranks split the streams, validation scores each target once."""
import numpy as np
import pytest
import torch

from charlstm.train.batches import IGNORE, EvalStreams, TrainStreams, fit_batch_size
from charlstm.errors import CharlstmError


def _ids(n, vocab=50):
    return (np.arange(n) * 7 % vocab).astype(np.uint8)


def test_chunks_continue_each_row_and_targets_are_shifted_inputs():
    ids = np.arange(200).astype(np.uint8)
    s = TrainStreams(ids, batch_size=4, seq_len=10)
    assert s.stream_len == 49 and s.n_chunks == 4 and s.data.dtype == torch.uint8
    x0, y0 = s.chunk(0)
    x1, y1 = s.chunk(1)
    assert x0.dtype == torch.int64 and x0.shape == (4, 10)
    for i in range(4):
        start = i * 49
        assert x0[i].tolist() == list(range(start, start + 10))
        assert x1[i].tolist() == list(range(start + 10, start + 20))  # row i of chunk 1 continues chunk 0
        assert y0[i].tolist() == list(range(start + 1, start + 11))
    # every (input, target) pair used in an epoch is a real consecutive pair of the split, none twice
    pairs = {(int(a), int(b)) for k in range(s.n_chunks) for a, b in zip(*(t.flatten() for t in s.chunk(k)))}
    assert len(pairs) == 4 * 4 * 10 and all(b == a + 1 for a, b in pairs)


def test_ranks_hold_disjoint_rows_that_make_up_the_global_layout():
    ids = _ids(1000)
    full = TrainStreams(ids, batch_size=6, seq_len=8)
    parts = [TrainStreams(ids, batch_size=6, seq_len=8, rank=r, world_size=3) for r in range(3)]
    assert all(p.rows == 2 for p in parts)
    assert torch.equal(torch.cat([p.data for p in parts]), full.data)


def test_large_vocabularies_are_widened_to_int32():
    ids = (np.arange(300) * 13 % 700).astype(np.uint16)
    s = TrainStreams(ids, batch_size=2, seq_len=16)
    assert s.data.dtype == torch.int32 and s.chunk(0)[0].max() > 255


def test_fit_batch_size_shrinks_then_fails_clearly():
    assert fit_batch_size(10_000, 32, 100) == 32
    assert fit_batch_size(1001, 32, 100) == 10  # 1000 pairs hold 10 streams of 100
    assert fit_batch_size(1001, 32, 100, world_size=4) == 8  # and stay divisible among processes
    with pytest.raises(CharlstmError, match="too few"):
        fit_batch_size(50, 32, 100)
    with pytest.raises(CharlstmError, match="multiple of the number of processes"):
        fit_batch_size(10_000, 30, 10, world_size=4)


@pytest.mark.parametrize("n,streams,seq_len,world", [(101, 4, 7, 1), (100, 4, 7, 1), (37, 64, 5, 1), (1000, 8, 1000, 3),
                                                     (2, 4, 3, 2)])
def test_eval_streams_score_every_target_exactly_once(n, streams, seq_len, world):
    ids = _ids(n)
    parts = [EvalStreams(ids, streams, seq_len, r, world) for r in range(world)]
    x = torch.cat([p.x for p in parts])
    y = torch.cat([p.y for p in parts])
    assert x.shape[0] % world == 0
    keep = y.flatten() != IGNORE
    assert keep.sum() == n - 1 == parts[0].n_targets
    assert y.flatten()[keep].tolist() == ids[1:].tolist()
    assert x.flatten()[keep].tolist() == ids[:-1].tolist()
    # padding only ever follows the real positions of its row (so it cannot affect them)
    for row in y:
        real = (row != IGNORE).tolist()
        assert real == sorted(real, reverse=True)
    # chunks cover each row once, the last one ragged
    got = torch.cat([yy for _, yy in parts[0].chunks()], 1)
    assert torch.equal(got, parts[0].y.long())


def test_eval_needs_two_tokens():
    with pytest.raises(CharlstmError, match="at least 2"):
        EvalStreams(_ids(1), 4, 8)
