"""`charlstm bench`: every measurement for the chosen presets, and the scaling table.

Owns: which measurements run, in what order, for how long (BenchOptions), and the JSON result's
structure (docs/benchmarks.md). Does not know: how a rate is measured (measure) or printed (report).
"""
from __future__ import annotations

import dataclasses
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from charlstm.bench.machine import PeakMemory, machine_info, matmul_flops, memory_bandwidth
from charlstm.bench.measure import (encoding_rate, matmul_params, measure_training, random_dataset, sample_rate,
                                    sample_weight_bytes, trace_rate, train_flops_per_char)
from charlstm.config import PRESETS, build_configs
from charlstm.errors import CharlstmError
from charlstm.model import CharRNN
from charlstm.runtime import resolve_device

BENCH_FORMAT = "charlstm-bench"
BENCH_VERSION = 1
Say = Callable[[str], None]


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
    axes = axes or SCALING_AXES
    given = [("axis", name, v) for name, values in axes.items() for v in (values or [None])]
    given += [("base", name, v) for name, v in (base or {}).items()]
    for what, name, v in given:
        if name not in SCALING_BASE:
            raise CharlstmError(f"unknown scaling {what} '{name}'; choose from {', '.join(SCALING_BASE)}")
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise CharlstmError(f"scaling {what} {name} needs whole numbers >= 1, got {v!r}")
    base = {**SCALING_BASE, **(base or {})}
    dev = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    say = say or (lambda msg: None)
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


