"""The human-readable tables of `charlstm bench` results (the JSON is the result itself).

Owns: formatting. Does not know: how anything was measured.
"""
from __future__ import annotations

import sys
from typing import Any

from charlstm.runtime import cpu_busy


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
