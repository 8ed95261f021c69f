"""Training a dictionary on states streamed from a split of the run's dataset, resumably.

The states come from `StateStream` (S streams over the split, the model's state carried, the
first `warmup` steps of each stream dropped since they start from nothing): a buffer of about
`buffer` states is filled, shuffled, and cut into batches; then the next buffer is read. The
dictionary (charlstm.dictionary.model) learns by Adam on the mean squared error of the normalised
reconstruction, |u^ - u|^2 (E|u|^2 = 1, so the loss is about the fraction of variance unexplained),
plus Gao et al.'s auxiliary loss: features that have not fired for `dead_after` states (the 2k
largest of them per state) try to explain what the others leave (aux coefficient 1/32). Only the
selected features of each state carry gradient, computed by hand (`sparse_step`; its autograd twin
is `sparse_step_slow`), so a step costs about one dense matrix product (selecting). Decoder
rows are kept at norm 1 (the gradient along each row is removed, then rows are renormalised).
`center` and `scale` are set from the first buffer: its mean, and its RMS distance from the mean.

The learning rate warms up over 100 steps and decays linearly to 0 over the last 20% of training,
where "training" is --chars states or --time-budget seconds, whichever ends first.

Stopping and resuming: Ctrl-C or SIGTERM stop after the current step and save last.safetensors
(every tensor of the training state: parameters, Adam moments, when each feature last fired, the
streams' positions and carried model state, the rest of the current buffer and the RNG), as does a
save every `save_every` seconds; `resume=True` continues from it and reads the very same states,
so a resumed dictionary equals an uninterrupted one (tested). dictionary.safetensors is written at
every save too, so an interrupted dictionary can already be used.

Owns: TrainOptions, the loop, last.safetensors. Does not know: the command line.
"""
from __future__ import annotations

import dataclasses
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from charlstm.checkpoint import load_tensors, save_tensors
from charlstm.dictionary import store
from charlstm.dictionary.model import Dictionary, check_shape
from charlstm.dictionary.states import StateStream
from charlstm.dictionary.step import sparse_step
from charlstm.errors import CharlstmError
from charlstm.units import STATE_KINDS

WARMUP_STEPS = 100
MAX_BAD_STEPS = 10  # batches in a row with a non-finite loss (skipped) before training stops with an error
DECAY_FRACTION = 0.2


@dataclass
class TrainOptions:
    """How to train a dictionary. None means the default for the model: the top layer; h (what the
    layer above and the head read; bounded, where an LSTM's c can grow without bound along running
    text); 8 features per unit; k = H // 4 (at least 1)."""

    name: str | None = None
    layer: int | None = None
    kind: str | None = None
    size: int | None = None
    k: int | None = None
    code: str = "relu"
    split: str = "train"
    chars: int | None = 2_000_000
    time_budget: float | None = None
    batch: int = 1024
    lr: float = 3e-3
    streams: int = 64
    buffer: int = 32768
    warmup: int = 64
    aux: float = 1 / 32
    seed: int = 0
    save_every: float = 300.0
    fidelity_chars: int = 100_000

    def resolved(self, cfg) -> "TrainOptions":
        """The options with every default filled in for a model config, checked."""
        H = cfg.hidden_size
        kind = self.kind or "h"
        o = dataclasses.replace(self, layer=cfg.num_layers - 1 if self.layer is None else self.layer, kind=kind,
                                size=8 * H if self.size is None else self.size,
                                k=max(1, H // 4) if self.k is None else self.k)
        o.name = o.name or f"layer{o.layer}.{o.kind}-{o.size}"
        if not 0 <= o.layer < cfg.num_layers:
            raise CharlstmError(f"--layer {o.layer} does not exist; the model has layers 0..{cfg.num_layers - 1}")
        if kind not in STATE_KINDS or (kind == "c" and cfg.cell not in ("lstm", "peephole")):
            raise CharlstmError(f"--kind {kind}: a {cfg.cell} cell's dictionary reads "
                                + ("h or c" if cfg.cell in ("lstm", "peephole") else "h"))
        check_shape(o.size, o.k, o.code, o.kind, H)
        if o.chars is None and o.time_budget is None:
            raise CharlstmError("give --chars or --time-budget (or both): when to stop")
        for what, v in (("--chars", o.chars), ("--batch", o.batch), ("--streams", o.streams), ("--buffer", o.buffer),
                        ("--fidelity-chars", o.fidelity_chars)):
            if v is not None and v < 1:
                raise CharlstmError(f"{what} must be at least 1, got {v}")
        if o.warmup < 0:
            raise CharlstmError(f"--warmup must be 0 or more, got {o.warmup}")
        if not (o.lr > 0 and math.isfinite(o.lr)):
            raise CharlstmError(f"--lr must be a positive number, got {o.lr}")
        if o.time_budget is not None and not (o.time_budget > 0 and math.isfinite(o.time_budget)):
            raise CharlstmError(f"--time-budget must be a positive duration, got {o.time_budget}")
        return o

    def schedule_key(self) -> dict[str, Any]:
        """What a resumed run must share with the saved one (the rest, e.g. --chars, may change)."""
        return {k: getattr(self, k) for k in ("name", "layer", "kind", "size", "k", "code", "split", "batch", "streams",
                                               "buffer", "warmup", "seed")}


@dataclass
class TrainResult:
    """What a training session did. status: "done" (reached --chars or the budget) or "interrupted"."""

    dictionary: Dictionary
    folder: Path
    options: TrainOptions
    status: str
    steps: int
    states: int
    seconds: float
    session_seconds: float
    loss: float
    dead: int
    info: dict[str, Any]


class _Signals:
    """Ctrl-C / SIGTERM -> stop after this step and save; a second Ctrl-C stops at once."""

    def __init__(self, say: Callable[[str], None]):
        self.stop, self._old = False, {}
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, frame):
            if self.stop and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.stop = True
            say(f"{signal.Signals(signum).name} received: stopping after this step and saving (Ctrl-C again to quit now)")

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, handler)

    def restore(self) -> None:
        for sig, h in self._old.items():
            signal.signal(sig, h)


def lr_at(progress: float, step: int, lr: float) -> float:
    """The learning rate at a training position: linear warm-up over WARMUP_STEPS steps, constant,
    then a linear decay to 0 over the last DECAY_FRACTION of progress (0..1)."""
    warm = min(1.0, (step + 1) / WARMUP_STEPS)
    decay = min(1.0, max(0.0, (1.0 - progress) / DECAY_FRACTION))
    return lr * warm * decay


def _adam(params, lr: float) -> torch.optim.Adam:
    """Adam, fused where this torch has it (on a CPU ~10x faster per step than the loop over
    tensors: a 4,096 x 512 dictionary's update measured 4 ms fused, 39 ms plain)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999))


class Trainer:
    """One training session (see the module docstring)."""

    def __init__(self, model, ids: np.ndarray, where: Path, opts: TrainOptions, model_sha: str, resume: bool,
                 on_log: Callable[[dict[str, Any]], None] | None = None, say: Callable[[str], None] = lambda s: None,
                 should_stop: Callable[[int], bool] | None = None, base_info: dict[str, Any] | None = None):
        self.model, self.where, self.o, self.model_sha = model, where, opts, model_sha
        self.on_log, self.say, self.should_stop, self.base_info = on_log, say, should_stop, base_info or {}
        torch.manual_seed(opts.seed)
        cfg = model.cfg
        self.d = Dictionary(cfg.hidden_size, opts.size, opts.k, opts.code, opts.layer, opts.kind, opts.name, opts.seed)
        self.optim = _adam(self.d.parameters(), opts.lr)
        S = opts.streams
        self.stream = StateStream(model, ids, opts.layer, opts.kind, streams=S)
        self.steps_per_fill = max(1, -(-opts.buffer // S))
        self.gen = torch.Generator().manual_seed(opts.seed)
        self.buffer = torch.empty(0, cfg.hidden_size)
        self.step = self.states = 0
        self.elapsed = 0.0
        self.warm = False  # streams past their warm-up
        self.ready = False  # center and scale set
        self.last_fired = torch.zeros(opts.size, dtype=torch.int64)
        self.bad_steps = 0
        self.dead_after = max(100 * opts.size // opts.k, 10 * opts.batch)
        if resume:
            self._load()

    # -------------------------------------------------------------- state
    def _tensors(self) -> dict[str, Tensor]:
        t = {f"dict.{k}": v for k, v in self.d.tensors().items()}
        for i, p in enumerate(self.d.parameters()):
            st = self.optim.state.get(p, {})
            for name in ("exp_avg", "exp_avg_sq"):
                if name in st:
                    t[f"optim.{i}.{name}"] = st[name]
            if "step" in st:
                t[f"optim.{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(())
        for k, v in self.stream.state_dict().items():
            t[f"stream.{k}"] = v
        t["buffer"] = self.buffer.contiguous()
        t["last_fired"] = self.last_fired
        t["rng"] = self.gen.get_state()
        return t

    def _meta(self) -> dict[str, Any]:
        return {"format": "charlstm-dictionary-last", "version": 1, "options": dataclasses.asdict(self.o),
                "schedule": self.o.schedule_key(), "model_sha256": self.model_sha,
                "trainer": {"step": self.step, "states": self.states, "elapsed": self.elapsed, "warm": self.warm,
                            "ready": self.ready}}

    def _load(self) -> None:
        path = self.where / store.LAST
        if not path.exists():
            raise CharlstmError(f"dictionary {self.o.name} has no {store.LAST} to resume from"
                                + (" (it finished; use --force to train it again)" if (self.where / store.WEIGHTS).exists()
                                   else "; drop --resume"))
        t, meta = load_tensors(path)
        if meta.get("model_sha256") != self.model_sha:
            raise CharlstmError(f"dictionary {self.o.name} was being trained on other weights of this run; "
                                "start it over with --force")
        if meta.get("schedule") != self.o.schedule_key():
            diff = {k: v for k, v in self.o.schedule_key().items() if (meta.get("schedule") or {}).get(k) != v}
            raise CharlstmError(f"--resume with other settings than the saved run ({', '.join(sorted(diff))}); "
                                "give the same options or start over with --force")
        with torch.no_grad():
            for k in self.d.tensors():
                getattr(self.d, k).copy_(t[f"dict.{k}"])
        for i, p in enumerate(self.d.parameters()):
            if f"optim.{i}.step" in t:
                self.optim.state[p] = {"step": t[f"optim.{i}.step"].clone(), "exp_avg": t[f"optim.{i}.exp_avg"].clone(),
                                       "exp_avg_sq": t[f"optim.{i}.exp_avg_sq"].clone()}
        self.stream.load_state_dict({k[len("stream."):]: v for k, v in t.items() if k.startswith("stream.")})
        self.buffer, self.last_fired = t["buffer"].clone(), t["last_fired"].clone()
        self.gen.set_state(t["rng"])
        tr = meta["trainer"]
        self.step, self.states, self.elapsed = int(tr["step"]), int(tr["states"]), float(tr["elapsed"])
        self.warm, self.ready = bool(tr["warm"]), bool(tr["ready"])

    def save(self, status: str) -> dict[str, Any]:
        """last.safetensors, dictionary.safetensors and dictionary.json (status "training" or
        "interrupted"; "done" removes last.safetensors)."""
        info = {**self.base_info, "model_sha256": self.model_sha,
                "train": {**{k: getattr(self.o, k) for k in ("split", "chars", "time_budget", "batch", "lr", "streams",
                                                              "buffer", "warmup", "aux", "seed")},
                          "status": status, "steps": self.step, "states": self.states,
                          "seconds": round(self.elapsed, 1), "loss": self.recent_loss()},
                "fidelity": None}
        if status != "done":
            save_tensors(self.where / store.LAST, self._tensors(), self._meta())
        store.save(self.where, self.d, info)
        if status == "done":
            (self.where / store.LAST).unlink(missing_ok=True)
        return store.read_info(self.where)

    # -------------------------------------------------------------- the loop
    def progress(self) -> float:
        o, p = self.o, 0.0
        if o.chars is not None:
            p = max(p, self.states / o.chars)
        if o.time_budget is not None:
            p = max(p, self.elapsed / o.time_budget)
        return p

    def recent_loss(self) -> float | None:
        """The mean main loss of the last 50 steps (skipped, non-finite ones left out)."""
        good = [x for x in getattr(self, "_losses", [])[-50:] if math.isfinite(x)]
        return round(float(np.mean(good)), 5) if good else None

    def _fill(self) -> None:
        S = self.o.streams
        if not self.warm:
            if self.o.warmup:
                self.stream.run(self.o.warmup)
            self.warm = True
        states, _, _ = self.stream.run(self.steps_per_fill)
        x = states.reshape(-1, states.shape[-1])
        if not self.ready:
            with torch.no_grad():
                mean = x.double().mean(0)
                rms = float(((x.double() - mean) ** 2).sum(1).mean().sqrt())
                self.d.center.copy_(mean.float())
                self.d.scale.fill_(rms if rms > 0 else 1.0)
            self.ready = True
        self.buffer = x[torch.randperm(len(x), generator=self.gen)]
        del S

    def train_step(self) -> float:
        B = self.o.batch
        if len(self.buffer) == 0:
            self._fill()
        xb, self.buffer = self.buffer[:B], self.buffer[B:]
        d = self.d
        u = d.normalise(xb)
        dead = (self.states - self.last_fired) > self.dead_after
        loss, main, idx = sparse_step(d, u, dead, self.o.aux)
        if not bool(torch.isfinite(loss)):
            self.bad_steps += 1
            if self.bad_steps >= MAX_BAD_STEPS:
                raise CharlstmError(f"dictionary training diverged: {MAX_BAD_STEPS} batches in a row gave a non-finite "
                                    "loss; try a lower --lr (or --kind h: an LSTM's c can grow without bound)")
            self.states += len(xb)
            return math.nan
        self.bad_steps = 0
        for g in self.optim.param_groups:
            g["lr"] = lr_at(self.progress(), self.step, self.o.lr)
        with torch.no_grad():
            g = d.W_dec.grad
            if g is not None:  # no change along each (unit) row: only its direction moves
                g -= (g * d.W_dec).sum(1, keepdim=True) * d.W_dec
        self.optim.step()
        with torch.no_grad():
            d.W_dec /= d.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
            self.states += len(xb)
            self.last_fired[idx.reshape(-1)] = self.states
        self.step += 1
        return float(main)

    def run(self) -> TrainResult:
        self.where.mkdir(parents=True, exist_ok=True)
        self._losses: list[float] = []
        signals = _Signals(self.say)
        t_start = time.monotonic()
        last_save = last_log = time.monotonic()
        status = "interrupted"
        try:
            while True:
                if self.progress() >= 1.0:
                    status = "done"
                    break
                if signals.stop or (self.should_stop is not None and self.should_stop(self.step)):
                    break
                t0 = time.monotonic()
                self._losses.append(self.train_step())
                self.elapsed += time.monotonic() - t0
                now = time.monotonic()
                if self.on_log is not None and (now - last_log >= 10 or self.step == 1):
                    last_log = now
                    self.on_log(self.log_record())
                if self.o.save_every and now - last_save >= self.o.save_every:
                    self.save("training")
                    last_save = now
        finally:
            signals.restore()
        info = self.save(status)
        dead = int(((self.states - self.last_fired) > self.dead_after).sum())
        return TrainResult(self.d.eval(), self.where, self.o, status, self.step, self.states, self.elapsed,
                           time.monotonic() - t_start, self.recent_loss() or math.nan, dead, info)

    def log_record(self) -> dict[str, Any]:
        return {"step": self.step, "states": self.states, "progress": self.progress(), "loss": self.recent_loss(),
                "lr": self.optim.param_groups[0]["lr"], "elapsed": self.elapsed,
                "dead": int(((self.states - self.last_fired) > self.dead_after).sum()),
                "states_per_s": self.states / max(self.elapsed, 1e-9)}


def train_dictionary(model, split_ids: np.ndarray, run: Path, opts: TrainOptions, *, resume: bool = False,
                     force: bool = False, on_log=None, say=lambda s: None, should_stop=None,
                     base_info: dict[str, Any] | None = None) -> TrainResult:
    """Train (or with resume=True continue) the dictionary `opts.name` of the run folder `run` on
    states of `model` over split_ids [T] -> TrainResult. The options must be resolved
    (TrainOptions.resolved). An existing dictionary of that name is refused unless force or resume."""
    where = store.folder(run, opts.name)
    exists = (where / store.WEIGHTS).exists() or (where / store.LAST).exists()
    if exists and not (force or resume):
        raise CharlstmError(f"dictionary '{opts.name}' already exists in {where.parent}; --resume continues it, "
                            "--force trains it again, --name picks another name")
    if force and not resume:
        for f in (store.LAST, store.WEIGHTS, store.INFO):
            (where / f).unlink(missing_ok=True)
    sha = store.model_sha256(model)
    tr = Trainer(model, split_ids, where, opts, sha, resume, on_log=on_log, say=say, should_stop=should_stop,
                 base_info=base_info)
    return tr.run()
