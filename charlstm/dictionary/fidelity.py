"""How faithful a dictionary is, measured on held-out text (the validation split by default).

The text's first `chars` characters are cut into S contiguous pieces, read as S parallel streams
from the model's starting state (charlstm.dictionary.states). Two runs over the same pieces:

* clean: the model as it is. Its layer states give the fraction of variance explained,
  1 - sum |x - x^|^2 / sum |x - mean x|^2 (mean over these states), how often each feature fires,
  the dead features (never active here) and the dense ones (active on more than DENSE of the
  states), the mean number of active features per state (L0: at most k; a relu code may select a
  feature whose pre-activation is negative, which then reads 0), and the original bpc;
* spliced: the layer's state replaced by the dictionary's reconstruction at every step
  (charlstm.dictionary.steer.Splice), so the reconstruction feeds the next step and the layers
  above: the spliced bpc.

Both runs read each piece from its start, but the first `warmup` characters of a piece (256, or a
quarter of a piece if that is less) are left out of every number: a piece starts from nothing, and
a code model needs a few hundred characters to be itself again. Both bpc count the same predictions;
the clean one is still a little above the model's exact validation bpc (`charlstm eval`, which
reads the whole split in one stream), and the two runs share the pieces, so their difference is the
dictionary's alone. A spliced run whose numbers overflow (the reconstruction, fed back, growing
without bound: seen with dictionaries of an LSTM's c) is reported as diverged, with no spliced bpc.

Owns: `measure` and how a result reads. Does not know: files or the command line.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from charlstm.dictionary.model import Dictionary
from charlstm.dictionary.states import StateStream
from charlstm.dictionary.steer import Splice
from charlstm.errors import CharlstmError

DENSE = 0.1  # a feature active on more than this fraction of states is "dense"
CHUNK = 256  # steps per stream read at once (bounds memory to CHUNK x S x H)


@torch.no_grad()
def measure(model, d: Dictionary, ids: np.ndarray, chars: int = 100_000, streams: int = 64,
            split: str = "val", warmup: int = 256) -> dict[str, Any]:
    """Fidelity of dictionary d on ids [T] (the first `chars`) -> a dict for dictionary.json:
    chars, warmup, scored, streams, split, variance_explained, l0, dead, dense, dense_threshold, bpc,
    spliced_bpc, delta_bpc, seconds, and freq (per-feature firing frequency, float32 [F], not for JSON)."""
    t0 = time.perf_counter()
    n = min(int(chars), len(ids))
    S = max(1, min(int(streams), n // 2))
    offsets, m = pieces(np.asarray(ids[:n], dtype=np.int64), S, model.reset_id)
    if m < 2:
        raise CharlstmError(f"the held-out text has {n} characters: too few to measure a dictionary")
    S = len(offsets)
    w = min(int(warmup), m // 4)
    text = np.stack([np.asarray(ids[o:o + m], dtype=np.int64) for o in offsets])  # [S, m]
    clean = StateStream(model, text.reshape(-1), d.layer, d.kind, streams=S, offsets=np.arange(S) * m)
    spliced = StateStream(model, text.reshape(-1), d.layer, d.kind, streams=S, offsets=np.arange(S) * m,
                          edits=[Splice(d)])
    H, F = d.hidden, d.size
    sx = torch.zeros(H, dtype=torch.float64)
    sxx = sse = 0.0
    fired = torch.zeros(F, dtype=torch.int64)
    active = 0
    bits = {"clean": 0.0, "spliced": 0.0}
    scored = 0
    for a in range(0, m, CHUNK):
        c = min(CHUNK, m - a)
        states, _, lp = clean.run(c, logits=True)
        _, _, lp2 = spliced.run(c, logits=True)
        skip = max(0, w - a)  # steps of this chunk still in the warm-up
        if skip >= c:
            continue
        states, lp, lp2 = states[skip:], lp[skip:], lp2[skip:]
        a, c = a + skip, c - skip
        x = states.reshape(-1, H)
        vals, idx = d.encode(x)
        xhat = d.decode(vals, idx)
        xd = x.double()
        sx += xd.sum(0)
        sxx += float((xd ** 2).sum())
        sse += float(((xd - xhat.double()) ** 2).sum())
        nz = vals != 0
        active += int(nz.sum())
        fired += torch.bincount(idx[nz].reshape(-1), minlength=F)
        # predictions: step t of a piece predicts character t + 1 of the same piece
        last = min(c, m - 1 - a)  # steps of this chunk that have a next character in the piece
        if last > 0:
            tgt = torch.from_numpy(text[:, a + 1:a + 1 + last].T.copy())  # [last, S]
            for name, l in (("clean", lp), ("spliced", lp2)):
                bits[name] -= float(l[:last].gather(2, tgt[..., None]).sum()) / math.log(2)
            scored += last * S
    N = S * (m - w)
    sst = sxx - float((sx ** 2).sum()) / N
    freq = (fired.double() / N).float()
    bpc, sbpc = bits["clean"] / scored, bits["spliced"] / scored
    diverged = not math.isfinite(sbpc)  # the reconstruction fed back until the numbers overflowed
    return {"split": split, "chars": S * m, "warmup": w, "scored": scored, "streams": S,
            "variance_explained": round(1 - sse / sst, 5) if sst > 0 else None,
            "l0": round(active / N, 3), "dead": int((fired == 0).sum()), "dense": int((freq > DENSE).sum()),
            "dense_threshold": DENSE, "bpc": round(bpc, 5), "spliced_bpc": None if diverged else round(sbpc, 5),
            "delta_bpc": None if diverged else round(sbpc - bpc, 5), "diverged": diverged, "seconds": round(time.perf_counter() - t0, 1), "freq": freq.numpy()}


def pieces(ids: np.ndarray, streams: int, reset_id: int | None) -> tuple[np.ndarray, int]:
    """Where the S pieces start and their common length m: evenly spaced over ids [n]; for a model
    of records each piece starts at a record boundary (an <eot>, read from the zero state), so no
    piece starts in the middle of a record (characters between pieces are then left out)."""
    n = len(ids)
    starts = np.arange(streams, dtype=np.int64) * (n // streams)
    if reset_id is not None:
        eots = np.flatnonzero(ids == reset_id)
        if len(eots):
            at = np.searchsorted(eots, starts)
            starts = np.unique(eots[at[at < len(eots)]])
    bounds = np.append(starts, n)
    return starts, int(np.diff(bounds).min()) if len(starts) else 0


def describe(f: dict[str, Any] | None, size: int | None = None) -> list[str]:
    """The lines `dictionary train` and `dictionary info` print for a fidelity result."""
    if not f:
        return ["fidelity: not measured yet (`charlstm dictionary info RUN --name NAME --measure` measures it)"]
    ve = f.get("variance_explained")
    of = f" of {size:,}" if size else ""
    warm = f", the first {f['warmup']} of each left out" if f.get("warmup") else ""
    return [f"fidelity on {f['chars']:,} characters of the {f['split']} split ({f['streams']} pieces{warm}):",
            f"  variance explained {ve:.4f}" if ve is not None else "  variance explained: n/a (constant states)",
            f"  active features per state (L0) {f['l0']:.2f}; dead {f['dead']:,}{of} (never active); "
            f"dense {f['dense']:,} (active on > {100 * f['dense_threshold']:.0f}% of states)",
            f"  bpc {f['bpc']:.4f} -> spliced {f['spliced_bpc']:.4f} ({f['delta_bpc']:+.4f}) with the reconstruction "
            "in place of the state at every step" if f.get("spliced_bpc") is not None else
            f"  bpc {f['bpc']:.4f}; the spliced run diverged (fed back, the reconstruction grew until the numbers "
            "overflowed)"]
