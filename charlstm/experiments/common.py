"""What the four synthetic experiments share: writing the task's dataset, training the small model
with charlstm.train, greedy completion the way a user runs it, tracing fresh records, and the
result object each experiment returns.

Record boundaries. Synthetic datasets are records ending in <eot>; a model of records reads every
record from the start of a record (charlstm.model, "Records"), in training as in sampling. So the
completions here are what a user gets: `charlstm.load(run).generate(prime, greedy=True)` (the same
path as `charlstm sample RUN --prime ... --greedy`) on a freshly loaded run, from a fresh start.
Training runs on one CPU thread: for models this small, more threads only add synchronisation (and
on a busy machine cost several times the single-thread time).
Owns: those shared steps. Does not know: any one task.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

import charlstm
from charlstm.checkpoint import load_model
from charlstm.config import ModelConfig, TrainConfig
from charlstm.corpora.build import EncodeOptions, dataset_dir, write_records
from charlstm.corpora.synthetic import write_synthetic
from charlstm.experiments.report import Check
from charlstm.inputs import step_symbols
from charlstm.runtime import one_thread
from charlstm.trace import trace_ids
from charlstm.train import train
from charlstm.vocab import Vocab

Log = Callable[[str], None]


@dataclass
class FoundUnit:
    """A unit an experiment found: its spec (``layer0.c:1``), the score it was found by, and what
    that score means (``|r| with count:a-b``)."""

    name: str
    score: float
    criterion: str
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class ExperimentResult:
    """What `run_experiment` returns. metrics: the measured numbers by name; checks: the acceptance
    criteria; units: the neurons found; report_md / report_html / run_dir: where things were written."""

    name: str
    seed: int
    metrics: dict[str, Any]
    checks: list[Check]
    units: list[FoundUnit]
    run_dir: Path
    report_md: Path
    report_html: Path
    seconds: float
    #: what the terminal shows: (title, characters, values [T], kind) of the main unit on a sequence
    demo: tuple[str, list[str], np.ndarray, str] | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def summary(self) -> str:
        """A few lines for the terminal: the checks and the units found."""
        lines = [f"experiment {self.name} (seed {self.seed}) in {self.seconds:.0f}s: "
                 f"{'all checks passed' if self.passed else 'SOME CHECKS FAILED'}"]
        lines += ["  " + c.line() for c in self.checks]
        lines += [f"  unit {u.name}: {u.criterion} = {u.score:.3f}" for u in self.units]
        lines.append(f"  report: {self.report_md} and {self.report_html.name}; run: {self.run_dir}")
        return "\n".join(lines)


def stderr_log(quiet: bool) -> Log:
    """A progress printer for the experiment's stages (to stderr; silent when quiet)."""
    start = time.monotonic()

    def log(msg: str) -> None:
        if not quiet:
            print(f"[{time.monotonic() - start:5.1f}s] {msg}", file=sys.stderr, flush=True)

    return log


def train_task(task: str, out: Path, seed: int, mcfg: ModelConfig, tcfg: TrainConfig, num: int,
               log: Log, records: Sequence[str] | None = None):
    """Write the task's dataset under out/data and train the model into out/run (both replaced).

    records: the sequences to use instead of charlstm.corpora.synthetic's (e.g. with some strings
    held out); they get <eot> and splits like any synthetic dataset. Returns (model, vocab, dataset,
    TrainResult)."""
    data_dir = out / "data"
    if records is None:
        ds = write_synthetic(task, task, num=num, seed=seed, data_dir=data_dir, force=True)
    else:
        target = dataset_dir(task, data_dir, force=True)
        ds = write_records(target, list(records), EncodeOptions(seed=seed), source={"kind": "synthetic", "task": task},
                           options={"num": len(records)}, stats={}, force=True, what="sequences")
    log(f"dataset {ds.name}: {ds.meta['splits']['train']['tokens']:,} training characters, vocabulary {ds.vocab.size}")
    with one_thread():
        res = train(ds, out / "run", mcfg, tcfg, force=True, quiet=True)
    log(f"trained {mcfg.cell} {mcfg.num_layers}x{mcfg.hidden_size}: {res.steps} steps in {res.elapsed:.1f}s, "
        f"best validation {res.best_val_bpc:.4f} bpc")
    model, vocab, _ = load_model(out / "run")
    return model, vocab, ds, res


def record_ids(vocab: Vocab, records: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """<eot> + each record + <eot> as ids [T] int64, and the record index of each step [T] (-1 on
    the leading <eot>; a record's closing <eot> belongs to it)."""
    ids, which = [vocab.eot_id], [-1]
    for k, r in enumerate(records):
        enc = vocab.encode(r, unknown="error").tolist()
        ids += enc + [vocab.eot_id]
        which += [k] * (len(enc) + 1)
    return np.asarray(ids, dtype=np.int64), np.asarray(which, dtype=np.int64)


def complete(run: Path, primes: Sequence[str], max_new: int | Sequence[int]) -> list[str]:
    """Greedy completion of each prime until <eot> or max_new characters, through the user's path:
    the run loaded from disk with charlstm.load, each prime generated from a fresh start."""
    model = charlstm.load(run)
    limits = [max_new] * len(primes) if isinstance(max_new, int) else list(max_new)
    return [model.generate(p, length=n, greedy=True) for p, n in zip(primes, limits)]


def trace_records(model, vocab: Vocab, records: Sequence[str]):
    """Trace fresh records written one after another (each read from the start of a record):
    (Trace, symbols [T], record index [T]). The trace covers every layer and kind."""
    ids, which = record_ids(vocab, records)
    return trace_ids(model, vocab, ids), step_symbols(vocab, ids), which


def model_summary(mcfg: ModelConfig, tcfg: TrainConfig, res, num: int) -> list[tuple[str, str]]:
    """Rows for the report's settings table."""
    return [("model", f"{mcfg.cell} {mcfg.num_layers} layer(s) x {mcfg.hidden_size} units, embedding {mcfg.embed_dim}"),
            ("parameters", f"{res.num_parameters:,}"),
            ("data", f"{num:,} sequences (95% train, 5% validation)"),
            ("training", f"{res.steps} steps of {tcfg.batch_size} x {tcfg.seq_len} characters, AdamW lr {tcfg.lr:g} "
                         f"cosine to {tcfg.min_lr:g}, {res.elapsed:.1f}s on one CPU thread"),
            ("validation", f"{res.best_val_bpc:.4f} bits per character")]
