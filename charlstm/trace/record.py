"""Recording a trace: every layer's hidden state, cell state and gates, for every character read.

How the values are computed (and why it is fast without being a second implementation):

* lstm/gru/rnn: the fused module (the oneDNN/cuDNN kernel the model trains with) runs one layer at
  a time over a chunk of characters and gives that layer's outputs h_1..h_T. Because every gate at
  step t depends only on (x_t, h_{t-1}), ``cells.step`` -- the explicit cell -- then runs once with
  *time as the batch dimension* and gives every gate at every step in one batched matrix product.
  The LSTM cell state is the linear recurrence c_t = f_t*c_{t-1} + i_t*g_t, an element-wise loop
  over time (a few microseconds per step), and h_t = o_t*tanh(c_t). tests/test_cells.py checks the
  result against a step-by-step ``cells.unroll`` and the fused outputs (<= 1e-5 in float32).
* peephole: the gates read c, so there is no shortcut; ``cells.unroll`` runs step by step (the
  model itself runs that way too).

A model of records starts from the start of a record and reads each <eot> from the zero state
(charlstm.model, "Records"): chunks are cut at every <eot>, and the state is zeroed before one.

Long inputs are processed in chunks of ``chunk`` characters with the state carried across chunks,
and every chunk is handed to *sinks* (in memory, an .npz writer, an LSTMVis writer, gate
statistics...), so working memory is O(chunk x units), not O(text).

Owns: `run_trace` and the one-call forms `trace_ids` / `trace_text`. Does not know: files, pictures
or the command line.
"""
from __future__ import annotations

import time
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from charlstm import cells
from charlstm.errors import CharlstmError
from charlstm.inputs import encode
from charlstm.runtime import cpu_threads, step_threads
from charlstm.trace.sinks import TOP_K, MemorySink, Sink, Trace, TraceInfo, resolve_kinds, resolve_layers
from charlstm.vocab import Vocab


def _layer_module(model: nn.Module, layer: int) -> nn.Module | None:
    """A one-layer fused module holding a copy of layer `layer`'s weights (None for peephole)."""
    cfg = model.cfg
    if cfg.cell == "peephole":
        return None
    inp = cfg.embed_dim if layer == 0 else cfg.hidden_size
    H = cfg.hidden_size
    if cfg.cell == "lstm":
        m = nn.LSTM(inp, H, 1, batch_first=True)
    elif cfg.cell == "gru":
        m = nn.GRU(inp, H, 1, batch_first=True)
    else:
        m = nn.RNN(inp, H, 1, nonlinearity="tanh", batch_first=True)
    m.load_state_dict({f"{n}_l0": t for n, t in model.layer_params(layer).items()})
    w = model.head.weight
    return m.to(device=w.device, dtype=w.dtype).eval()


def _lstm_cell_loop(f: np.ndarray, ig: np.ndarray, c0: np.ndarray) -> np.ndarray:
    """c_t = f_t * c_{t-1} + ig_t over time: f, ig [n, H] float32, c0 [H] -> c [n, H]."""
    c = np.empty_like(f)
    prev = c0
    mul = np.multiply
    for ft, igt, ct in zip(f, ig, c):  # iterating rows is cheaper than indexing them
        mul(ft, prev, out=ct)
        ct += igt
        prev = ct
    return c


def _np(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()


@torch.inference_mode()
def run_trace(model: nn.Module, ids: np.ndarray, sinks: Sequence[Sink], *, layers: Sequence[int] | None = None,
              kinds: Iterable[str] | None = None, chunk: int = 4096, progress: bool = False,
              vocab: Vocab | None = None) -> float:
    """Run the model over ids [T] and hand every chunk to the sinks. Returns the seconds spent.

    All layers run (upper layers need lower ones, the head needs the top); the kinds are computed
    only for `layers` (default all), and only `kinds` (default all: every sink then gets every
    kind of the cell) -- asking for h alone skips the gate recomputation. The model is put in
    eval mode for the call (dropout off) and its previous mode restored.
    """
    cfg = model.cfg
    layers = resolve_layers(cfg.num_layers, layers)
    kinds = resolve_kinds(cfg.cell, kinds)
    T = len(ids)
    if T == 0:
        raise CharlstmError("nothing to trace: the text is empty")
    if chunk < 1:
        raise CharlstmError(f"chunk must be at least 1, got {chunk}")
    hi = int(np.max(ids[:1 << 22])) if T else 0  # cheap sanity check on (a prefix of) the ids
    if hi >= cfg.vocab_size:
        raise CharlstmError(f"id {hi} is outside the model's vocabulary of {cfg.vocab_size}; wrong dataset for this run?")
    info = TraceInfo(cfg.cell, cfg.num_layers, cfg.hidden_size, layers, T, vocab)
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    try:
        for s in sinks:
            s.begin(info)
        _run(model, ids, sinks, set(layers), kinds, chunk, progress)
        for s in sinks:
            s.end()
    finally:
        model.train(was_training)
    return time.perf_counter() - t0


def _run(model: nn.Module, ids: np.ndarray, sinks: Sequence[Sink], want: set[int], kinds: list[str], chunk: int,
         progress: bool) -> None:
    cfg = model.cfg
    cell, H, L = cfg.cell, cfg.hidden_size, cfg.num_layers
    w = model.head.weight
    dev, dt = w.device, w.dtype
    mods = [_layer_module(model, l) for l in range(L)]
    # The sequential fused recurrence runs one layer at a time: small layers run it fastest on one
    # CPU thread (charlstm.runtime); the batched gate products keep torch's thread setting.
    seq_threads = step_threads(dev, max(model.layer_macs(l) for l in range(L)))
    params = [model.layer_params(l) for l in range(L)]
    # Carried state per layer: torch (h, c) [1, 1, H] for the fused modules; numpy c for the loop.
    # A text starts where the model's texts start (charlstm.model.begin).
    begin, _ = model.begin(1)
    h_state = [begin[0][l:l + 1].to(dt) for l in range(L)]
    c_state = [(begin[1] if len(begin) > 1 else torch.zeros_like(begin[0]))[l:l + 1].to(dt) for l in range(L)]
    c_np = [_np(c[0, 0]) for c in c_state]
    T = len(ids)
    k = min(TOP_K, cfg.vocab_size)
    bar = tqdm(total=T, unit="char", unit_scale=True, disable=None if progress else True, desc="trace")  # None: only on a terminal
    try:
        for start, stop in _chunks(ids, chunk, model.reset_id):
            n = stop - start
            if model.reset_id is not None and ids[start] == model.reset_id:
                for l in range(L):  # a record model reads <eot> from the zero state
                    h_state[l], c_state[l] = torch.zeros_like(h_state[l]), torch.zeros_like(c_state[l])
                    c_np[l] = np.zeros(H, np.float32)
            # ids of this chunk plus the next character (for next_prob), from the memmap/array
            chunk_ids = np.asarray(ids[start:min(stop + 1, T)], dtype=np.int64)
            x = model.embed(torch.from_numpy(chunk_ids[:n]).to(dev))  # [n, E]
            for l in range(L):
                x, got = _layer_chunk(cell, mods[l], params[l], x, l, h_state, c_state, c_np,
                                      kinds if l in want else [], seq_threads)
                if got is not None:
                    for s in sinks:
                        s.layer(start, l, got)
            logp = torch.log_softmax(model.head(x).float(), dim=-1)  # [n, V]
            probs = logp.exp()
            top_p, top_i = probs.topk(k, dim=-1)
            next_prob = np.full(n, np.nan, np.float32)
            nxt = torch.from_numpy(chunk_ids[1:]).to(dev)  # [n] or [n-1] at the very end
            next_prob[:len(nxt)] = _np(probs[torch.arange(len(nxt), device=dev), nxt])
            top_ids = np.full((n, TOP_K), -1, np.int64)
            top_probs = np.zeros((n, TOP_K), np.float32)
            top_ids[:, :k] = top_i.cpu().numpy()
            top_probs[:, :k] = _np(top_p)
            for s in sinks:
                s.head(start, chunk_ids[:n], next_prob, top_ids, top_probs)
            bar.update(n)
    finally:
        bar.close()


def _chunks(ids: np.ndarray, chunk: int, reset_id: int | None) -> list[tuple[int, int]]:
    """(start, stop) of each chunk: at most `chunk` ids, and a new chunk at every reset id."""
    T = len(ids)
    cuts = set(range(0, T, chunk))
    if reset_id is not None:
        for s in range(0, T, 1 << 22):  # bounded memory over a long memmap
            cuts.update((s + np.flatnonzero(np.asarray(ids[s:s + (1 << 22)]) == reset_id)).tolist())
    bounds = sorted(cuts) + [T]
    return list(zip(bounds[:-1], bounds[1:]))


def _layer_chunk(cell: str, mod: nn.Module | None, p: dict[str, Tensor], x: Tensor, l: int,
                 h_state: list[Tensor], c_state: list[Tensor], c_np: list[np.ndarray],
                 kinds: Sequence[str], seq_threads: int | None = None) -> tuple[Tensor, dict[str, np.ndarray] | None]:
    """One layer over one chunk: x [n, In] -> (outputs h [n, H] for the next layer, the requested
    kinds as float32 [n, H] arrays, or None when none are requested). Updates the carried state
    lists in place. seq_threads: torch threads for the step-by-step part (None: as is)."""
    h0 = h_state[l][0]  # [1, H]
    if cell == "peephole":
        with cpu_threads(seq_threads):
            out, (h, c), rec = cells.unroll(cell, x[None], (h0, c_state[l][0]), p, record=tuple(kinds))
        h_state[l], c_state[l] = h[None], c[None]
        return out[0], ({k: _np(v[0]) for k, v in rec.items()} if kinds else None)
    with cpu_threads(seq_threads):
        if cell == "lstm":
            out, (hn, cn) = mod(x[None], (h_state[l], c_state[l]))
            h_state[l], c_state[l] = hn, cn
        else:
            out, hn = mod(x[None], h_state[l])
            h_state[l] = hn
    hs = out[0]  # [n, H]
    if not kinds:
        return hs, None
    if cell == "rnn" or set(kinds) == {"h"}:
        return hs, {"h": _np(hs)}  # the fused outputs are h; no gate needed
    # Every step's input and previous output are known now: run the explicit cell with time as
    # the batch dimension.
    h_prev = torch.cat([h0, hs[:-1]], 0)
    if cell == "gru":
        r = cells.step(cell, x, (h_prev,), p)
        return hs, {k: _np(r[k]) for k in kinds}
    # LSTM: gates do not read c, so a zero previous cell gives exact gates and r["c"] == i*g.
    r = cells.step(cell, x, (h_prev, torch.zeros_like(h_prev)), p)
    f, o = _np(r["f"]), _np(r["o"])
    c = _lstm_cell_loop(f, _np(r["c"]), c_np[l])
    c_np[l] = c[-1].copy()
    known = {"c": c, "f": f, "o": o}
    out_k: dict[str, np.ndarray] = {}
    for k in kinds:
        out_k[k] = o * np.tanh(c) if k == "h" else known[k] if k in known else _np(r[k])
    return hs, out_k


# ----------------------------------------------------------------------------- public API
def trace_ids(model: nn.Module, vocab: Vocab, ids: np.ndarray, *, layers: Iterable[int] | str | None = None,
              kinds: Iterable[str] | str | None = None, chunk: int = 4096, dtype=np.float32,
              progress: bool = False, limit: int | None = None) -> Trace:
    """Trace an id array [T] (e.g. a dataset split memmap; only `limit` first ids when given).

    Returns a Trace whose arrays are "layer{l}.{kind}" -> [T, H] in `dtype`.
    """
    if vocab.size != model.cfg.vocab_size:
        raise CharlstmError(f"vocabulary of {vocab.size} symbols does not fit the model ({model.cfg.vocab_size})")
    ids = ids[:limit] if limit is not None else ids
    layers_ = resolve_layers(model.cfg.num_layers, layers)
    kinds_ = resolve_kinds(model.cfg.cell, kinds)
    sink = MemorySink(kinds_, dtype=dtype)
    secs = run_trace(model, ids, [sink], layers=layers_, kinds=kinds_, chunk=chunk, progress=progress, vocab=vocab)
    return sink.trace({"seconds": secs})


def trace_text(model: nn.Module, vocab: Vocab, text: str, *, layers: Iterable[int] | str | None = None,
               kinds: Iterable[str] | str | None = None, chunk: int = 4096, unknown: str = "error",
               dtype=np.float32, progress: bool = False) -> Trace:
    """Trace a text: encode it by charlstm.inputs' rule (unknown characters: "error" | "skip" |
    "replace"; a literal <eot> is the end-of-record symbol), then trace_ids."""
    ids = encode(vocab, text, unknown)
    if len(ids) == 0:
        raise CharlstmError("nothing to trace: the text is empty" if not text else
                            "nothing to trace: every character was skipped as unknown")
    return trace_ids(model, vocab, ids, layers=layers, kinds=kinds, chunk=chunk, dtype=dtype, progress=progress)


