"""The machine and its clocks: how fast it multiplies matrices and moves memory, timing loops, peak
memory, and a description of the device.

Owns: the reference numbers every other measurement is compared with (matmul FLOP/s in fp32 and bf16,
memory bandwidth), `timed_loop`, `PeakMemory` and `machine_info`. Does not know: charlstm's models.
"""
from __future__ import annotations

import os
import platform
import resource
import threading
import time
from typing import Any, Callable

import torch


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that a clock read afterwards includes it (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_loop(fn: Callable[[], Any], device: torch.device, min_seconds: float, min_iters: int = 1,
               warmup: int = 1) -> tuple[float, int]:
    """Run fn `warmup` times untimed, then until min_seconds and min_iters: (seconds, iterations)."""
    for _ in range(warmup):
        fn()
    sync(device)
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        if n >= min_iters:
            sync(device)
            dt = time.perf_counter() - t0
            if dt >= min_seconds:
                return dt, n


class PeakMemory:
    """Peak memory (MB) while the `with` block runs.

    CPU: the process's resident set size, sampled from /proc/self/statm every few ms by a thread
    (an approximation: the peak of the whole process, which includes what earlier phases left
    allocated; `delta_mb` is the rise above the RSS at entry). CUDA: max_memory_allocated.
    """

    def __init__(self, device: torch.device, every: float = 0.005):
        self.device, self.every = device, every
        self.peak_mb = 0.0
        self.start_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def rss_mb() -> float:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KB; a coarse fallback

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            self.peak_mb = max(self.peak_mb, self.rss_mb())

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_mb = torch.cuda.memory_allocated(self.device) / 2**20
        else:
            self.start_mb = self.peak_mb = self.rss_mb()
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            sync(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self._stop.set()
            assert self._thread is not None
            self._thread.join()
            self.peak_mb = max(self.peak_mb, self.rss_mb())

    @property
    def delta_mb(self) -> float:
        return max(0.0, self.peak_mb - self.start_mb)


# ----------------------------------------------------------------------------- the machine
def matmul_flops(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 1024,
                 min_seconds: float = 0.5) -> float:
    """Measured FLOP/s of an [n, n] @ [n, n] product (2 n^3 FLOPs each) in `dtype`."""
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    # The best of three windows: a single one measured 56 and 119 GFLOP/s on the same idle CPU in two
    # runs (frequency ramp-up, a neighbour's burst), and an underestimate shows as an MFU above 100%.
    best = 0.0
    for _ in range(3):
        dt, iters = timed_loop(lambda: torch.mm(a, b, out=out), device, min_seconds / 3)
        best = max(best, 2.0 * n ** 3 * iters / dt)
    return best


def memory_bandwidth(device: torch.device, mbytes: int = 256, min_seconds: float = 0.5) -> float:
    """Measured bytes/s of copying an `mbytes` MB float32 tensor (each copy reads and writes it)."""
    n = mbytes * 2**20 // 4
    src = torch.ones(n, device=device)
    dst = torch.empty_like(src)
    dt, iters = timed_loop(lambda: dst.copy_(src), device, min_seconds, min_iters=2)
    return 2.0 * n * 4 * iters / dt


def machine_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"type": device.type, "torch": torch.__version__, "python": platform.python_version(),
                            "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                            "cpu": _cpu_name(), "load_average": round(os.getloadavg()[0], 2),
                            "mkldnn": torch.backends.mkldnn.is_available()}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update({"name": p.name, "memory_gb": round(p.total_memory / 2**30, 1),
                     "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                     "cudnn_enabled": torch.backends.cudnn.enabled, "cuda": torch.version.cuda})
    else:
        info["name"] = info["cpu"]
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


