"""Generation: sampling text from a model with O(1) work per character.

The prime is read once (the fused module over prime[:-1], then one step), and every generated
character costs exactly one step of the hand-fused cell (charlstm.sample.stepper) that carries the
state: no context is ever recomputed. `naive_generate` is the slow, obvious twin (re-runs the whole
model over the whole context at every step); tests check both give the same text for a fixed seed.

Clamps act on every step that predicts a generated character (the last prime character's step
included), not while the rest of the prime is read; clamp_prime=True clamps the whole prime too.

Owns: the generation loop, reading the prime, turning ids into text as they come (RowText) and
deciding when a sample ends. Does not know: files or the command line.
"""
from __future__ import annotations

import codecs
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from charlstm.errors import CharlstmError
from charlstm.runtime import cpu_threads, step_threads
from charlstm.sample.options import Generation, Sample, SampleOptions, fresh_seed
from charlstm.sample.rules import GumbelNoise, sample_next, temper
from charlstm.sample.stepper import BlockSampler, Stepper
from charlstm.units import check_unit
from charlstm.vocab import EOT, Vocab

PRIME_CHUNK = 4096  # prime characters per fused forward call: bounds memory for long primes


def read_prime(model, ids: Sequence[int] | np.ndarray, state: tuple[Tensor, ...] | None = None,
               chunk: int = PRIME_CHUNK) -> tuple[Tensor, ...]:
    """Run ids (a prime, [P]) through the model's recurrent layers once, in chunks -> the state
    (tuple of [L, 1, H]). Uses the fused module (fast over many characters; a record model resets at
    each <eot>, charlstm.model.read); no head."""
    dev = model.head.weight.device
    state = state if state is not None else model.init_state(1, device=dev)
    ids = np.asarray(ids, dtype=np.int64)
    for s in range(0, len(ids), chunk):
        x = torch.from_numpy(ids[s:s + chunk]).to(dev)[None]
        _, state = model.read(x, state, logits=False)
    return state


def start_id(vocab: Vocab) -> int:
    """What an empty prime starts from: <eot> (the start of a new document/record) when the
    vocabulary has it, else a newline."""
    return vocab.eot_id if vocab.eot_id is not None else int(vocab.encode("\n")[0])


def start_context(model, vocab: Vocab, prime: list[int]) -> list[int]:
    """The ids generation reads before its first new character: a record model reads the prime as
    the start of a record (<eot> first, charlstm.model.context); an empty prime starts from
    `start_id`."""
    return model.context(prime) or [start_id(vocab)]


# ----------------------------------------------------------------------------- text and stopping
class RowText:
    """Turns one row's generated ids into text as they come, and decides when the row ends.

    Byte units decode incrementally (codecs), so a multi-byte UTF-8 character appears, whole, when
    its last byte arrives. feed(ids) -> the newly visible text; `reason` becomes "eot" or "stop"
    when the row has ended (later ids are ignored); finish() flushes an incomplete byte sequence.
    The text is kept as a list of pieces (joined once, at the end) plus, when there are stop
    strings, a short tail to search: no step costs more than the step before it.
    """

    def __init__(self, vocab: Vocab, stop: Sequence[str] = (), stop_at_eot: bool = True):
        self.symbols, self.stop = vocab.symbols, tuple(stop)
        self.keep = max((len(x) for x in self.stop), default=1) - 1  # tail length a stop can start in
        self.eot = vocab.eot_id if stop_at_eot else None
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace") if vocab.units == "byte" else None
        self.parts: list[str] = []
        self.tail = ""
        self.ids: list[int] = []
        self.reason: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def _piece(self, i: int) -> str:
        if self.decoder is None:
            return self.symbols[i]
        if i < 256:
            return self.decoder.decode(bytes((i,)))
        return self.decoder.decode(b"", final=True) + EOT  # <eot> kept (not stopping at it)

    def feed(self, ids: Iterable[int]) -> str:
        new = []
        for i in ids:
            if self.reason is not None:
                break
            if i == self.eot:
                self.reason = "eot"
                if self.decoder is not None:
                    new.append(self.decoder.decode(b"", final=True))
                break
            self.ids.append(i)
            piece = self._piece(i)
            if self.stop and piece:
                piece = self._check_stop(piece)
            new.append(piece)
        out = "".join(new)
        if out:
            self.parts.append(out)
        return out

    def _check_stop(self, piece: str) -> str:
        """Search the stops in (tail + piece); any occurrence ends in this piece, since earlier ones
        were caught before. Returns the piece, cut after the first stop found."""
        window = self.tail + piece
        ends = [p + len(x) for x in self.stop if (p := window.find(x)) >= 0]
        if ends:
            self.reason = "stop"
            return piece[:min(ends) - len(self.tail)]
        self.tail = window[len(window) - self.keep:] if self.keep else ""
        return piece

    def finish(self) -> str:
        """End the row (length reached): flush the byte decoder -> any last visible text."""
        if self.reason is None:
            self.reason = "length"
            if self.decoder is not None:
                tail = self.decoder.decode(b"", final=True)
                if tail:
                    self.parts.append(tail)
                return tail
        return ""

    def sample(self) -> Sample:
        return Sample(text=self.text, ids=list(self.ids), stop_reason=self.reason or "length")


CHECK_EVERY = 32  # batched generation looks at the rows' text (stops, <eot>) every this many steps


def _prepare(model, vocab: Vocab, prime_ids: Sequence[int] | np.ndarray, opts: SampleOptions) -> tuple[list[int], int]:
    opts.validate()
    cfg = model.cfg
    for c in opts.clamp:
        check_unit(c, cfg.cell, cfg.num_layers, cfg.hidden_size)
    prime = [int(i) for i in np.asarray(prime_ids, dtype=np.int64).tolist()]
    bad = [i for i in prime if not 0 <= i < cfg.vocab_size]
    if bad:
        raise CharlstmError(f"prime id {bad[0]} is outside the vocabulary (size {cfg.vocab_size})")
    return prime, (opts.seed if opts.seed is not None else fresh_seed())


def generate(model, vocab: Vocab, prime_ids: Sequence[int] | np.ndarray, opts: SampleOptions,
             on_text: Callable[[str], None] | None = None, threads: int | None | str = "auto",
             blocks: bool | None = None) -> Generation:
    """Generate opts.num_samples continuations of the prime together, as one batch.

    model: a CharRNN (eval mode). prime_ids: [P] ids (may be empty: start from `start_id`).
    on_text: called with each newly visible piece of text as it is generated (one sample only).
    threads: CPU threads while generating ("auto": charlstm.runtime.step_threads; None: torch's setting;
    a number: that many).
    blocks: generate in BlockSampler blocks (a CUDA graph per block on a GPU); None: on CUDA only.
    Either way the text is the same for the same seed.
    The prime is read once; each generated character is one Stepper step (O(1) work).
    """
    if threads == "auto":
        threads = step_threads(model.head.weight.device, opts.num_samples * model.step_macs())
    with cpu_threads(threads):
        return _generate(model, vocab, prime_ids, opts, on_text, blocks)


def _generate(model, vocab: Vocab, prime_ids, opts: SampleOptions, on_text, blocks: bool | None = None) -> Generation:
    prime, seed = _prepare(model, vocab, prime_ids, opts)
    N, length = opts.num_samples, opts.length
    dev = model.head.weight.device
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    context = start_context(model, vocab, prime)
    rows = [RowText(vocab, opts.stop, opts.stop_at_eot) for _ in range(N)]
    with torch.inference_mode():
        st = Stepper(model, N, temperature=1.0 if opts.greedy else opts.temperature, unk_id=vocab.unk_id,
                     clamp=opts.clamp)
        if opts.clamp_prime and st.any_clamp:
            for i in context[:-1]:
                st.step(torch.full((N,), i, dtype=torch.long, device=dev))
        elif len(context) > 1:
            st.set_state(read_prime(model, context[:-1]))
        st.steps = 0
        if length == 0:
            return Generation(samples=[r.sample() for r in rows], seed=seed, steps=0, prime_ids=prime)
        first = torch.full((N,), context[-1], dtype=torch.long, device=dev)
        # Without filters the noise rides in the head's bias (one add per block of steps, not per
        # step) and choosing is one argmax; filters need the clean logits, then the noise.
        fold = not opts.greedy and opts.top_k is None and opts.top_p is None
        noise = None if opts.greedy else GumbelNoise((N, st.V), gen, dev, st.logits.dtype)
        biases, j = None, 0

        def step(ids: Tensor) -> Tensor:
            nonlocal biases, j
            if not fold:
                return st.step(ids)
            if biases is None or j == len(biases):
                biases, j = (noise.next_block() + st.bh).unbind(0), 0  # k steps of bias + noise [N, V]
            j += 1
            noise.skip()
            return st.step(ids, head_bias=biases[j - 1])

        def choose(logits: Tensor) -> Tensor:
            if fold:
                return torch.argmax(logits, dim=-1, out=st.nxt)
            return sample_next(logits, top_k=opts.top_k, top_p=opts.top_p, greedy=opts.greedy,
                               gumbel=None if noise is None else noise.next(), out=st.nxt)

        if blocks is None:
            blocks = dev.type == "cuda"
        if blocks and st.plain is not None and not st.any_clamp and (fold or opts.greedy):
            _generate_blocks(st, first, noise, rows, length, on_text, graph=dev.type == "cuda")
            return _finish(rows, on_text, seed, st.steps, prime)
        logits = step(first)
        nxt = st.nxt
        if N == 1:
            row, lnp = rows[0], st.logits_np
            for t in range(length):
                if lnp is not None and (fold or opts.greedy):
                    i = int(lnp.argmax())  # same first-maximum rule as torch.argmax
                else:
                    i = int(choose(logits).item())
                piece = row.feed((i,))
                if piece and on_text is not None:
                    on_text(piece)
                if row.reason is not None or t == length - 1:
                    break
                logits = step(i if lnp is not None else nxt)
        else:
            buf = torch.empty(N, length, dtype=torch.long, device=dev)
            done_to = 0
            for t in range(length):
                choose(logits)
                buf[:, t].copy_(nxt)
                if (t + 1) % CHECK_EVERY == 0 or t == length - 1:
                    chunk = buf[:, done_to:t + 1].tolist()
                    done_to = t + 1
                    for r, ids in zip(rows, chunk):
                        r.feed(ids)
                    if all(r.reason is not None for r in rows):
                        break
                if t == length - 1:
                    break
                logits = step(nxt)
    return _finish(rows, on_text, seed, st.steps, prime)


def _finish(rows: list[RowText], on_text, seed: int, steps: int, prime: list[int]) -> Generation:
    for r in rows:
        tail = r.finish()
        if tail and on_text is not None and len(rows) == 1:
            on_text(tail)
    return Generation(samples=[r.sample() for r in rows], seed=seed, steps=steps, prime_ids=prime)


def _generate_blocks(st: Stepper, first: Tensor, noise: GumbelNoise | None, rows: list[RowText], length: int,
                     on_text, graph: bool) -> None:
    """The generation loop in BlockSampler blocks of one noise block each (so the noise, and so the
    text, is exactly that of the step-by-step loop); the rows read each block's ids at once."""
    K = noise.block if noise is not None else 64
    bs = BlockSampler(st, first, K, graph)
    done = 0
    while done < length:
        ids = bs.run(noise.next_block() if noise is not None else None)
        if noise is not None:
            noise.skip(K)
        take = min(K, length - done)
        for r, chunk in zip(rows, ids[:, :take].tolist()):
            piece = r.feed(chunk)
            if piece and on_text is not None and len(rows) == 1:
                on_text(piece)
        done += take
        if all(r.reason is not None for r in rows):
            break


def naive_generate(model, vocab: Vocab, prime_ids: Sequence[int] | np.ndarray, opts: SampleOptions) -> Generation:
    """The slow, obvious twin of `generate`: at every step, run the full model over the whole
    context from the start and sample from the last position. Same seed -> same text as
    `generate` (up to float rounding). O(T) work per character: for tests and benchmarks only."""
    prime, seed = _prepare(model, vocab, prime_ids, opts)
    if opts.clamp:
        raise ValueError("naive_generate does not clamp")
    N, length = opts.num_samples, opts.length
    dev = model.head.weight.device
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    rows = [RowText(vocab, opts.stop, opts.stop_at_eot) for _ in range(N)]
    ctx = torch.tensor(start_context(model, vocab, prime), dtype=torch.long, device=dev)[None].expand(N, -1)
    noise = GumbelNoise((N, model.cfg.vocab_size), gen, dev, model.head.weight.dtype)
    steps = 0
    with torch.inference_mode():
        for t in range(length):
            logits, _ = model.read(ctx)
            steps += 1
            lg = temper(logits[:, -1], 1.0 if opts.greedy else opts.temperature, vocab.unk_id)
            nxt = sample_next(lg, top_k=opts.top_k, top_p=opts.top_p, greedy=opts.greedy,
                              gumbel=None if opts.greedy else noise.next())
            for r, i in zip(rows, nxt.tolist()):
                r.feed((i,))
            if all(r.reason is not None for r in rows):
                break
            ctx = torch.cat([ctx, nxt[:, None]], 1)
    for r in rows:
        r.finish()
    return Generation(samples=[r.sample() for r in rows], seed=seed, steps=steps, prime_ids=prime)
