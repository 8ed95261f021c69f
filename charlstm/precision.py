"""The arithmetic training runs in: fp32, or bf16 autocast where it is faster on this machine.

On a GPU bf16 autocast (fp32 master weights, bf16 matrix products and fused cells) is the rule. On a
CPU it depends on the processor: with AMX or AVX512-BF16 the fused LSTM and the head run up to 2x
faster in bf16 (docs/benchmarks.md, "bf16 on the CPU"); without them bf16 is emulated and slower. So
`--precision auto` looks at the processor's flags, then times a few real training steps of the run's
own model in both precisions (as autosize times its candidates) and takes bf16 only when it is
faster by more than BF16_MARGIN; `fp32` and `bf16` force one. The choice is made once, at the start
of a run, printed, and stored in the run's config.json, so a resumed run keeps its arithmetic.

Owns: the precision names, the CPU bf16 check, `autocast` and `choose`. Does not know: the training
loop (it is handed a function that times one training step).
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from functools import cache
from typing import Callable, ContextManager

import torch

from charlstm.errors import CharlstmError

PRECISIONS = ("auto", "fp32", "bf16")
BF16_MARGIN = 1.05  # bf16 must be at least this much faster to be chosen on a CPU
# Below this many multiply-adds per character a model gains nothing from bf16 on a CPU, so auto keeps
# fp32 without timing it (the synthetic tasks' models). Measured through `charlstm train`, one
# thread, batch 16 x 32, AMD EPYC with AVX512-BF16 (scripts/bench_precision.py --batch 16x32):
# 1x64 (0.05M) 1.04x, 1x128 (0.11M) 1.17x, 1x256 (0.35M) 1.39x, 1x512 (1.2M) 1.53x. Above it, auto times both.
BF16_MIN_MACS = 100_000


@cache
def cpu_flags() -> frozenset[str]:
    """The processor's feature flags (Linux /proc/cpuinfo), empty where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AMX tiles or AVX512-BF16 instructions)."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def autocast(device: torch.device, precision: str) -> ContextManager:
    """The context a forward pass runs in: bf16 autocast on the device, or nothing (fp32)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


@dataclass
class Choice:
    """What `choose` decided: the precision, and one line saying why (measured rates included)."""

    precision: str
    reason: str


def choose(pref: str, device: torch.device, step_rate: Callable[[str], float] | None = None,
           macs: int | None = None) -> Choice:
    """The precision a run trains in. pref: auto, fp32 or bf16. step_rate(precision) -> training
    characters per second of the run's model, measured (needed for auto on a CPU with bf16); macs:
    the model's multiply-adds per character (small models keep fp32 unmeasured)."""
    if pref not in PRECISIONS:
        raise CharlstmError(f"unknown precision '{pref}'; choose auto, fp32 or bf16")
    if pref == "fp32":
        return Choice("fp32", "fp32 (asked for)")
    if device.type == "cuda":
        return Choice("bf16", "bf16 autocast on the GPU" + (" (asked for)" if pref == "bf16" else ""))
    if device.type != "cpu":
        if pref == "bf16":
            return Choice("bf16", f"bf16 autocast on {device.type} (asked for)")
        return Choice("fp32", f"fp32 on {device.type}")
    if pref == "bf16":
        note = "" if cpu_has_bf16() else "; this CPU has no AMX or AVX512-BF16, so bf16 is emulated and slow"
        return Choice("bf16", "bf16 autocast on the CPU (asked for" + note + ")")
    if not cpu_has_bf16():
        return Choice("fp32", "fp32: this CPU has no AMX or AVX512-BF16 (bf16 would be emulated and slower)")
    if macs is not None and macs < BF16_MIN_MACS:
        return Choice("fp32", f"fp32: a model this small ({macs / 1e6:.2f}M multiply-adds per character) gains nothing from bf16")
    if step_rate is None:
        return Choice("fp32", "fp32 (bf16 not measured)")
    fp32, bf16 = step_rate("fp32"), step_rate("bf16")
    ratio = bf16 / fp32 if fp32 > 0 else 0.0
    if ratio >= BF16_MARGIN:
        return Choice("bf16", f"bf16: {ratio:.2f}x the fp32 speed here ({bf16:,.0f} vs {fp32:,.0f} chars/s)")
    return Choice("fp32", f"fp32: bf16 measured {ratio:.2f}x its speed here ({bf16:,.0f} vs {fp32:,.0f} chars/s)")
