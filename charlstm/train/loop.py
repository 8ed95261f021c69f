"""The training loop: truncated BPTT over parallel streams or records, exact validation, schedule, checkpoints.

    from charlstm.train import train
    from charlstm.config import build_configs
    m, t = build_configs("tiny", overrides={"max_steps": 500})
    result = train("stdlib", "checkpoints/demo", m, t)       # -> TrainResult
    print(result.best_val_bpc)

One optimizer step reads grad_accum chunks of about [B, T] characters with the hidden state carried
across chunks (detached between them, reset where the layout says: each epoch of streams
(charlstm.train.batches), each group of records (charlstm.train.records), so that a model of records
learns every record from the state sampling and scoring start from), clips the gradient norm,
and takes an AdamW step at the scheduled learning rate (charlstm.train.schedule). Every log_every steps
the loss accumulated on the device is read once (the only host sync), checked for NaN/inf (rolling
back to an in-memory snapshot with a halved learning rate) and logged to metrics.jsonl; every
eval_every steps the whole validation split is scored exactly, the best weights are saved to
model.safetensors and the full trainer state to last.safetensors (charlstm.train.state).
Ctrl-C / SIGTERM stop at the next step boundary and save; `resume=True` continues bit-exactly on CPU.
Under torchrun the same loop runs data-parallel (charlstm.train.distributed).

Owns: the loop and its bookkeeping (position, best score, NaN rollback, time budget, signals). Does
not know: how the data is laid out (batches), the file layout of a checkpoint (state, runs), or how
a score is computed (validate).
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from charlstm.checkpoint import save_model
from charlstm.config import ModelConfig, TrainConfig
from charlstm.dataset import Dataset, open_dataset
from charlstm.errors import CharlstmError
from charlstm.model import detach_state
from charlstm.precision import autocast
from charlstm.runs import BEST, LAST, append_metrics, check_run_dir, read_config
from charlstm.runtime import resolve_device
from charlstm.train import distributed as D
from charlstm.train.progress import StopSignals, quick_sample
from charlstm.train.schedule import learning_rate
from charlstm.train.session import Session
from charlstm.train.state import Snapshot
from charlstm.train.validate import LN2, score_nats

_clock = time.monotonic  # the loop's clock (tests substitute a deterministic one)


@dataclass
class Event:
    """Passed to callbacks. kind: "log" (every log_every steps; metrics has train_loss, lr, ...),
    "eval" (after a validation; metrics has val_bpc too) or "end"."""

    kind: str
    step: int
    metrics: dict[str, Any]


Callback = Callable[[Event], Any]  # return True to stop training (checkpoint saved, as on Ctrl-C)


@dataclass
class TrainResult:
    """What a train() call did. stopped: "finished", "time budget", "interrupted" or "callback"."""

    run_dir: Path
    steps: int
    epoch: float
    best_val_bpc: float | None
    best_step: int | None
    final_val_bpc: float | None
    stopped: str
    elapsed: float  # seconds, over all sessions of the run
    chars_per_s: float  # training characters per second of step time, this session
    num_parameters: int
    batch_size: int  # effective (global) batch after any shrinking
    history: list[dict[str, Any]] = field(default_factory=list)  # this session's metrics lines


def train(dataset: str | os.PathLike | Dataset, run_dir: str | os.PathLike, model_cfg: ModelConfig,
          train_cfg: TrainConfig, resume: bool = False, force: bool = False, quiet: bool = False,
          callbacks: Sequence[Callback] | None = None) -> TrainResult:
    """Train a model on `dataset` (name, folder or opened Dataset) into the run folder `run_dir`.

    model_cfg.vocab_size may be 0 (taken from the dataset). The configs are copied, not modified.
    resume: continue run_dir from its last.safetensors (configs must be compatible: same model,
    batch size, seq len and dataset). force: replace an existing run. Raises CharlstmError for every
    user error before anything is written. Under torchrun, call it on every rank.
    """
    if resume and force:
        raise CharlstmError("--resume and --force contradict each other: resume continues the run, force starts it over")
    mcfg, tcfg = dataclasses.replace(model_cfg), dataclasses.replace(train_cfg)
    tcfg.validate()
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    if mcfg.vocab_size in (0, None):
        mcfg.vocab_size = ds.vocab.size
    elif mcfg.vocab_size != ds.vocab.size:
        raise CharlstmError(f"vocab-size {mcfg.vocab_size} does not match dataset '{ds.name}' ({ds.vocab.size} symbols)")
    run_dir = Path(run_dir)
    if mcfg.reset_id is None and ds.meta.get("records") and ds.vocab.eot_id is not None:
        # records: each one read from the start of a record (charlstm.model); a run saved before this
        # rule existed (no reset_id in its config.json) resumes as it was trained, one stream
        saved = read_config(run_dir)["model"] if resume and (run_dir / "config.json").exists() else None
        if saved is None or "reset_id" in saved:
            mcfg.reset_id = ds.vocab.eot_id
    mcfg.validate()
    check_run_dir(run_dir, resume, force)
    info = D.from_env()
    device = D.check_device(resolve_device(tcfg.device, info.local_rank if info.enabled else None), info)
    D.setup(info, device)
    try:
        trainer = Trainer(ds, run_dir, mcfg, tcfg, info, device, resume, quiet, list(callbacks or []))
        result = trainer.run()
        # Every rank waits here until rank 0 has written its last checkpoint: a rank that tears the
        # group down while a peer is still using it makes gloo abort that peer at exit.
        D.barrier(info)
        return result
    finally:
        D.teardown(info)


class Trainer(Session):
    """One training session of one run (on one rank): the loop over a Session. Use `train()`."""

    # ------------------------------------------------------------------ steps
    def _update_reserve(self, n_chars: int, interval: float) -> float:
        """This rank's estimate of the final evaluation's duration: the last one measured, else the
        validation characters at ~3x the training speed (a forward pass costs about a third of a step)."""
        if self.eval_seconds is not None:
            return self.eval_seconds
        if n_chars and interval > 0:
            return self.val.n_targets / (3.0 * n_chars / interval)
        return self.reserve

    def _train_step(self, lr: float) -> None:
        """One optimizer step over grad_accum chunks; all bookkeeping stays on the device."""
        cfg, net = self.cfg, self.net
        for g in self.opt.param_groups:
            g["lr"] = lr
        V = self.mcfg.vocab_size
        for micro in range(cfg.grad_accum):
            if self.chunk >= self.data.n_chunks:
                self.epoch, self.chunk = self.epoch + 1, 0
            c = self.data.step_chunk(self.epoch, self.chunk)
            x, y = c.x, c.y
            if c.fresh:  # an epoch of streams, a group of records: from a blank memory
                self.state = self.model.init_state(x.shape[0])
            self.chunk += 1
            self.chars_since_log += c.targets
            sync = (net.no_sync() if self.info.enabled and micro < cfg.grad_accum - 1 and hasattr(net, "no_sync")
                    else nullcontext())
            with sync:
                with autocast(self.device, cfg.precision):
                    logits, state = net(x, self.state)
                    loss = _chunk_loss(logits.reshape(-1, V), y.reshape(-1))
                (loss / cfg.grad_accum).backward() if cfg.grad_accum > 1 else loss.backward()
            self.state = detach_state(state)
            self.loss_sum += loss.detach()
            self.loss_n += 1
        params = self.model.parameters()
        if cfg.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in self.model.parameters() if p.grad is not None])
        self.bad += ~torch.isfinite(norm)  # a NaN/inf gradient poisons AdamW: caught at the next log point
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.step += 1

    def evaluate(self) -> float:
        """Exact bits per character over the validation split (all ranks; reduced across them)."""
        total = score_nats(self.model, self.val, self.eval_bf16)
        D.all_reduce_sum(total, self.info)
        return total.item() / self.val.n_targets / LN2

    # ------------------------------------------------------------------ the loop
    def _local_done(self, elapsed: float) -> bool:
        """Whether to stop after this step, judged without talking to other ranks: the step cap
        always (every rank counts the same steps); the clock and signals only in one process
        (under torchrun they are agreed on at the next log point instead)."""
        if self.total_steps is not None and self.step >= self.total_steps:
            return True
        if self.info.enabled:
            return False
        budget = self._train_budget()
        return self.stop_reason is not None or (budget is not None and elapsed >= budget)

    def run(self) -> TrainResult:
        cfg, info = self.cfg, self.info
        self.model.train()
        signals = StopSignals(self)
        snapshot = Snapshot(self.model, self.opt, self.state, self._position(), self.device)
        t0 = _clock()
        chars_session, step_time = 0, 0.0
        self.ui.start(self._progress(self.elapsed_before), self.step)
        synced_elapsed = self.elapsed_before  # the clock all ranks agree on (refreshed at log points)
        last_log_t = t0
        try:
            while True:
                elapsed = self.elapsed_before + _clock() - t0
                if not info.enabled:
                    synced_elapsed = elapsed  # one process: the schedule follows the clock every step
                if not self._local_done(elapsed):
                    self._train_step(learning_rate(cfg, self.step, self._progress(synced_elapsed), self.lr_scale))
                    elapsed = self.elapsed_before + _clock() - t0
                    if self.step % cfg.log_every and self.step % cfg.eval_every and not self._local_done(elapsed):
                        continue
                # ---- log point: the one host sync per log_every steps
                now = _clock()
                elapsed = self.elapsed_before + now - t0
                n_chars, self.chars_since_log = self.chars_since_log, 0
                interval = now - last_log_t
                # rank 0's clock and eval-time estimate are the ones every rank follows
                main_only = [elapsed, self._update_reserve(n_chars, interval)] if self.main else [0.0, 0.0]
                packed = D.all_reduce_sum(torch.cat([
                    torch.stack([self.loss_sum.double(), self.bad.double()]),
                    torch.tensor([float(self.stop_reason is not None), *main_only], dtype=torch.float64,
                                 device=self.device)]), info)
                loss_sum, bad, any_stop, synced_elapsed, self.reserve = packed.tolist()
                if bad > 0 or not math.isfinite(loss_sum):
                    self._rollback(snapshot, elapsed)
                    last_log_t = _clock()
                    continue
                self.nan_retries = 0
                chars_session += n_chars
                step_time += interval
                train_loss = loss_sum / (self.loss_n * info.world_size) if self.loss_n else None
                self.loss_sum.zero_()
                self.loss_n = 0
                if any_stop and self.stop_reason is None:
                    self.stop_reason = "interrupted"
                done = (self.total_steps is not None and self.step >= self.total_steps) or self.stop_reason is not None \
                    or (cfg.time_budget is not None and synced_elapsed >= self._train_budget())
                rec = {"step": self.step, "epoch": round(self.epoch_float, 4), "time": round(elapsed, 2),
                       "lr": self.opt.param_groups[0]["lr"], "train_loss": train_loss,
                       "train_bpc": train_loss / LN2 if train_loss is not None else None,
                       "chars_per_s": round(n_chars / interval, 1) if interval > 0 and n_chars else None}
                evaluated = False
                if self.stop_reason is None and (self.step % cfg.eval_every == 0 or done) \
                        and self.step != self.last_eval_step:
                    rec["val_bpc"] = self._evaluate_and_keep_best()
                    evaluated = True
                stop = False
                for cb in self.callbacks:
                    stop |= bool(cb(Event("eval" if evaluated else "log", self.step, rec)))
                if info.enabled:  # every rank must agree to stop at this same step
                    stop = bool(D.all_reduce_max(torch.tensor(float(stop), device=self.device), info).item())
                if stop and self.stop_reason is None:
                    self.stop_reason = "callback"
                done = done or stop
                if evaluated or done or self._save_due(synced_elapsed):
                    self._save_last(elapsed)
                    self.saved_step, self.saved_elapsed = self.step, synced_elapsed
                if self.main:
                    append_metrics(self.run_dir, rec)
                self.history.append(rec)
                self.ui.update(self._progress(synced_elapsed), self.step, self.total_steps, rec, self.last_val)
                if evaluated and self.main and not self.quiet and cfg.sample_chars > 0:
                    text = quick_sample(self.model, self.ds.vocab, cfg.sample_chars, seed=cfg.seed + self.step)
                    self.ui.sample(self.step, self.last_val, text)
                if done:
                    break
                snapshot = Snapshot(self.model, self.opt, self.state, self._position(), self.device)
                last_log_t = _clock()
        finally:
            self.ui.close()
            signals.restore()
        elapsed = self.elapsed_before + _clock() - t0
        stopped = self.stop_reason or ("finished" if self.total_steps is not None and self.step >= self.total_steps
                                       else "time budget")
        if stopped in ("interrupted", "callback"):
            best = f"best val {self.best_val:.4f} bpc at step {self.best_step}" if self.best_val is not None else "no evaluation yet"
            self.ui.say(f"Stopped at step {self.step} ({best}); checkpoint saved to {self.run_dir / LAST}", always=True)
        result = TrainResult(run_dir=self.run_dir, steps=self.step, epoch=self.epoch_float,
                             best_val_bpc=self.best_val, best_step=self.best_step,
                             final_val_bpc=self.last_val if self.last_eval_step == self.step else None,
                             stopped=stopped, elapsed=elapsed,
                             chars_per_s=chars_session / step_time if step_time > 0 else 0.0,
                             num_parameters=self.model.num_parameters(), batch_size=self.cfg.batch_size,
                             history=self.history)
        for cb in self.callbacks:
            cb(Event("end", self.step, {"stopped": stopped, "best_val_bpc": self.best_val}))
        return result

    def _evaluate_and_keep_best(self) -> float:
        """Score the validation split; save model.safetensors when it is the best so far."""
        t = _clock()
        self.last_val, self.last_eval_step = self.evaluate(), self.step
        self.eval_seconds = _clock() - t
        if self.best_val is None or self.last_val < self.best_val:
            self.best_val, self.best_step = self.last_val, self.step
            if self.main:
                save_model(self.run_dir / BEST, self.model, {"step": self.step, "val_bpc": self.last_val})
        return self.last_val

    def _rollback(self, snapshot: Snapshot, elapsed: float) -> None:
        """NaN/inf seen: restore the last good state, halve the learning rate, or give up."""
        self.nan_retries += 1
        self.state, pos = snapshot.restore(self.model, self.opt)
        bad_step = self.step
        self.step, self.epoch, self.chunk = pos["step"], pos["epoch"], pos["chunk"]
        self.loss_sum.zero_()
        self.bad.zero_()
        self.loss_n = 0
        if self.nan_retries > self.cfg.max_nan_retries:
            self._save_last(elapsed)
            raise CharlstmError(f"training diverged: the loss became NaN/inf {self.nan_retries} times in a row (last "
                                f"near step {bad_step}) even after lowering the learning rate to x{self.lr_scale:g}; "
                                f"the last good state (step {self.step}) is saved; try a smaller --lr or --grad-clip")
        self.lr_scale *= 0.5
        self.ui.warn(f"non-finite loss or gradient between steps {self.step} and {bad_step}: rolled back to step "
                     f"{self.step} and halved the learning rate (x{self.lr_scale:g})")


def _chunk_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in nats per character. logits [N*T, V], targets [N*T]. (Tests patch this to inject NaN.)"""
    return F.cross_entropy(logits, targets)
