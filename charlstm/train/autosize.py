"""The best model per CPU-second: size, batch, learning rate and schedule for a wall-clock budget.

    from charlstm.train.autosize import plan, describe
    model_overrides, train_overrides = plan(ds, budget_s=300, device="cpu", threads=2)
    mcfg, tcfg = build_configs(None, None, {**model_overrides, **train_overrides})
    train(ds, run_dir, mcfg, tcfg)       # what `charlstm train DATASET --time-budget 5m` does

The rule (calibrated by measurement on a 2-core CPU, docs/benchmarks.md "Quality per CPU-second"):
in a budget of minutes a character model is limited by how many optimizer steps and characters it
sees, not by its capacity, so

1. measure, with a few real training steps each (forward, backward, clip, AdamW on random data), how
   many characters per second each rung of a ladder of LSTM sizes (1x128, 1x192, 1x256, ... 3x1024)
   trains at on this device and thread count;
2. predict, for each rung, the optimizer steps and characters it would see in the training time
   left (the budget minus this calibration and the final exact evaluation), and take the largest
   rung that still gets at least MIN_STEPS steps and CHARS_PER_PARAM characters per parameter, and
   has no more parameters than the corpus has characters (the smallest rung always qualifies);
3. batch: the smallest batch whose throughput is within BATCH_SLACK of the best measured one (on a
   CPU, small batches train at nearly the speed of large ones and give more steps per character);
4. learning rate: high for narrow single-layer models, lower for wider and deeper ones (Adam with
   gradient clipping tolerates 1e-2 at 128 units), a short linear warm-up, and a cosine decay to
   lr / 100 that the trainer anneals by elapsed / budget, so it ends exactly when the budget does;
5. evaluation: the exact validation pass costs time inside the budget, so budgets under 10 minutes
   get only the final one, and longer ones periodic evaluations taking at most EVAL_SHARE of it;
   dropout only when the run would see the training split many times over.

The time spent calibrating is taken from the budget: the returned `time_budget` is what is left.
Everything is deterministic given the measured rates: pass `rate=` (a function of a candidate)
to plan without measuring (tests do).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F

from charlstm.config import ModelConfig
from charlstm.dataset import open_dataset
from charlstm.errors import CharlstmError
from charlstm.model import CharRNN, detach_state
from charlstm.precision import BF16_MARGIN, BF16_MIN_MACS, PRECISIONS, autocast, cpu_has_bf16

# Ladder of (layers, hidden) in order of cost. Single-layer first: with few steps they learn fastest.
LADDER: tuple[tuple[int, int], ...] = ((1, 128), (1, 192), (1, 256), (1, 384), (1, 512), (2, 512), (2, 768),
                                       (3, 768), (3, 1024))
CPU_SEQ_LEN = 32  # short chunks: more steps per character (measured better at equal characters seen)
GPU_SEQ_LEN = 64
CPU_BATCHES = (16, 32, 64)
GPU_BATCHES = (64, 128, 256)
MIN_STEPS = 4000  # a larger rung must still get this many optimizer steps ...
CHARS_PER_PARAM = 10.0  # ... and see this many training characters per parameter
MAX_PARAMS_PER_TRAIN_CHAR = 1.0  # ... and have no more parameters than the training split has characters
BATCH_SLACK = 0.6  # smallest batch with at least this fraction of the best measured throughput
EVAL_SHARE = 0.03  # periodic evaluations may use at most this share of the budget
PERIODIC_EVAL_MIN_BUDGET = 600.0  # seconds: shorter runs evaluate once, at the end
EVAL_SPEEDUP = 3.0  # an evaluation pass runs at about this multiple of the training speed
CALIB_SHARE = 0.04  # calibration stops measuring new candidates after this share of the budget
CALIB_STEP_SECONDS = 0.25  # each measurement times at least this long (after one warm-up step)


@dataclass(frozen=True)
class Candidate:
    """A model shape and batch to time: `num_layers` x `hidden_size` LSTM, batch x seq_len chunks."""

    num_layers: int
    hidden_size: int
    embed_dim: int
    batch_size: int
    seq_len: int
    vocab_size: int
    precision: str = "fp32"  # fp32 or bf16 (autocast), as the trainer would run it
    cell: str = "lstm"

    def model_config(self) -> ModelConfig:
        return ModelConfig(cell=self.cell, vocab_size=self.vocab_size, embed_dim=self.embed_dim,
                           hidden_size=self.hidden_size, num_layers=self.num_layers)

    @property
    def parameters(self) -> int:
        """Trainable parameters of the CharRNN of this shape (embedding, LSTM, head)."""
        E, H, L, V = self.embed_dim, self.hidden_size, self.num_layers, self.vocab_size
        lstm = 4 * H * (E + H) + (L - 1) * 4 * H * 2 * H + L * 8 * H
        return V * E + lstm + H * V + V

    @property
    def macs(self) -> int:
        """Multiply-adds per character of a forward step (LSTM layers and head)."""
        E, H, L, V = self.embed_dim, self.hidden_size, self.num_layers, self.vocab_size
        return 4 * H * (E + H) + (L - 1) * 4 * H * 2 * H + H * V

    @property
    def chars_per_step(self) -> int:
        return self.batch_size * self.seq_len


Rate = Callable[[Candidate], float]  # training characters per second of a candidate


@dataclass
class Plan:
    """What plan() decided, and why (measured rates and the predicted steps of each rung)."""

    model: dict[str, Any]
    train: dict[str, Any]
    rates: dict[str, float] = field(default_factory=dict)  # "LxH@B" -> chars/s
    expected_steps: int = 0
    expected_chars: float = 0.0
    calibration_seconds: float = 0.0
    reason: str = ""


def embed_dim_for(hidden: int) -> int:
    """Embedding size: 32 for narrow models, 64 from 256 units (the embedding is a cheap gather)."""
    return 32 if hidden < 256 else 64


def lr_for(layers: int, hidden: int) -> float:
    """Peak AdamW learning rate: 1e-2 at 1x128, falling as 1/sqrt(width) and by 2.5x per extra
    layer (2x128 at 1e-2 failed to learn at all in our measurements; 1x128 at 1e-2 and 2e-2 did
    equally well)."""
    return 1e-2 * math.sqrt(128 / hidden) / (2.5 ** (layers - 1))


def meta_of(dataset: Any) -> Mapping[str, Any]:
    """A dataset's meta.json dict from a Dataset, a dict, or a dataset name/path."""
    if isinstance(dataset, Mapping):
        return dataset
    meta = getattr(dataset, "meta", None)
    if meta is not None:
        return meta
    return open_dataset(dataset, verify=False).meta


def measure_rate(c: Candidate, device: str | torch.device = "cpu", min_seconds: float = CALIB_STEP_SECONDS,
                 min_steps: int = 3, max_steps: int = 10) -> float:
    """Training chars/s of candidate c: real CharRNN steps (forward over [B, T], cross-entropy,
    backward, clip_grad_norm_, AdamW; in c.precision, as the trainer) on random ids, after
    one warm-up step (which also prepares oneDNN/cuDNN). Each step is timed on its own, at least
    `min_steps` and `min_seconds` worth (at most `max_steps`), and the median step time is used:
    on a machine shared with other jobs a mean would mostly measure whoever else was running."""
    dev = torch.device(device)
    g = torch.Generator().manual_seed(0)
    model = CharRNN(c.model_config()).to(dev)
    # the optimizer exactly as the trainer builds it (fused on CUDA), so the rates are the trainer's
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, **({"fused": True} if dev.type == "cuda" else {}))
    x = torch.randint(0, c.vocab_size, (c.batch_size, c.seq_len + 1), generator=g).to(dev)
    state = None

    def step() -> None:
        nonlocal state
        with autocast(dev, c.precision):
            logits, st = model(x[:, :-1], state)
            loss = F.cross_entropy(logits.reshape(-1, c.vocab_size).float(), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
        opt.step()
        state = detach_state(st)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    step()
    times: list[float] = []
    while len(times) < max_steps and (len(times) < min_steps or sum(times) < min_seconds):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    times.sort()
    return c.chars_per_step / times[len(times) // 2]


def _key(c: Candidate) -> str:
    return f"{c.num_layers}x{c.hidden_size}@{c.batch_size}" + ("/bf16" if c.precision == "bf16" else "")


def choose(dataset: Any, budget_s: float, device: str = "cpu", threads: int | None = None, *,
           rate: Rate | None = None, clock: Callable[[], float] = time.monotonic, precision: str = "auto") -> Plan:
    """Decide everything (see the module docstring); `rate` replaces measurement (deterministic).
    precision: auto (each candidate timed in fp32 and, on a CPU with bf16 or a GPU, bf16; the faster
    is its rate, bf16 only when at least BF16_MARGIN faster on a CPU), fp32 or bf16."""
    t0 = clock()
    meta = meta_of(dataset)
    splits = meta["splits"]
    train_chars = int(splits["train"]["tokens"])
    val_chars = int(splits.get("val", {}).get("tokens", 0))
    V = int(meta["vocab_size"])
    dev_type = "cuda" if str(device).startswith("cuda") else "cpu"
    if threads and dev_type == "cpu":
        torch.set_num_threads(threads)
    batches = GPU_BATCHES if dev_type == "cuda" else CPU_BATCHES
    seq_len = GPU_SEQ_LEN if dev_type == "cuda" else CPU_SEQ_LEN
    measured: dict[str, float] = {}

    if precision not in PRECISIONS:
        raise CharlstmError(f"unknown precision '{precision}'; choose {', '.join(PRECISIONS)}")
    if precision != "auto":
        tried = (precision,)
    else:
        tried = ("bf16",) if dev_type == "cuda" else ("fp32", "bf16") if cpu_has_bf16() else ("fp32",)
    picked: dict[str, str] = {}  # candidate key -> the precision its rate is for

    def timed(c: Candidate) -> float:
        k = _key(c)
        if k not in measured:
            measured[k] = rate(c) if rate is not None else measure_rate(c, device)
        return measured[k]

    def rate_of(c: Candidate) -> float:
        small = dev_type == "cpu" and c.macs < BF16_MIN_MACS  # gains nothing from bf16: not timed in it
        r = {p: timed(dataclasses.replace(c, precision=p)) for p in tried if not (small and p == "bf16" and len(tried) > 1)}
        best = "bf16" if "bf16" in r and ("fp32" not in r or r["bf16"] >= BF16_MARGIN * r["fp32"]) else "fp32"
        picked[_key(c)] = best
        return r[best]

    def candidate(layers: int, hidden: int, batch: int) -> Candidate:
        # A tiny corpus cannot fill many streams: shrink the batch as the trainer would.
        T = max(1, min(seq_len, train_chars - 1))
        b = max(1, min(batch, (train_chars - 1) // T))
        return Candidate(layers, hidden, embed_dim_for(hidden), b, T, V)

    def train_time(r: float) -> float:
        # what is left for training: the budget minus calibration so far and the final evaluation
        spent = clock() - t0
        final_eval = val_chars / (EVAL_SPEEDUP * r) if r > 0 else 0.0
        return max(budget_s - spent - min(final_eval, 0.5 * budget_s), 0.0)

    b_ref = batches[0]
    chosen = candidate(*LADDER[0], b_ref)
    why = f"the smallest rung ({LADDER[0][0]}x{LADDER[0][1]})"
    for layers, hidden in LADDER[1:]:
        if rate is None and clock() - t0 > CALIB_SHARE * budget_s:
            why += "; calibration time used up"
            break
        c = candidate(layers, hidden, b_ref)
        r = rate_of(c)
        steps = r * train_time(r) / c.chars_per_step
        chars = r * train_time(r)
        if steps < MIN_STEPS or chars < CHARS_PER_PARAM * c.parameters:
            why += f"; {layers}x{hidden} would get only {steps:,.0f} steps, {chars / c.parameters:.1f} chars/param"
            break  # larger rungs are slower still
        if c.parameters > MAX_PARAMS_PER_TRAIN_CHAR * train_chars:
            why += f"; {layers}x{hidden} has more parameters than the corpus has characters"
            break
        chosen = c
        why = f"{layers}x{hidden} gets {steps:,.0f} steps, {chars / c.parameters:.1f} chars/param"
    # Batch: the smallest with nearly the best throughput (more steps per character).
    opts = [candidate(chosen.num_layers, chosen.hidden_size, b) for b in batches]
    rates = {c.batch_size: rate_of(c) for c in opts}
    best = max(rates.values())
    batch = min(b for b, r in rates.items() if r >= BATCH_SLACK * best)
    chosen = candidate(chosen.num_layers, chosen.hidden_size, batch)
    r = rates[batch]
    t_train = train_time(r)
    steps = int(r * t_train / chosen.chars_per_step)
    chars = r * t_train
    epochs = chars / max(train_chars, 1)
    eval_s = val_chars / (EVAL_SPEEDUP * r) if r > 0 else 0.0
    # Short runs: only the final evaluation (the trainer always runs it); every pass costs training time.
    n_evals = int(EVAL_SHARE * budget_s / eval_s) if eval_s > 0 and budget_s >= PERIODIC_EVAL_MIN_BUDGET else 0
    eval_every = max(100, math.ceil(steps / (n_evals + 1))) if n_evals >= 1 else 10**9
    lr = lr_for(chosen.num_layers, chosen.hidden_size)
    model = {"cell": "lstm", "num_layers": chosen.num_layers, "hidden_size": chosen.hidden_size,
             "embed_dim": chosen.embed_dim, "dropout": 0.0 if epochs < 4 else 0.1 if epochs < 16 else 0.2}
    calib = clock() - t0
    trn = {"precision": picked[_key(chosen)], "batch_size": chosen.batch_size, "seq_len": chosen.seq_len,
           "lr": float(f"{lr:.3g}"),
           "min_lr": float(f"{lr / 100:.3g}"), "schedule": "cosine",
           "warmup_steps": int(min(200, max(10, 0.02 * steps))), "grad_clip": 1.0, "weight_decay": 0.0,
           "grad_accum": 1, "eval_every": int(eval_every), "time_budget": max(budget_s - calib, 1.0)}
    return Plan(model=model, train=trn, rates=measured, expected_steps=steps, expected_chars=chars,
                calibration_seconds=calib, reason=why)


def plan(dataset: Any, budget_s: float, device: str = "cpu", threads: int | None = None, *,
         rate: Rate | None = None, precision: str = "auto") -> tuple[dict[str, Any], dict[str, Any]]:
    """(model overrides, train overrides) for the best model trainable in `budget_s` seconds of wall
    clock on `device` with `threads` torch threads. dataset: a Dataset, its meta dict, or a name.
    The train overrides include `time_budget`: the budget minus the time this call spent measuring."""
    p = choose(dataset, budget_s, device, threads, rate=rate, precision=precision)
    return p.model, p.train


def describe(model: Mapping[str, Any], train: Mapping[str, Any]) -> str:
    """One line for the user: 'autosize: 1x256 LSTM (embed 64), batch 16 x 64, lr 0.007 cosine ...'."""
    return (f"autosize: {model['num_layers']}x{model['hidden_size']} {model.get('cell', 'lstm').upper()} (embed {model['embed_dim']}"
            + (f", dropout {model['dropout']}" if model.get("dropout") else "") + f"), batch {train['batch_size']} x "
            f"{train['seq_len']}, lr {train['lr']:g} -> {train['min_lr']:g} {train.get('schedule', 'cosine')}, warm-up {train['warmup_steps']}, "
            + (f"{train['precision']}, " if train.get("precision") else "") + f"{train['time_budget']:.0f}s left for training")


# Options that decide the model or how it is optimised. When a user sets any of them (or a preset or
# a config file), `charlstm train --time-budget` leaves the sizing to them unless --autosize is given.
SIZING_KEYS = frozenset({"cell", "num_layers", "hidden_size", "embed_dim", "dropout", "batch_size", "seq_len",
                         "lr", "min_lr", "warmup_steps", "schedule", "grad_accum", "weight_decay"})


def wanted(flag: bool | None, budget_s: float | None, overrides: Mapping[str, Any], preset: str | None = None,
           file_values: Mapping[str, Any] | None = None, resume: bool = False, world_size: int = 1) -> bool:
    """Whether `charlstm train` should autosize. --autosize/--no-autosize (flag) decide; by default
    (None) it does when a time budget is given and nothing that sizes the model or its optimiser is
    (no preset, config file or SIZING_KEYS option), in one process. Raises CharlstmError when
    --autosize is combined with what it cannot honour."""
    sizing_given = bool(preset or file_values) or any(overrides.get(k) is not None for k in SIZING_KEYS)
    if flag is None:
        # under torchrun a bare budget keeps the plain defaults, as before autosize existed
        return budget_s is not None and not sizing_given and not resume and world_size == 1
    if not flag:
        return False
    if budget_s is None:
        raise CharlstmError("--autosize chooses a model for a time budget: add --time-budget (for example 5m)")
    if preset or file_values:
        raise CharlstmError("--autosize replaces --preset and --config: give one or the other")
    if resume:
        raise CharlstmError("--autosize starts a run; --resume continues one with the settings it was started with")
    if world_size > 1:
        # every process would time candidates on its own and could choose differently
        raise CharlstmError("--autosize is for one process; under torchrun give --preset or size options")
    return True


def autosized_overrides(dataset: Any, budget_s: float, device: str | torch.device,
                        overrides: Mapping[str, Any], *, rate: Rate | None = None) -> tuple[dict[str, Any], Plan]:
    """The flat config overrides `charlstm train --time-budget` trains with: the plan for
    `budget_s` on `device`, under the options the user gave explicitly (`overrides`, None = not
    given), except the time budget, which becomes what the calibration left of it."""
    p = choose(dataset, budget_s, str(device), rate=rate, precision=overrides.get("precision") or "auto")
    given = {k: v for k, v in overrides.items() if v is not None and k != "time_budget"}
    return {**p.model, **p.train, **given}, p
