"""Validation during training: the exact bits per character of the validation split.

Owns: how the validation split is laid out for scoring (running text: EvalStreams of
charlstm.train.batches, at most EVAL_STREAMS rows of at least EVAL_MIN_STREAM characters; records:
EvalRecords of charlstm.train.records, every record from the start of a record; both fixed so that
val bpc does not depend on the training batch) and `score_nats`, the summed cross-entropy of this
rank's rows. Does not know: the schedule, checkpoints or the optimizer.
"""
from __future__ import annotations

import math
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F

from charlstm.model import CharRNN
from charlstm.train.batches import EvalStreams
from charlstm.train.records import EvalRecords

LN2 = math.log(2.0)
# Validation streams: at most 64, each at least ~1024 characters long (every stream starts from a blank
# state, so short ones would be scored mostly cold). Fixed, so val bpc does not depend on the batch.
EVAL_STREAMS, EVAL_MIN_STREAM = 64, 1024


EVAL_RECORD_CHUNK = 256  # characters per forward pass over validation records (no backward: longer is fine)


def eval_layout(val_ids: np.ndarray, seq_len: int, rank: int, world_size: int, device: torch.device,
                reset_id: int | None = None, max_chars: int | None = None) -> EvalStreams | EvalRecords:
    """The validation split laid out for exact scoring on this rank: records (reset_id set) one per
    row from the start of a record, running text as streams. max_chars: score only about the first
    so many characters (whole records)."""
    if reset_id is not None:
        if max_chars:
            ends = np.flatnonzero(np.asarray(val_ids[:max_chars + 1]) == reset_id)
            val_ids = val_ids[:int(ends[-1]) + 1] if len(ends) else val_ids
        return EvalRecords(val_ids, reset_id, max(seq_len, EVAL_RECORD_CHUNK), rank, world_size, device)
    if max_chars:
        val_ids = val_ids[:max_chars + 1]
    n_val = min(EVAL_STREAMS, max(1, (len(val_ids) - 1) // EVAL_MIN_STREAM))
    return EvalStreams(val_ids, n_val, seq_len, rank, world_size, device)


@torch.no_grad()
def score_nats(model: CharRNN, layout: EvalStreams | EvalRecords, amp: bool = False) -> torch.Tensor:
    """Summed cross-entropy (nats, float64 scalar on the model's device) of this rank's validation rows.

    Each row runs with its own carried state from a zero start; padding targets are ignored.
    bpc = sum over ranks / layout.n_targets / ln 2.
    """
    was_training = model.training
    model.eval()
    dev = model.head.weight.device
    total = torch.zeros((), dtype=torch.float64, device=dev)
    state = None
    for c in layout.eval_chunks():
        x, y = c.x, c.y
        if c.fresh:
            state = model.init_state(x.shape[0])
        with torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext():
            logits, state = model(x, state)
        total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").double()
    model.train(was_training)
    return total
