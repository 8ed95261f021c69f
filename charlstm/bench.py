"""Performance measurements behind `charlstm bench`: how fast charlstm trains, samples, encodes and
traces on this machine, each next to the reference that says how fast it *could* be.

    from charlstm.bench import run_bench, format_report
    result = run_bench(device="cpu", quick=True)     # -> a JSON-ready dict (see docs/benchmarks.md)
    print(format_report(result))

What is measured, all in this one process, with the library's own code paths:

- the machine: fp32 (and bf16) matrix-multiply FLOP/s of an n x n product, and memory bandwidth
  (a large tensor copy, bytes read + written per second);
- training, per preset: charlstm's `train()` on a generated random-text dataset for a few log
  intervals (its own loop: TBPTT streams, AdamW, clipping, NaN checks, snapshots), next to a bare
  hand-written nn.Embedding -> nn.LSTM -> nn.Linear loop of the same shape (same batch, seq len,
  AdamW, clipping, carried state, no bookkeeping); model FLOP utilisation (MFU) = training FLOPs
  per character (6 x the parameters in matrix products: 2 for the forward multiply-add, 4 for the
  two backward products) x chars/s / the measured matmul FLOP/s;
- sampling (`charlstm.sample.generate`) at batch 1 and 64, next to the weight-streaming limit: one
  step reads every weight matrix once, so at most bandwidth / weight bytes steps per second
  (x batch characters); small models whose weights stay in cache can beat it;
- tracing (`charlstm.trace.trace_text`, every state and gate of every layer) and encoding
  (`charlstm.corpora.text.write_text`, the whole `charlstm data text` build) throughput;
- peak memory of each phase: resident set size sampled during it (CPU), or
  torch.cuda.max_memory_allocated (CUDA).

Timings on a GPU are bracketed by torch.cuda.synchronize. Nothing here asserts a speed: tests only
check that the machinery runs and its output is well formed.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from charlstm.config import PRESETS, ModelConfig, TrainConfig, build_configs
from charlstm.dataset import Dataset, DatasetBuilder
from charlstm.errors import CharlstmError
from charlstm.model import CharRNN
from charlstm.sample import cpu_busy

BENCH_FORMAT = "charlstm-bench"
BENCH_VERSION = 1
GATES = {"lstm": 4, "peephole": 4, "gru": 3, "rnn": 1}
ALPHABET = [chr(c) for c in range(32, 127)] + ["\n"]
Say = Callable[[str], None]


# ----------------------------------------------------------------------------- devices and clocks
def resolve_device(pref: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda'/'cuda:N'/'cpu' as given (a missing GPU is an error)."""
    if pref == "auto":
        pref = "cuda" if torch.cuda.is_available() else "cpu"
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CharlstmError(f"--device {pref} was asked for but this torch ({torch.__version__}) sees no CUDA GPU; "
                                "use --device cpu")
        return torch.device(pref if ":" in pref else f"cuda:{torch.cuda.current_device()}")
    if pref != "cpu":
        raise CharlstmError(f"unknown device '{pref}' for bench; choose auto, cpu, cuda or cuda:N")
    return torch.device("cpu")


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


# ----------------------------------------------------------------------------- model arithmetic
def matmul_params(m: ModelConfig) -> int:
    """Weights used in matrix products per character: every layer's W_ih [G*H, in] and W_hh [G*H, H]
    plus the head [V, H]. (The embedding is a row gather; biases and gate arithmetic are
    elementwise, a few % of the work for H >= 128.)"""
    G, H, E, L, V = GATES[m.cell], m.hidden_size, m.embed_dim, m.num_layers, m.vocab_size
    return G * H * (E + H) + (L - 1) * G * H * (2 * H) + H * V


def train_flops_per_char(m: ModelConfig) -> float:
    """Training FLOPs per character: 2 (forward multiply-add) + 4 (gradients of inputs and weights),
    per matmul weight."""
    return 6.0 * matmul_params(m)


def sample_weight_bytes(m: ModelConfig, itemsize: int = 4) -> int:
    """Bytes of weights one sampling step reads (charlstm.sample.Stepper): W_hh of every layer,
    W_ih of layers >= 1 and the head. Layer 0's input projection is folded into a [V, G*H] table
    of which a step reads only one row per sample (negligible)."""
    G, H, L, V = GATES[m.cell], m.hidden_size, m.num_layers, m.vocab_size
    return itemsize * (L * G * H * H + (L - 1) * G * H * H + H * V)


# ----------------------------------------------------------------------------- data
def random_dataset(root: Path, n_chars: int = 400_000, seed: int = 0) -> Dataset:
    """A dataset of uniformly random printable ASCII (speed does not depend on what is learnt):
    97 + 2 symbols, 5% validation."""
    from charlstm.vocab import Vocab

    vocab = Vocab.build_char(Counter(ALPHABET))
    ids = np.random.default_rng(seed).integers(2, vocab.size, size=n_chars).astype(np.uint8)
    n_val = max(2, n_chars // 20)
    with DatasetBuilder(root / "bench-random", force=True) as b:
        b.write_split("train", ids[: n_chars - n_val])
        b.write_split("val", ids[n_chars - n_val:])
        return b.commit(vocab, {"records": False, "source": {"kind": "bench-random"}, "options": {}, "stats": {}})


def stdlib_text(n_bytes: int) -> bytes:
    """About n_bytes of Python standard-library source (repeated if needed): realistic code text."""
    from charlstm.corpora.code import stdlib_path

    out = bytearray()
    files = sorted(stdlib_path().glob("*.py"))
    while len(out) < n_bytes and files:
        for p in files:
            out += p.read_bytes()
            if len(out) >= n_bytes:
                break
    return bytes(out[:n_bytes])


# ----------------------------------------------------------------------------- training
def bare_train_rate(mcfg: ModelConfig, tcfg: TrainConfig, device: torch.device, steps: int,
                    warmup: int = 2) -> float:
    """chars/s of a hand-written loop of the same shape: nn.Embedding -> nn.LSTM/GRU/RNN -> nn.Linear,
    B x T chunks of one random [B, steps*T + 1] tensor on the device, carried and detached state,
    AdamW, clip_grad_norm_, bf16 autocast on CUDA when tcfg.amp (as charlstm), no host syncs."""
    torch.manual_seed(tcfg.seed)
    V, E, H, L, B, T = mcfg.vocab_size, mcfg.embed_dim, mcfg.hidden_size, mcfg.num_layers, tcfg.batch_size, tcfg.seq_len
    rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}.get(mcfg.cell, nn.LSTM)
    embed, rnn, head = nn.Embedding(V, E).to(device), rnn_cls(E, H, L, batch_first=True).to(device), nn.Linear(H, V).to(device)
    params = [*embed.parameters(), *rnn.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    n = warmup + steps
    data = torch.randint(0, V, (B, n * T + 1), device=device)
    amp = tcfg.amp and device.type == "cuda"
    state = None
    t0 = 0.0
    for i in range(n):
        if i == warmup:
            sync(device)
            t0 = time.perf_counter()
        x, y = data[:, i * T:(i + 1) * T], data[:, i * T + 1:(i + 1) * T + 1]
        with torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext():
            out, state = rnn(embed(x), state)
            loss = F.cross_entropy(head(out).reshape(-1, V).float(), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, tcfg.grad_clip)
        opt.step()
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
    sync(device)
    return steps * B * T / (time.perf_counter() - t0)


def charlstm_train_rate(ds: Dataset, mcfg: ModelConfig, tcfg: TrainConfig, device: torch.device, run_dir: Path,
                        log_every: int, intervals: int) -> float:
    """chars/s of charlstm's own `train()` (its whole loop: logging, NaN checks, snapshots) over
    `intervals` log intervals after a first, untimed one; read from its metrics times. The final
    (tiny) evaluation and checkpoint writes come after the last timed point."""
    from charlstm.train import train

    t = dataclasses.replace(tcfg, max_steps=log_every * (intervals + 1), max_epochs=None, time_budget=None,
                            log_every=log_every, eval_every=10**9, eval_max_chars=1000, sample_chars=0,
                            device=str(device))
    r = train(ds, run_dir, mcfg, t, force=True, quiet=True)
    times = [h["time"] for h in r.history]
    if len(times) < 2 or times[-1] <= times[0]:
        raise CharlstmError("the training run logged too few points to time it")
    return intervals * log_every * r.batch_size * t.seq_len / (times[-1] - times[0])


def log_every_for(step_seconds: float, target: float) -> int:
    """Steps per log interval so that an interval lasts about `target` seconds (1..10; 10 is
    train's default, so the per-interval bookkeeping is amortised as in a real run)."""
    return int(min(10, max(1, round(target / max(step_seconds, 1e-6)))))


def measure_training(ds: Dataset, mcfg: ModelConfig, tcfg: TrainConfig, device: torch.device, root: Path,
                     quick: bool, repeats: int = 1) -> dict[str, Any]:
    """Training chars/s of charlstm and of the bare loop, side by side (alternating, best of
    `repeats`), model FLOPs and peak memory."""
    probe = bare_train_rate(mcfg, tcfg, device, steps=2, warmup=1)  # also warms oneDNN/cuDNN up
    step_s = tcfg.batch_size * tcfg.seq_len / probe
    log_every = log_every_for(step_s, 0.5 if quick else 2.0)
    intervals = 2 if quick else 3
    bare, ours, peak = [], [], 0.0
    for _ in range(repeats):
        bare.append(bare_train_rate(mcfg, tcfg, device, steps=log_every * intervals, warmup=log_every))
        with PeakMemory(device) as pm:
            ours.append(charlstm_train_rate(ds, mcfg, tcfg, device, root / "run", log_every, intervals))
        peak = max(peak, pm.peak_mb)
    b, o = max(bare), max(ours)
    return {"charlstm_chars_per_s": o, "bare_chars_per_s": b, "ratio": o / b, "log_every": log_every,
            "timed_steps": log_every * intervals, "peak_memory_mb": peak}


# ----------------------------------------------------------------------------- inference
def sample_rate(model: CharRNN, vocab, batch: int, length: int, device: torch.device) -> float:
    """chars/s of `charlstm.sample.generate` producing `batch` samples of `length` characters."""
    from charlstm.sample import SampleOptions, generate

    opts = SampleOptions(length=length, num_samples=batch, seed=0, stop_at_eot=False)
    generate(model, vocab, [], dataclasses.replace(opts, length=8))  # warm-up: first-call costs
    sync(device)
    t = time.perf_counter()
    generate(model, vocab, [], opts)
    sync(device)
    return batch * length / (time.perf_counter() - t)


def trace_rate(model: CharRNN, vocab, n_chars: int, device: torch.device) -> float:
    """chars/s of `charlstm.trace.trace_text` recording every kind of every layer (float32, in memory)."""
    from charlstm.trace import trace_text

    rng = np.random.default_rng(1)
    text = "".join(ALPHABET[i] for i in rng.integers(0, len(ALPHABET), n_chars))
    trace_text(model, vocab, text[:256])  # warm-up
    sync(device)
    t = time.perf_counter()
    trace_text(model, vocab, text)
    sync(device)
    return n_chars / (time.perf_counter() - t)


def encoding_rate(root: Path, mbytes: float) -> dict[str, Any]:
    """MB/s of the whole `charlstm data text` build (two passes, split files, sha256, rename) on
    `mbytes` MB of stdlib source, in this process."""
    from charlstm.corpora.text import write_text

    src = root / "encode-source.txt"
    data = stdlib_text(int(mbytes * 1e6))
    src.write_bytes(data)
    with PeakMemory(torch.device("cpu")) as pm:
        t = time.perf_counter()
        write_text([src], "bench-encode", data_dir=root, force=True)
        dt = time.perf_counter() - t
    src.unlink()
    shutil.rmtree(root / "bench-encode", ignore_errors=True)
    return {"mbytes": len(data) / 1e6, "mb_per_s": len(data) / 1e6 / dt, "seconds": dt, "peak_memory_mb": pm.peak_mb}


# ----------------------------------------------------------------------------- the whole bench
@dataclasses.dataclass
class BenchOptions:
    """What `run_bench` measures and for how long. Sizes default by `quick` when left None."""

    device: str = "auto"
    quick: bool = False
    presets: Sequence[str] | None = None  # default: tiny, small (quick); tiny, small, medium
    threads: int | None = None  # torch CPU threads (None: leave torch's setting)
    repeats: int | None = None  # training measurements alternate bare/charlstm this many times
    matmul_n: int | None = None
    bandwidth_mb: int | None = None
    sample_chars: int | None = None  # per sample at batch 1 (batch 64: a quarter of it)
    trace_chars: int | None = None
    encode_mb: float | None = None
    data_chars: int | None = None  # size of the generated training dataset
    model_overrides: dict[str, Any] | None = None  # e.g. tiny sizes for tests

    def resolved(self) -> "BenchOptions":
        q = self.quick
        return dataclasses.replace(
            self, presets=list(self.presets or (["tiny", "small"] if q else ["tiny", "small", "medium"])),
            repeats=self.repeats or (1 if q else 2), matmul_n=self.matmul_n or (512 if q else 1024),
            bandwidth_mb=self.bandwidth_mb or (64 if q else 256), sample_chars=self.sample_chars or (400 if q else 2000),
            trace_chars=self.trace_chars or (2000 if q else 20000), encode_mb=self.encode_mb or (5 if q else 50),
            data_chars=self.data_chars or 400_000)


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


def run_bench(opts: BenchOptions | None = None, say: Say | None = None) -> dict[str, Any]:
    """Run every measurement; return the JSON-ready result (structure in docs/benchmarks.md)."""
    o = (opts or BenchOptions()).resolved()
    say = say or (lambda msg: None)
    unknown = [p for p in o.presets if p not in PRESETS]
    if unknown:
        raise CharlstmError(f"unknown preset '{unknown[0]}'; choose from {', '.join(PRESETS)}")
    device = resolve_device(o.device)
    if o.threads:
        torch.set_num_threads(o.threads)
    t_start = time.perf_counter()
    result: dict[str, Any] = {"format": BENCH_FORMAT, "version": BENCH_VERSION, "quick": o.quick,
                              "device": machine_info(device)}
    if device.type == "cuda":
        # The fast paths charlstm's trainer turns on: cuDNN autotuning and TF32 matmuls.
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    root = Path(tempfile.mkdtemp(prefix="charlstm-bench."))
    try:
        say("measuring matrix multiply and memory bandwidth")
        secs = 0.3 if o.quick else 1.0
        f32 = matmul_flops(device, torch.float32, o.matmul_n, secs)
        bf16 = matmul_flops(device, torch.bfloat16, o.matmul_n, secs)
        bw = memory_bandwidth(device, o.bandwidth_mb, secs)
        result["machine"] = {"matmul_n": o.matmul_n, "matmul_flops_fp32": f32, "matmul_flops_bf16": bf16,
                             "bf16_over_fp32": bf16 / f32, "memory_bandwidth": bw, "bandwidth_mb": o.bandwidth_mb}
        say(f"measuring encoding ({o.encode_mb:g} MB)")
        result["encoding"] = encoding_rate(root, o.encode_mb)
        ds = random_dataset(root, o.data_chars)
        rows = []
        for preset in o.presets:
            mcfg, tcfg = build_configs(preset, overrides=o.model_overrides)
            mcfg.vocab_size = ds.vocab.size
            tcfg.batch_size = min(tcfg.batch_size, (len(ds.split("train")) - 1) // tcfg.seq_len)
            say(f"{preset}: training ({mcfg.num_layers}x{mcfg.hidden_size}, batch {tcfg.batch_size} x seq {tcfg.seq_len})")
            row: dict[str, Any] = {"preset": preset, "cell": mcfg.cell, "num_layers": mcfg.num_layers,
                                   "hidden_size": mcfg.hidden_size, "embed_dim": mcfg.embed_dim,
                                   "vocab_size": mcfg.vocab_size, "batch_size": tcfg.batch_size,
                                   "seq_len": tcfg.seq_len, "parameters": CharRNN(mcfg).num_parameters(),
                                   "matmul_parameters": matmul_params(mcfg),
                                   "train_flops_per_char": train_flops_per_char(mcfg)}
            tr = measure_training(ds, mcfg, tcfg, device, root, o.quick, o.repeats)
            tr["mfu"] = tr["charlstm_chars_per_s"] * row["train_flops_per_char"] / f32
            tr["bare_mfu"] = tr["bare_chars_per_s"] * row["train_flops_per_char"] / f32
            tr["model_flops"] = tr["charlstm_chars_per_s"] * row["train_flops_per_char"]
            row["train"] = tr
            say(f"{preset}: sampling and tracing")
            torch.manual_seed(0)
            model = CharRNN(mcfg).to(device).eval()
            wbytes = sample_weight_bytes(mcfg)
            smp: dict[str, Any] = {"weight_bytes": wbytes}
            with PeakMemory(device) as pm:
                for batch, n in ((1, o.sample_chars), (64, max(16, o.sample_chars // 4))):
                    rate = sample_rate(model, ds.vocab, batch, n, device)
                    limit = batch * bw / wbytes
                    smp[f"batch{batch}_chars_per_s"] = rate
                    smp[f"batch{batch}_stream_limit"] = limit
                    smp[f"batch{batch}_of_limit"] = rate / limit
            smp["peak_memory_mb"] = pm.peak_mb
            row["sample"] = smp
            with PeakMemory(device) as pm:
                rate = trace_rate(model, ds.vocab, o.trace_chars, device)
            row["trace"] = {"chars": o.trace_chars, "chars_per_s": rate, "peak_memory_mb": pm.peak_mb}
            rows.append(row)
        result["presets"] = rows
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    result["seconds"] = time.perf_counter() - t_start
    return result


# ----------------------------------------------------------------------------- scaling
SCALING_BASE = {"num_layers": 2, "hidden_size": 256, "embed_dim": 64, "batch_size": 32, "seq_len": 100}
SCALING_AXES = {"hidden_size": [128, 256, 512, 1024], "num_layers": [1, 2, 3, 4],
                "batch_size": [8, 32, 128, 512], "seq_len": [25, 50, 100, 200, 400]}


def run_scaling(device: str = "auto", axes: dict[str, list[int]] | None = None, base: dict[str, Any] | None = None,
                quick: bool = False, threads: int | None = None, say: Say | None = None) -> dict[str, Any]:
    """Training chars/s (charlstm's train() and the bare loop) and peak memory as one of hidden size,
    layers, batch or seq len grows from `base` (default 2x256, embedding 64, batch 32 x seq 100)."""
    dev = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    say = say or (lambda msg: None)
    axes = axes or SCALING_AXES
    base = {**SCALING_BASE, **(base or {})}
    f32 = matmul_flops(dev, torch.float32, 1024, 0.6 if quick else 1.0)
    out: dict[str, Any] = {"format": BENCH_FORMAT + "-scaling", "version": BENCH_VERSION,
                           "device": machine_info(dev), "base": base, "matmul_flops_fp32": f32, "rows": []}
    root = Path(tempfile.mkdtemp(prefix="charlstm-scaling."))
    try:
        need = max(v for v in axes.get("batch_size", [base["batch_size"]])) * \
            max(v for v in axes.get("seq_len", [base["seq_len"]])) * 3 + 1000
        ds = random_dataset(root, max(200_000, need))
        for axis, values in axes.items():
            for v in values:
                cfg = {**base, axis: v}
                mcfg, tcfg = build_configs(None, overrides=cfg)
                mcfg.vocab_size = ds.vocab.size
                say(f"scaling: {axis} = {v}")
                tr = measure_training(ds, mcfg, tcfg, dev, root, quick, 1)
                out["rows"].append({"axis": axis, "value": v, **cfg, "train_flops_per_char": train_flops_per_char(mcfg),
                                    **tr, "mfu": tr["charlstm_chars_per_s"] * train_flops_per_char(mcfg) / f32})
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


# ----------------------------------------------------------------------------- reports
def _si(x: float, unit: str = "") -> str:
    for div, p in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{p}{unit}"
    return f"{x:.3g}{unit}"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
                     for r in rows)


def format_report(r: dict[str, Any]) -> str:
    """The human-readable tables for a run_bench result."""
    d, m, e = r["device"], r["machine"], r["encoding"]
    lines = [f"charlstm bench{' --quick' if r['quick'] else ''}: {d['type']} ({d['name']}), "
             f"{d['threads']} thread(s), torch {d['torch']}, load average {d['load_average']}"
             + (f", cuDNN {d.get('cudnn')}" if d["type"] == "cuda" else ""),
             f"matmul {m['matmul_n']}x{m['matmul_n']}: fp32 {_si(m['matmul_flops_fp32'], 'FLOP/s')}, "
             f"bf16 {_si(m['matmul_flops_bf16'], 'FLOP/s')} ({m['bf16_over_fp32']:.2f}x fp32); "
             f"memory bandwidth {_si(m['memory_bandwidth'], 'B/s')}",
             f"encoding (charlstm data text, {e['mbytes']:.3g} MB of stdlib source): {e['mb_per_s']:.0f} MB/s, "
             f"peak RSS {e['peak_memory_mb']:.0f} MB", ""]
    if d["type"] == "cpu" and d["threads"] > 1 and cpu_busy(d["load_average"], d["cpu_count"]):
        # OpenMP threads wait on each other for whole scheduler slices when the cores are taken
        lines.insert(1, f"note: the machine is busy (load average {d['load_average']} on {d['cpu_count']} cores); "
                        "with several threads every number may be several times lower: try --threads 1")
    mem = "peak MB" if d["type"] != "cuda" else "peak CUDA MB"
    rows = [["training", "model", "params", "batch x seq", "charlstm chars/s", "bare nn.LSTM", "ratio",
             "FLOP/char", "MFU", mem]]
    for p in r["presets"]:
        t = p["train"]
        rows.append([p["preset"], f"{p['num_layers']}x{p['hidden_size']}", _si(p["parameters"]),
                     f"{p['batch_size']}x{p['seq_len']}", f"{t['charlstm_chars_per_s']:,.0f}",
                     f"{t['bare_chars_per_s']:,.0f}", f"{t['ratio']:.2f}", _si(p["train_flops_per_char"]),
                     f"{100 * t['mfu']:.1f}%", f"{t['peak_memory_mb']:,.0f}"])
    lines += [_table(rows), ""]
    rows = [["inference", "sample b=1", "stream limit", "sample b=64", "stream limit", "trace chars/s", mem]]
    for p in r["presets"]:
        s, tr = p["sample"], p["trace"]
        rows.append([p["preset"], f"{s['batch1_chars_per_s']:,.0f}", f"{s['batch1_stream_limit']:,.0f}",
                     f"{s['batch64_chars_per_s']:,.0f}", f"{s['batch64_stream_limit']:,.0f}",
                     f"{tr['chars_per_s']:,.0f}", f"{max(s['peak_memory_mb'], tr['peak_memory_mb']):,.0f}"])
    lines += [_table(rows), "",
              "chars/s are characters per second; ratio = charlstm / bare loop of the same shape; MFU = FLOP/char x "
              "chars/s / fp32 matmul FLOP/s;",
              "stream limit = batch x memory bandwidth / weight bytes (weights that fit in cache can beat it).",
              f"total {r['seconds']:.0f} s, peak RSS {r['peak_rss_mb']:.0f} MB"]
    return "\n".join(lines)


def format_scaling(s: dict[str, Any]) -> str:
    """A Markdown table of a run_scaling result."""
    rows = ["| varied | layers x hidden | batch x seq | charlstm chars/s | bare chars/s | MFU | peak RSS MB |",
            "|---|---|---|---:|---:|---:|---:|"]
    for r in s["rows"]:
        rows.append(f"| {r['axis']} = {r['value']} | {r['num_layers']}x{r['hidden_size']} | {r['batch_size']}x{r['seq_len']} | "
                    f"{r['charlstm_chars_per_s']:,.0f} | {r['bare_chars_per_s']:,.0f} | {100 * r['mfu']:.1f}% | "
                    f"{r['peak_memory_mb']:,.0f} |")
    return "\n".join(rows)


def main_say(msg: str) -> None:
    """Progress lines on stderr (the table and JSON stay clean on stdout)."""
    print(msg, file=sys.stderr, flush=True)
