"""The Python API: `charlstm.load(run)` returns a `Model` for generation, scoring and tracing.

    import charlstm
    m = charlstm.load("stdlib")                       # best checkpoint, on the CPU
    print(m.generate("def ", length=200, temperature=0.8, seed=1))
    m.generate("def ", num_samples=4, greedy=True)     # -> list of 4 strings, one batch
    m.score("def f(x):\\n    return x\\n")              # -> bits per character (float)
    m.score(text, dynamic=True)                        # dynamic evaluation: adapts while reading
    m.evaluate(split="val", baseline=True).baseline    # what xz -9e achieves on the same text
    m.generate("def ", adapt=open("mine.py").read())   # samples in the style of mine.py
    m.generate("def ", clamp=["layer1.c:37=1.0"])     # steering: hold a unit while generating
    m.generate("def ", clamp="dict:12=2.0")           # ... or a feature of the run's dictionary
    t = m.trace("def f(x):\\n")                        # neuron traces (charlstm.trace.trace_ids)

Every text goes through charlstm.inputs (the one rule for <eot>, unknown characters and encodings),
so the API and every command read the same text as the same ids. The command line (`charlstm
sample`, `eval`, `trace`, `neurons`) loads models through `load` too.
Owns: Model and load. Does not know: the command line.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from charlstm.baseline import compressor_baseline
from charlstm.checkpoint import load_model
from charlstm.dynamic import DynamicSettings, adapted, dynamic_score_ids, settings_from
from charlstm.errors import CharlstmError
from charlstm.inputs import encode, split_ids
from charlstm.runtime import resolve_device
from charlstm.sample import Generation, SampleOptions, generate
from charlstm.score import CHUNK, ScoreResult, check_ids, score_ids
from charlstm.trace import Trace, trace_ids
from charlstm.units import ClampSpec, clamps
from charlstm.vocab import Vocab


def load(run_or_path: str | os.PathLike, checkpoint: str = "best", device: str | torch.device = "cpu") -> "Model":
    """Load a run (a name under checkpoints/ or a run folder) -> Model.

    checkpoint: "best" (model.safetensors), "last" (last.safetensors) or a safetensors file path.
    device: cpu, cuda, cuda:N, mps or auto. Tampered or truncated weights are refused (checksum)
    with a CharlstmError.
    """
    dev = resolve_device(device)
    module, vocab, cfg = load_model(run_or_path, checkpoint=checkpoint, device=dev)
    return Model(module, vocab, cfg, path=Path(str(run_or_path)))


class Model:
    """A loaded model: `.module` (the CharRNN, eval mode), `.vocab` (Vocab), `.config` (the run's
    config.json as a dict, plus checkpoint_file / checkpoint_meta), `.device`."""

    def __init__(self, module: torch.nn.Module, vocab: Vocab, config: dict[str, Any], path: Path | None = None):
        self.module, self.vocab, self.config, self.path = module, vocab, config, path

    def __repr__(self) -> str:
        c = self.module.cfg
        return (f"<charlstm.Model {self.path or ''} {c.cell} {c.num_layers}x{c.hidden_size} "
                f"vocab {self.vocab.size} ({self.vocab.units}) on {self.device}>")

    @property
    def device(self) -> torch.device:
        return self.module.head.weight.device

    # -------------------------------------------------------------- text <-> ids
    def encode(self, text: str, unknown: str = "error") -> np.ndarray:
        """Text -> ids [T] (charlstm.inputs.encode: a literal <eot> is the end-of-record symbol;
        unknown characters: "error" names them, "skip" or "replace" with <unk>)."""
        return encode(self.vocab, text, unknown)

    def decode(self, ids) -> str:
        return self.vocab.decode(ids)

    # -------------------------------------------------------------- generation
    def options(self, *, length: int = 500, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, greedy: bool = False, num_samples: int = 1, seed: int | None = None,
                stop: str | Iterable[str] | None = None, stop_at_eot: bool = True, clamp: ClampSpec = None,
                clamp_prime: bool = False) -> SampleOptions:
        """Build and check SampleOptions for this model (clamps are checked against its shape)."""
        c = self.module.cfg
        stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
        opts = SampleOptions(length=length, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                             num_samples=num_samples, seed=seed, stop=stops, stop_at_eot=stop_at_eot,
                             clamp=clamps(clamp, c.cell, c.num_layers, c.hidden_size, resolve=self.resolve),
                             clamp_prime=clamp_prime)
        opts.validate()
        return opts

    def resolve(self, spec):
        """A dictionary feature spec (charlstm.units.DictUnit "dict:12", DictClamp "dict:12=2.0") ->
        what acts on this model (charlstm.dictionary.resolve: the run's dictionary, checked against
        these weights)."""
        from charlstm.dictionary import resolve
        from charlstm.runs import resolve_run

        if self.path is None:
            raise CharlstmError(f"'{spec}' needs the run's dictionaries, and this model has no run folder")
        return resolve(resolve_run(self.path), spec, self.module)

    def dictionaries(self) -> list:
        """The run's dictionaries trained on these weights (charlstm.dictionary.load_all)."""
        from charlstm.dictionary import load_all
        from charlstm.runs import resolve_run

        return [] if self.path is None else load_all(resolve_run(self.path), self.module)

    def generate_full(self, prime: str = "", *, unknown: str = "error", on_text: Callable[[str], None] | None = None,
                      threads: int | None | str = "auto", adapt: str | None = None,
                      adapt_settings: bool | DynamicSettings | dict = True, **kw) -> Generation:
        """Like `generate`, but returns the Generation: samples with ids and stop reasons, the seed."""
        opts = self.options(**kw)
        ids = self.encode(prime, unknown)
        if adapt is None:
            return generate(self.module, self.vocab, ids, opts, on_text=on_text, threads=threads)
        with self.adapted(adapt, unknown=unknown, dynamic=adapt_settings):
            return generate(self.module, self.vocab, ids, opts, on_text=on_text, threads=threads)

    def generate(self, prime: str = "", length: int = 500, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, greedy: bool = False, num_samples: int = 1, seed: int | None = None,
                 stop: str | Iterable[str] | None = None, clamp: ClampSpec = None, *, stop_at_eot: bool = True,
                 clamp_prime: bool = False, unknown: str = "error", on_text: Callable[[str], None] | None = None,
                 adapt: str | None = None, adapt_settings: bool | DynamicSettings | dict = True) -> str | list[str]:
        """Continue `prime` -> the generated text (prime excluded); a list of num_samples strings
        when num_samples > 1 (generated together as one batch).

        length: units to generate (characters; bytes for byte models). temperature > 0; top_k >= 1
        and top_p in (0, 1] filter the distribution; greedy takes the most likely symbol. seed: the
        same seed gives the same text. stop: a string or strings; a sample ends after writing one
        (it is kept). stop_at_eot: end a sample at <eot> (records/tweets). clamp: steering, e.g.
        "layer1.c:37=1.0" or {"layer1.c:37": 1.0} (layers count from 0), or a dictionary feature's
        activation "dict:12=2.0" (charlstm.dictionary.steer); held on every step that
        predicts a generated character, and over the whole prime too with clamp_prime=True.
        on_text(piece) receives the text as it is generated (num_samples == 1). adapt: a text to adapt
        the weights to by dynamic evaluation first (see `adapted`; adapt_settings: True for the
        defaults, or DynamicSettings / a dict of step, decay, segment), so the samples continue in its
        style; the trained weights are back afterwards.
        """
        g = self.generate_full(prime, unknown=unknown, on_text=on_text, adapt=adapt, adapt_settings=adapt_settings,
                               length=length, temperature=temperature,
                               top_k=top_k, top_p=top_p, greedy=greedy, num_samples=num_samples, seed=seed,
                               stop=stop, stop_at_eot=stop_at_eot, clamp=clamp, clamp_prime=clamp_prime)
        texts = [s.text for s in g.samples]
        return texts[0] if num_samples == 1 else texts

    # -------------------------------------------------------------- scoring
    def split(self, name: str) -> np.ndarray:
        """The ids of a split ("train", "val", "test") of the run's dataset (checked: same vocabulary,
        checksum), as a read-only memmap."""
        return split_ids(self.config, self.vocab, name)

    def evaluate(self, text: str | None = None, *, split: str | None = None, ids=None, unknown: str = "error",
                 per_char: bool = False, top: int = 0, chunk: int = CHUNK,
                 progress: Callable[[int], None] | None = None, dynamic: bool | DynamicSettings | dict = False,
                 baseline: bool = False) -> ScoreResult:
        """Score a text, a split of the run's dataset ("val", "test", "train") or ids -> ScoreResult
        (.bpc, .bits, .scored; with per_char/top: .surprisal [scored] and .top_ids/.top_probs).

        dynamic: score by dynamic evaluation (charlstm.dynamic: the weights adapt to the text while
        it is read, each symbol still scored before the weights have seen it; the model's weights are
        the same afterwards): True for the defaults, or DynamicSettings / a dict of step, decay,
        segment. baseline: also compress the scored symbols with xz -9e (charlstm.baseline) ->
        .baseline (.bpc, in the same units over the same count)."""
        given = sum(x is not None for x in (text, split, ids))
        if given != 1:
            raise CharlstmError("score exactly one of: a text, a split, or ids")
        settings = settings_from(dynamic)
        if text is not None:
            ids = self.encode(text, unknown)
        elif split is not None:
            ids = self.split(split)
        if settings is None:
            r = score_ids(self.module, ids, top=top, per_char=per_char, chunk=chunk, progress=progress)
        else:
            r = dynamic_score_ids(self.module, ids, settings, top=top, per_char=per_char, progress=progress)
            r.dynamic = settings.as_dict()
        r.units = self.vocab.units
        if baseline:
            r.baseline = compressor_baseline(self.vocab, check_ids(self.module, ids), r.first)
        return r

    def score(self, text: str, unknown: str = "error", dynamic: bool | DynamicSettings | dict = False) -> float:
        """Bits per character of text (every character after the first, exact; bits per byte for
        byte models); dynamic=True: by dynamic evaluation (see `evaluate`)."""
        return self.evaluate(text, unknown=unknown, dynamic=dynamic).bpc

    @contextmanager
    def adapted(self, text: str | None = None, *, ids=None, unknown: str = "error",
                dynamic: bool | DynamicSettings | dict = True,
                progress: Callable[[int], None] | None = None) -> Iterator[ScoreResult]:
        """Inside the block the model's weights are adapted to a text (or ids) by dynamic
        evaluation, so generate/score/trace use them; yields the ScoreResult of reading it. The
        trained weights are back when the block ends (on disk they never change).

            with m.adapted(open("mine.py").read()) as r:
                print(r.bpc, m.generate("def ", length=200))
        """
        if (text is None) == (ids is None):
            raise CharlstmError("adapt to exactly one of: a text or ids")
        settings = settings_from(dynamic)
        if settings is None:
            raise CharlstmError("adapting is dynamic evaluation: give dynamic=True, a dict or DynamicSettings")
        ids = self.encode(text, unknown) if text is not None else ids
        with adapted(self.module, ids, settings, progress=progress) as r:
            r.units, r.dynamic = self.vocab.units, settings.as_dict()
            yield r

    # -------------------------------------------------------------- tracing
    def trace(self, text: str, *, unknown: str = "error", **kw) -> Trace:
        """Neuron traces of text (charlstm.trace.trace_ids on self.encode(text); keyword arguments
        layers, kinds, chunk, dtype, progress pass through)."""
        ids = self.encode(text, unknown)
        if len(ids) == 0:
            raise CharlstmError("nothing to trace: the text is empty" if not text else
                                "nothing to trace: every character was skipped as unknown")
        return trace_ids(self.module, self.vocab, ids, **kw)
