"""Where and how computation runs: the device, and the CPU thread policy.

Owns: turning a device name (auto, cpu, cuda, cuda:N, mps) into a torch.device, refusing one that is
not there; how many CPU threads a piece of work gets (one for small step-by-step work and on a busy
machine, torch's setting otherwise) and running a block with a thread count. Does not know: models,
files or training; callers say how big a step is.

Why one thread so often: a step-by-step recurrence at small sizes is a long series of tiny
operations, where OpenMP's fork/join costs more than it saves; and when other processes keep the
cores busy, OpenMP threads wait on each other for whole scheduler slices (measured 5-50x slower on a
loaded 2-core machine; docs/benchmarks.md, "Sampling" and "Tracing").
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch

from charlstm.errors import CharlstmError

#: Below this many multiply-adds per step, one CPU thread runs a step-by-step recurrence fastest.
SMALL_STEP_MACS = 4_000_000


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def resolve_device(device: str | torch.device = "auto", local_rank: int | None = None) -> torch.device:
    """'auto' -> cuda if available, else mps, else cpu; a device that is not here is a CharlstmError.

    local_rank: under torchrun, plain 'cuda' means this process's GPU, cuda:LOCAL_RANK."""
    d = str(device)
    if d == "auto":
        d = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    try:
        dev = torch.device(d)
    except RuntimeError:
        raise CharlstmError(f"unknown device '{d}'; choose auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CharlstmError(f"device '{d}' is not available here: this torch ({torch.__version__}) sees no CUDA GPU; "
                                "use --device cpu, or install a CUDA build of torch")
        if dev.index is None:
            return torch.device("cuda", local_rank if local_rank is not None else torch.cuda.current_device())
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise CharlstmError(f"device '{d}' is not available here; use --device cpu")
        return dev
    if dev.type != "cpu":
        raise CharlstmError(f"unknown device '{d}'; choose auto, cpu, cuda, cuda:N or mps")
    return dev


@contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run a block with n torch CPU threads (None: leave as is); the setting is restored after."""
    if n is not None and n < 1:
        raise CharlstmError(f"--threads must be at least 1, got {n}")
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def one_thread():
    """cpu_threads(1): for step-by-step work on a few rows (see the module docstring)."""
    return cpu_threads(1)


def cpu_busy(load: float | None = None, cores: int | None = None) -> bool:
    """Whether other processes already keep (nearly) every core busy: the 1-minute load average
    (`load`, default: now) above the number of cores (default: this machine's) minus one (this
    process's own share)."""
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # no load average on this platform
            return False
    return load > (cores or os.cpu_count() or 1) - 1


def step_threads(device: torch.device, macs_per_step: int) -> int | None:
    """Threads for step-by-step work on the CPU: one when a step is small (`macs_per_step` below
    SMALL_STEP_MACS) or the machine is busy; None (torch's setting) otherwise and off the CPU."""
    if device.type != "cpu":
        return None
    return 1 if macs_per_step < SMALL_STEP_MACS or cpu_busy() else None
