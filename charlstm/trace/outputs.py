"""One pass over a text feeding every output `charlstm trace` asks for: .npz or LSTMVis files, the
HTML viewer, one unit's values for the terminal, gate statistics and their plot.

Owns: checking the requested outputs before any work (`TraceOutputs.check`), choosing the sinks and
the kinds they need, running the trace once, and writing the pictures. Dictionary features (`--show
dict:12`, and the run's dictionaries in the viewer) arrive already read (charlstm.dictionary): an
object with layer, kind and column() to show, encoders with codes() to embed; this module only
hands them the states. Does not know: the command
line (charlstm.cli.trace parses and prints) or where the ids came from (charlstm.inputs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from charlstm.errors import CharlstmError
from charlstm.fileio import check_output
from charlstm.trace.files import LstmVisWriter, NpzWriter
from charlstm.trace.record import run_trace
from charlstm.trace.sinks import CodesSink, ColumnSink, MemorySink, resolve_kinds, resolve_layers
from charlstm.trace.stats import GateStats
from charlstm.units import SATURATION_GATES, Unit, check_unit
from charlstm.viz.html import MAX_VALUES, DictCodes, write_html
from charlstm.viz.plots import gate_plot


@dataclass
class TraceOutputs:
    """What to produce. output: the .npz file, or the LSTMVis folder when fmt == "lstmvis"; html:
    the viewer page (at most html_chars characters); show: one unit to return the values of (a Unit,
    or a dictionary feature: an object with layer, kind, column(states) and name); dictionaries:
    encoders (layer, kind, k, size, key, codes(states)) whose features the viewer lists too;
    gate_stats / gate_plot: saturation table / PNG. dtype: float32 or float16 in the .npz."""

    output: Path | None = None
    fmt: str = "npz"
    html: Path | None = None
    html_chars: int = 20_000
    show: Any = None
    dictionaries: list = field(default_factory=list)
    gate_stats: bool = False
    gate_plot: Path | None = None
    dtype: str = "float32"

    def check(self) -> None:
        """Everything that can be checked before a model is loaded (raises CharlstmError)."""
        if self.html_chars < 1:
            raise CharlstmError(f"--html-chars must be at least 1, got {self.html_chars}")
        if self.fmt not in ("npz", "lstmvis"):
            raise CharlstmError(f"unknown trace format '{self.fmt}'; choose npz or lstmvis")
        if self.fmt == "lstmvis" and self.output is None:
            raise CharlstmError("--format lstmvis writes a folder: give -o FOLDER")
        if self.output is not None:
            check_output(self.output, "trace output", folder=self.fmt == "lstmvis")
        if self.html is not None:
            check_output(self.html, "--html")
        if self.gate_plot is not None:
            check_output(self.gate_plot, "--gate-plot")
            try:
                import matplotlib  # noqa: F401  (optional: only checked for)
            except ImportError:
                raise CharlstmError("--gate-plot needs matplotlib: pip install 'charlstm[plots]'") from None


@dataclass
class TraceReport:
    """What a traced pass produced: seconds, characters, the layers and kinds stored, the shown
    unit's values [T], gate statistics, and the files written (path -> what)."""

    seconds: float
    total: int
    layers: list[int]
    kinds: list[str]
    column: np.ndarray | None = None
    stats: GateStats | None = None
    html_chars: int = 0
    written: dict[Path, str] = field(default_factory=dict)


def trace_outputs(model, vocab, ids: np.ndarray, outputs: TraceOutputs, *, layers: Any = None, kinds: Any = None,
                  chunk: int = 4096, progress: bool = False, meta: dict[str, Any] | None = None,
                  title: str = "charlstm trace") -> TraceReport:
    """Trace ids [T] once and produce every requested output (see TraceOutputs)."""
    outputs.check()
    mc = model.cfg
    layers_ = resolve_layers(mc.num_layers, layers)
    kinds_ = resolve_kinds(mc.cell, kinds)
    if chunk < 1:
        raise CharlstmError(f"--chunk must be at least 1, got {chunk}")
    if outputs.show is not None:
        if isinstance(outputs.show, Unit):
            check_unit(outputs.show, mc.cell, mc.num_layers, mc.hidden_size)
        if outputs.show.layer not in layers_:
            raise CharlstmError(f"--show {outputs.show}: layer {outputs.show.layer} is not among the traced --layers")
    gates = SATURATION_GATES[mc.cell]
    if (outputs.gate_stats or outputs.gate_plot) and not gates:
        raise CharlstmError(f"{mc.cell} cells have no gates; --gate-stats and --gate-plot need an lstm, peephole or gru run")
    if not any((outputs.output, outputs.html, outputs.show, outputs.gate_stats, outputs.gate_plot)):
        raise CharlstmError("nothing to do: ask for -o, --html, --show, --gate-stats or --gate-plot")

    sinks: list = []
    writer = None
    if outputs.output is not None:
        if outputs.fmt == "lstmvis":
            writer = LstmVisWriter(outputs.output, kinds_, name=title,
                                   description=f"{title} ({mc.cell}, {mc.num_layers}x{mc.hidden_size})")
        else:
            writer = NpzWriter(outputs.output, kinds_, np.float16 if outputs.dtype == "float16" else np.float32, meta)
        sinks.append(writer)
    total = len(ids)
    mem = None
    if outputs.html is not None:
        n_html = max(1, min(total, outputs.html_chars, MAX_VALUES // (len(layers_) * len(kinds_) * mc.hidden_size)))
        mem = MemorySink(kinds_, dtype=np.float32, limit=n_html)
        sinks.append(mem)
        codes = {d.key: CodesSink(d, limit=n_html) for d in outputs.dictionaries if d.layer in layers_}
        sinks += list(codes.values())
    stats = GateStats() if gates and (outputs.gate_stats or outputs.gate_plot or outputs.html) else None
    if stats is not None:
        sinks.append(stats)
    column = ColumnSink(outputs.show) if outputs.show is not None else None
    if column is not None:
        sinks.append(column)
    needed = set(kinds_) | (set(gates) if stats is not None else set()) | ({outputs.show.kind} if column else set())
    if mem is not None:
        needed |= {d.kind for d in outputs.dictionaries if d.layer in layers_}
    try:
        secs = run_trace(model, ids, sinks, layers=layers_, kinds=needed, chunk=chunk, progress=progress, vocab=vocab)
    finally:
        if writer is not None:
            writer.abort()  # no-op after a successful end(); removes temporary files otherwise
    report = TraceReport(secs, total, layers_, kinds_, column.values if column else None, stats)
    if outputs.gate_plot is not None and stats is not None:
        report.written[gate_plot(stats, outputs.gate_plot, title=f"{title}: gate saturation over {stats.n:,} characters")] = "plot"
    if writer is not None:
        report.written[Path(outputs.output)] = outputs.fmt
    if mem is not None:
        tr = mem.trace(meta)
        report.html_chars = len(tr)
        dicts = {k: DictCodes(c.enc.layer, c.enc.kind, c.enc.size, c.values, c.indices) for k, c in codes.items()}
        select = outputs.show.name if outputs.show is not None and not isinstance(outputs.show, Unit) else None
        report.written[write_html(outputs.html, tr, gate_stats=stats, total=total, max_chars=outputs.html_chars,
                                  title=title, dicts=dicts, select=select)] = "html"
    return report
