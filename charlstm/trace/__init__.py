"""Neuron traces: every layer's hidden state, cell state and gates, for every character read.

    from charlstm.trace import trace_text
    t = trace_text(model, vocab, "def f(x):\n")     # t["layer1.c"] is [characters, units]

Modules: `sinks` (the Trace object and where chunks go), `record` (computing the values, fast, on
the model's own weights), `stats` (gate saturation), `files` (.npz and LSTMVis), `outputs` (one pass
over a text feeding every output `charlstm trace` asks for).
"""
from charlstm.trace.files import LstmVisWriter, NpzWriter, load_trace, save_npz
from charlstm.trace.record import run_trace, trace_ids, trace_text
from charlstm.trace.sinks import TOP_K, CodesSink, ColumnSink, MemorySink, Sink, Trace, TraceInfo, resolve_kinds, resolve_layers
from charlstm.trace.stats import GateStats

__all__ = ["TOP_K", "CodesSink", "ColumnSink", "GateStats", "LstmVisWriter", "MemorySink", "NpzWriter", "Sink", "Trace",
           "TraceInfo", "load_trace", "resolve_kinds", "resolve_layers", "run_trace", "save_npz", "trace_ids",
           "trace_text"]
