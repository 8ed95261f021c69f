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
- tracing (`charlstm.trace.trace_ids`, every state and gate of every layer) and encoding
  (`charlstm.corpora.text.write_text`, the whole `charlstm data text` build) throughput;
- peak memory of each phase: resident set size sampled during it (CPU), or
  torch.cuda.max_memory_allocated (CUDA).

Timings on a GPU are bracketed by torch.cuda.synchronize. Nothing here asserts a speed: tests only
check that the machinery runs and its output is well formed.

Modules: `machine` (reference numbers, clocks, memory), `measure` (each rate), `run` (the whole
bench and the scaling table), `report` (the tables).
"""
from charlstm.bench.machine import PeakMemory, machine_info, matmul_flops, memory_bandwidth, sync, timed_loop
from charlstm.bench.measure import (bare_train_rate, charlstm_train_rate, encoding_rate, log_every_for,
                                    matmul_params, measure_training, random_dataset, sample_rate,
                                    sample_weight_bytes, stdlib_text, trace_rate, train_flops_per_char)
from charlstm.bench.report import format_report, format_scaling, main_say
from charlstm.bench.run import (BENCH_FORMAT, BENCH_VERSION, SCALING_AXES, SCALING_BASE, BenchOptions, run_bench,
                                run_scaling)

__all__ = ["BENCH_FORMAT", "BENCH_VERSION", "SCALING_AXES", "SCALING_BASE", "BenchOptions", "PeakMemory",
           "bare_train_rate", "charlstm_train_rate", "encoding_rate", "format_report", "format_scaling",
           "log_every_for", "machine_info", "main_say", "matmul_flops", "matmul_params", "measure_training",
           "memory_bandwidth", "random_dataset", "run_bench", "run_scaling", "sample_rate", "sample_weight_bytes",
           "stdlib_text", "sync", "timed_loop", "trace_rate", "train_flops_per_char"]
