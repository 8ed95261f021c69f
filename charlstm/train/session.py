"""One training session's state: the model, the optimizer, the data layouts, the position in the
data and the bookkeeping, how they are built for a new or a resumed run, and how they are saved to
and restored from last.safetensors (whose layout is charlstm.train.state's).

Owns: building a session (seeds, model, optimizer, DDP wrapping, training and validation layouts,
the step cap) and its persistence (config.json at the start, last.safetensors on evaluations, on the
clock and at the end). Does not know: the loop (charlstm.train.loop), the schedule or evaluation.
"""
from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from charlstm.config import ModelConfig, TrainConfig
from charlstm.dataset import Dataset
from charlstm.errors import CharlstmError
from charlstm.model import CharRNN, State
from charlstm.precision import choose as choose_precision
from charlstm.runs import BEST, LAST, METRICS, read_config, trim_metrics, write_config
from charlstm.train import distributed as D
from charlstm.train.autosize import Candidate, measure_rate
from charlstm.train.batches import TrainStreams, fit_batch_size
from charlstm.train.progress import Progress
from charlstm.train.records import RecordBatches
from charlstm.train.schedule import progress
from charlstm.train.state import (check_compatible, optimizer_from_tensors, read_last, set_host_rng, set_torch_rng,
                                  torch_rng, write_last)
from charlstm.train.validate import eval_layout

DEFAULT_EPOCHS = 10  # when no max-steps / max-epochs / time-budget is given


class Session:
    """The state of one training session of one run, on one rank (see the module docstring)."""

    def __init__(self, ds: Dataset, run_dir: Path, mcfg: ModelConfig, tcfg: TrainConfig, info: D.DistInfo,
                 device: torch.device, resume: bool, quiet: bool, callbacks: list[Any]):
        self.ds, self.run_dir, self.mcfg, self.cfg = ds, run_dir, mcfg, tcfg
        self.info, self.device, self.quiet, self.callbacks = info, device, quiet, callbacks
        self.main = info.is_main
        self.ui = Progress(show=info.is_main, quiet=quiet)
        train_ids = ds.split("train")
        self.records = mcfg.reset_id is not None
        if not self.records:
            B = fit_batch_size(len(train_ids), tcfg.batch_size, tcfg.seq_len, info.world_size)
            if B < tcfg.batch_size:
                self.ui.warn(f"the training split ({len(train_ids):,} tokens) is too small for batch-size "
                             f"{tcfg.batch_size} x seq-len {tcfg.seq_len}; using batch-size {B}")
                tcfg.batch_size = B
        elif tcfg.batch_size % info.world_size:
            raise CharlstmError(f"batch-size {tcfg.batch_size} must be a multiple of the number of processes "
                                f"({info.world_size})")
        val_ids = ds.split("val") if "val" in ds.splits else None
        if val_ids is None or len(val_ids) < 2:
            raise CharlstmError(f"dataset '{ds.name}' has no validation split with at least 2 tokens; rebuild it with a validation fraction")
        self.saved_cfg = read_config(run_dir) if resume else None
        if resume:
            check_compatible(self.saved_cfg, mcfg, tcfg, ds.meta)

        torch.manual_seed(tcfg.seed)
        random.seed(tcfg.seed)
        np.random.seed(tcfg.seed % 2**32)
        self.model = CharRNN(mcfg).to(device)
        if info.rank > 0:
            # Same initial weights (seeded above, and DDP broadcasts rank 0's), different dropout masks.
            torch.manual_seed(tcfg.seed + 7919 * info.rank)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        # fused AdamW on CUDA: one kernel for the whole update instead of several per parameter
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay,
                                     **({"fused": True} if device.type == "cuda" else {}))
        if self.records:
            self.data = RecordBatches(train_ids, mcfg.reset_id, tcfg.batch_size, tcfg.seq_len, tcfg.seed, info.rank,
                                      info.world_size, device)
        else:
            self.data = TrainStreams(train_ids, tcfg.batch_size, tcfg.seq_len, info.rank, info.world_size, device)
        self.val = eval_layout(val_ids, tcfg.seq_len, info.rank, info.world_size, device, mcfg.reset_id,
                               tcfg.eval_max_chars)
        self.net: torch.nn.Module = self.model
        if info.enabled:
            self.net = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        if tcfg.compile:
            self.net = torch.compile(self.net)
        if not resume:  # a resumed run keeps the precision it chose (config.json)
            choice = choose_precision(tcfg.precision, device, None if info.enabled else self._step_rate,
                                      self.model.step_macs())
            if tcfg.precision == "auto" or "emulated" in choice.reason:
                self.ui.say(f"precision: {choice.reason}")
            tcfg.precision = choice.precision
        # Validation in bf16 only on a GPU: on a CPU it is a fraction of the time, and exact fp32 bpc
        # keeps runs comparable whatever they trained in.
        self.eval_bf16 = tcfg.precision == "bf16" and device.type == "cuda"

        n_chunks = self.data.n_chunks
        max_epochs = tcfg.max_epochs
        if tcfg.max_steps is None and max_epochs is None and tcfg.time_budget is None:
            max_epochs = DEFAULT_EPOCHS
            self.ui.say(f"no --max-steps, --max-epochs or --time-budget: training for {DEFAULT_EPOCHS} epochs "
                        "(Ctrl-C saves and stops; --resume continues)")
        caps = [tcfg.max_steps] if tcfg.max_steps else []
        if max_epochs:
            caps.append(math.ceil(max_epochs * n_chunks / tcfg.grad_accum))
        self.total_steps: int | None = min(caps) if caps else None

        # loop position and bookkeeping (all of it saved in last.safetensors)
        self.step, self.epoch, self.chunk = 0, 0, 0
        self.lr_scale, self.nan_retries = 1.0, 0
        self.best_val, self.best_step, self.last_val, self.last_eval_step = None, None, None, None
        self.elapsed_before = 0.0
        self.reserve, self.eval_seconds = 0.0, None  # time kept for the final evaluation (time budget)
        self.saved_step, self.saved_elapsed = 0, 0.0  # when last.safetensors was last written
        self.state: State = self.model.init_state(self.data.rows)  # replaced at the first (fresh) chunk
        self.chars_since_log = 0  # real training characters since the last log point (this rank's view, global)
        if resume:
            self._load_last()
        else:
            if self.main:
                for f in (BEST, LAST, METRICS):
                    (run_dir / f).unlink(missing_ok=True)
                self._write_config()
            D.barrier(info)
        self.loss_sum = torch.zeros((), device=device)
        self.bad = torch.zeros((), device=device)
        self.loss_n = 0
        self.stop_reason: str | None = None
        self.history: list[dict[str, Any]] = []

    def _write_config(self) -> None:
        ds = self.ds
        dsinfo = {"name": ds.name, "path": str(ds.path.resolve()), "meta": ds.meta}
        write_config(self.run_dir, self.mcfg, self.cfg, dsinfo, ds.vocab.to_json())

    def _load_last(self) -> None:
        last = read_last(self.run_dir / LAST)
        tr = last.trainer
        self.model.load_state_dict(last.model_state())
        optimizer_from_tensors(self.opt, last.optim_tensors(self.device), last.optim)
        saved_world = tr.get("world_size", 1)
        carried = last.carried(self.model.state_size)
        r = self.info.rank
        # streams: B / W rows per rank of the global [L, B, H]; records: the current group's rows
        b = self.data.rows if not self.records else carried[0].shape[1] // self.info.world_size
        self.state = tuple(s[:, r * b:(r + 1) * b].to(self.device, torch.float32).contiguous() for s in carried)
        row = r if saved_world == self.info.world_size else 0
        if saved_world != self.info.world_size:
            self.ui.warn(f"the run was saved by {saved_world} process(es) and resumes on {self.info.world_size}: "
                         "weights, optimizer, data position and hidden state continue exactly; dropout masks are reseeded")
        cuda = last.tensors.get("rng.cuda")
        set_torch_rng(last.tensors["rng.torch"][row], cuda[row] if cuda is not None else None, self.device)
        set_host_rng(tr.get("host_rng", {}))
        self.step, self.epoch, self.chunk = tr["step"], tr["epoch"], tr["chunk"]
        if self.records and saved_world != self.info.world_size and self.chunk < self.data.n_chunks:
            # the current group's rows were divided among the processes that saved it: read it again
            self.chunk = self.data.group_start(self.epoch, self.chunk)
        self.lr_scale, self.nan_retries = tr["lr_scale"], tr.get("nan_retries", 0)
        self.best_val, self.best_step = tr.get("best_val_bpc"), tr.get("best_step")
        self.last_val, self.last_eval_step = tr.get("last_val_bpc"), tr.get("last_eval_step")
        self.elapsed_before = tr.get("elapsed", 0.0)
        self.saved_step, self.saved_elapsed = self.step, self.elapsed_before
        self.eval_seconds = tr.get("eval_seconds")
        self.reserve = self.eval_seconds or 0.0
        if self.main:
            trim_metrics(self.run_dir, self.step)  # later lines belong to steps that will be redone
            self._write_config()  # allowed changes, e.g. max-steps
        self.ui.say(f"resuming run '{self.run_dir.name}' at step {self.step} (epoch {self.epoch_float:.2f})")

    @property
    def epoch_float(self) -> float:
        return self.epoch + self.chunk / self.data.n_chunks

    def _position(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "chunk": self.chunk}

    def _save_last(self, elapsed: float) -> None:
        """Write last.safetensors (rank 0; every rank joins the gathers of state and RNG)."""
        state = [D.gather_cat(s.float().contiguous(), self.info, dim=1) for s in self.state]
        cpu_rng, cuda_rng = torch_rng(self.device)
        dev = self.device if self.device.type == "cuda" else torch.device("cpu")
        rng_t = D.gather_cat(cpu_rng.to(dev)[None], self.info, 0)
        rng_c = D.gather_cat(cuda_rng.to(dev)[None], self.info, 0) if cuda_rng is not None else None
        if not self.main:
            return
        trainer = {**self._position(), "lr_scale": self.lr_scale, "nan_retries": self.nan_retries,
                   "best_val_bpc": self.best_val, "best_step": self.best_step, "last_val_bpc": self.last_val,
                   "last_eval_step": self.last_eval_step, "eval_seconds": self.eval_seconds,
                   "elapsed": elapsed, "progress": self._progress(elapsed), "world_size": self.info.world_size,
                   "batch_size": self.cfg.batch_size, "seq_len": self.cfg.seq_len}
        write_last(self.run_dir / LAST, self.model, self.opt, state, rng_t, rng_c, trainer, self.step, self.last_val)

    def _save_due(self, elapsed: float) -> bool:
        """Whether last.safetensors is due on the clock (every save_every seconds of the run, or every
        save_every_steps steps), whatever the evaluations do. `elapsed` is the clock every rank agrees on."""
        cfg = self.cfg
        return bool((cfg.save_every_steps and self.step - self.saved_step >= cfg.save_every_steps)
                    or (cfg.save_every and elapsed - self.saved_elapsed >= cfg.save_every))

    def _progress(self, elapsed: float) -> float:
        return progress(self.step, self.total_steps, elapsed, self._train_budget())

    def _train_budget(self) -> float | None:
        """Seconds of the time budget left to training: the budget minus the time reserved for the
        final evaluation (at most half of it), so that training plus that evaluation fit the budget."""
        b = self.cfg.time_budget
        return None if b is None else b - min(self.reserve, 0.5 * b)

    def _step_rate(self, precision: str) -> float:
        """Training chars/s of this run's model shape in `precision`, timed on random ids (for auto)."""
        m, t = self.mcfg, self.cfg
        c = Candidate(m.num_layers, m.hidden_size, m.embed_dim, t.batch_size, t.seq_len, m.vocab_size,
                      precision=precision, cell=m.cell)
        return measure_rate(c, self.device)
