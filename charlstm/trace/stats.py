"""Gate saturation over a whole trace: per layer and gate, how often each unit is closed or open.

Per layer and gate, the fraction of time each unit is left-saturated (< 0.1) or right-saturated
(> 0.9), as in Karpathy, Johnson & Fei-Fei (2015) (the rule itself is charlstm.units.gate_saturation).
Owns: the GateStats sink and its table. Does not know: models or pictures (charlstm.viz.plots).
"""
from __future__ import annotations

import numpy as np

from charlstm.errors import CharlstmError
from charlstm.trace.sinks import Trace, TraceInfo
from charlstm.units import SATURATION_GATES, SATURATION_HIGH, SATURATION_LOW, key, saturation_counts


class GateStats:
    """Per layer and gate, the fraction of time each unit is left-saturated (< 0.1) or
    right-saturated (> 0.9), as in Karpathy, Johnson & Fei-Fei (2015). A sink, so it covers the
    whole text however long; or build one from a Trace with `from_trace`."""

    def __init__(self) -> None:
        self.counts: dict[tuple[int, str], list[np.ndarray]] = {}
        self.n = 0
        self.cell = ""

    def begin(self, info: TraceInfo) -> None:
        self.cell = info.cell
        self.first_layer = info.layers[0]
        for l in info.layers:
            for g in SATURATION_GATES[info.cell]:
                self.counts[(l, g)] = [np.zeros(info.hidden_size, np.int64), np.zeros(info.hidden_size, np.int64)]

    def layer(self, start, layer, arrays) -> None:
        for g in SATURATION_GATES[self.cell]:
            if g not in arrays:
                raise CharlstmError(f"gate statistics need the gates {', '.join(SATURATION_GATES[self.cell])}; trace them too (kinds)")
            left, right = saturation_counts(arrays[g])
            c = self.counts[(layer, g)]
            c[0] += left
            c[1] += right
        if layer == self.first_layer:
            self.n += len(next(iter(arrays.values())))

    def head(self, *args) -> None:
        pass

    def end(self) -> None:
        pass

    @classmethod
    def from_trace(cls, trace: Trace) -> "GateStats":
        """Saturation from the gates stored in a trace (those of SATURATION_GATES[cell] that were traced)."""
        s = cls()
        s.cell, s.n = trace.cell, len(trace)
        for l in trace.layers:
            for g in SATURATION_GATES[trace.cell]:
                if key(l, g) in trace.arrays:
                    s.counts[(l, g)] = list(saturation_counts(trace.arrays[key(l, g)]))
        return s

    def fractions(self) -> dict[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """{layer: {gate: (left [H], right [H])}} as fractions of the characters traced."""
        out: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        n = max(self.n, 1)
        for (l, g), (lo, hi) in self.counts.items():  # insertion order: layers, then GATES order
            out.setdefault(l, {})[g] = (lo / n, hi / n)
        return out

    def table(self) -> str:
        """A plain-text summary: per layer and gate, the mean saturated fractions and how many
        units are mostly (> 50% of the time) left- or right-saturated."""
        fr = self.fractions()
        if not fr:
            return f"{self.cell} cells have no gates"
        lines = [f"gate saturation over {self.n} characters (left < {SATURATION_LOW}, right > {SATURATION_HIGH})",
                 f"{'layer':>5} {'gate':>4} {'left':>6} {'right':>6} {'mostly-left':>11} {'mostly-right':>12} {'never':>6} {'units':>5}"]
        for l, gates in fr.items():
            for g, (lo, hi) in gates.items():
                never = int(((lo == 0) & (hi == 0)).sum())
                lines.append(f"{l:>5} {g:>4} {lo.mean():>6.3f} {hi.mean():>6.3f} {int((lo > 0.5).sum()):>11} "
                             f"{int((hi > 0.5).sum()):>12} {never:>6} {len(lo):>5}")
        return "\n".join(lines)


