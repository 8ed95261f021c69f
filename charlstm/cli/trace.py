"""`charlstm trace`: neuron traces of a run on a text, a file or a dataset split, written as .npz or
an LSTMVis folder, shown as an HTML viewer, in the terminal, or summarised as gate statistics.

Thin on purpose: the work is charlstm.trace (the computation and its sinks), charlstm.trace_io
(writers) and charlstm.viz (pictures); this module wires options to them in one pass over the text.
"""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from charlstm.cli.common import quiet_option
from charlstm.errors import CharlstmError


def _size(path: Path) -> str:
    n = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


@click.command("trace")
@click.argument("run")
@click.option("--text", help="Trace this text.")
@click.option("--file", "file_", metavar="FILE", help="Trace this UTF-8 text file.")
@click.option("--split", type=click.Choice(["train", "val", "test"]), help="Trace a split of the run's dataset.")
@click.option("--limit", type=int, metavar="N", help="Only the first N characters.")
@click.option("--layers", metavar="0,1", help="Layers to trace (default all).")
@click.option("--kinds", metavar="h,c,...", help="Kinds to store: lstm h,c,i,f,g,o; gru h,r,z,n; rnn h (default all).")
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default="float32", show_default=True,
              help="Storage type of the activations in the output.")
@click.option("-o", "--output", metavar="PATH", help="Write the trace: a .npz file, or a folder with --format lstmvis.")
@click.option("--format", "fmt", type=click.Choice(["npz", "lstmvis"]), default="npz", show_default=True,
              help="What -o writes (lstmvis: states.hdf5, train.hdf5, train.dict, lstm.yml; needs h5py).")
@click.option("--html", "html_out", metavar="FILE", help="Write the self-contained HTML viewer.")
@click.option("--html-chars", type=int, default=20000, show_default=True, metavar="N",
              help="Characters embedded in the viewer (at most ~16M values in all).")
@click.option("--show", metavar="layer1.c:37", help="Print the text coloured by one unit (ANSI colours; NO_COLOR prints a table).")
@click.option("--gate-stats", is_flag=True, help="Print gate saturation (fraction of time < 0.1 / > 0.9) per layer and gate.")
@click.option("--gate-plot", metavar="FILE.png", help="Write the gate saturation scatter plot (needs matplotlib).")
@click.option("--checkpoint", default="best", show_default=True, metavar="best|last|FILE", help="Which weights.")
@click.option("--unknown", type=click.Choice(["error", "skip", "replace"]), default="error", show_default=True,
              help="Characters not in the vocabulary: fail naming them, skip them, or read them as <unk>.")
@click.option("--chunk", type=int, default=4096, show_default=True, help="Characters per chunk (bounds memory).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--threads", type=int, metavar="N",
              help="CPU threads for torch (default: torch's choice; 1 is much faster on a busy machine).")
@quiet_option
def trace_cmd(run, text, file_, split, limit, layers, kinds, dtype, output, fmt, html_out, html_chars, show,
              gate_stats, gate_plot, checkpoint, unknown, chunk, device, threads, quiet):
    """Trace every neuron of RUN (hidden and cell states, each gate) over a text.

    \b
    Examples:
      charlstm trace demo --split val --limit 3000 --html out/trace.html -o out/trace.npz
      charlstm trace demo --text "def f(x):" --show layer1.c:37
      charlstm trace demo --file foo.py --gate-stats --gate-plot gates.png
      charlstm trace demo --split val --format lstmvis -o lstmvis/demo
    With no output option, the trace is written to trace.npz.
    """
    import torch

    from charlstm import trace as T
    from charlstm.checkpoint import load_model
    from charlstm.trace_io import LstmVisWriter, NpzWriter
    from charlstm.viz.html import MAX_VALUES

    # ---- check everything that can be checked before loading and tracing
    if sum(x is not None for x in (text, file_, split)) != 1:
        raise CharlstmError("give exactly one of --text, --file or --split")
    if limit is not None and limit < 1:
        raise CharlstmError(f"--limit must be at least 1, got {limit}")
    if html_chars < 1:
        raise CharlstmError(f"--html-chars must be at least 1, got {html_chars}")
    if fmt == "lstmvis" and not output:
        raise CharlstmError("--format lstmvis writes a folder: give -o FOLDER")
    show_spec = T.parse_unit_spec(show) if show else None
    if gate_plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise CharlstmError("--gate-plot needs matplotlib: pip install 'charlstm[plots]'") from None
    if not any((output, html_out, show, gate_stats, gate_plot)):
        output = "trace.npz"
    if threads is not None:
        if threads < 1:
            raise CharlstmError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    if chunk < 1:
        raise CharlstmError(f"--chunk must be at least 1, got {chunk}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise CharlstmError("--device cuda but no CUDA GPU is available; use --device cpu")

    model, vocab, cfg = load_model(run, checkpoint=checkpoint, device=device)
    mc = model.cfg
    layers_ = T.resolve_layers(mc.num_layers, layers)
    kinds_ = T.resolve_kinds(mc.cell, kinds)
    if show_spec:
        sl, sk, su = show_spec
        T.check_unit(mc.cell, mc.num_layers, mc.hidden_size, sl, sk, su)
        if sl not in layers_:
            raise CharlstmError(f"--show {show}: layer {sl} is not among the traced --layers {layers}")
    if (gate_stats or gate_plot) and not T.GATES[mc.cell]:
        raise CharlstmError(f"{mc.cell} cells have no gates; --gate-stats and --gate-plot need an lstm, peephole or gru run")

    # ---- the input
    if split:
        ids = T.split_ids(cfg, vocab, split, limit)
        source = {"kind": "split", "split": split, "dataset": (cfg.get("dataset") or {}).get("name")}
    else:
        if file_ is not None:
            text = T.read_text_file(file_, vocab)
            source = {"kind": "file", "file": str(file_)}
        else:
            source = {"kind": "text"}
        if limit is not None:
            text = text[:limit]
        ids = T.encode_text(vocab, text, unknown)
        if limit is not None:
            ids = ids[:limit]
    total = len(ids)

    # ---- sinks, one pass
    np_dtype = np.float16 if dtype == "float16" else np.float32
    meta = {"run": str(run), "checkpoint": cfg.get("checkpoint_file"), "source": source, "chunk": chunk}
    sinks: list = []
    writer = None
    if output:
        out = Path(output)
        if fmt == "lstmvis":
            writer = LstmVisWriter(out, kinds_, name=f"charlstm {Path(str(run)).name}",
                                   description=f"charlstm trace of run {run} ({mc.cell}, {mc.num_layers}x{mc.hidden_size})")
        else:
            if out.is_dir():
                raise CharlstmError(f"{out} is a folder; give a file name like {out / 'trace.npz'}")
            writer = NpzWriter(out, kinds_, np_dtype, meta)
        sinks.append(writer)
    mem = None
    if html_out:
        n_html = max(1, min(total, html_chars, MAX_VALUES // (len(layers_) * len(kinds_) * mc.hidden_size)))
        mem = T.MemorySink(kinds_, dtype=np.float32, limit=n_html)
        sinks.append(mem)
    stats = None
    if T.GATES[mc.cell] and (gate_stats or gate_plot or html_out):
        stats = T.GateStats()
        sinks.append(stats)
    column = T.ColumnSink(*show_spec) if show_spec else None
    if column:
        sinks.append(column)

    needed = set(kinds_) | (set(T.GATES[mc.cell]) if stats is not None else set()) | ({show_spec[1]} if show_spec else set())
    try:
        secs = T.run_trace(model, ids, sinks, layers=layers_, kinds=needed, chunk=chunk,
                           progress=not quiet and total > 20000, vocab=vocab)
    finally:
        if writer is not None:
            writer.abort()  # no-op after a successful end(); removes temporary files otherwise
    if not quiet:
        click.echo(f"traced {total:,} characters ({mc.cell}, layers {','.join(map(str, layers_))} of "
                   f"{mc.num_layers} x {mc.hidden_size} units; kinds {','.join(kinds_)}) in {secs:.2f} s "
                   f"({total / max(secs, 1e-9):,.0f} chars/s)", err=True)

    # ---- results
    if column is not None:
        chars = [vocab.symbol(int(i)) for i in np.asarray(ids)]
        from charlstm.viz.terminal import render_ansi

        click.echo(render_ansi(chars, column.values, show_spec[1], title=f"{show.strip()}"), nl=False, color=True)
    if gate_stats and stats is not None:
        click.echo(stats.table())
    if gate_plot and stats is not None:
        from charlstm.viz.plots import gate_plot as plot

        p = plot(stats, gate_plot, title=f"{Path(str(run)).name}: gate saturation over {stats.n:,} characters")
        click.echo(f"wrote {p}")
    if writer is not None:
        click.echo(f"wrote {output} ({_size(Path(output))})")
    if mem is not None:
        from charlstm.viz.html import write_html

        tr = mem.trace(meta)
        p = write_html(html_out, tr, gate_stats=stats, total=total, max_chars=html_chars,
                       title=f"{Path(str(run)).name} — {source.get('file') or source.get('split') or 'text'}")
        click.echo(f"wrote {p} (viewer of the first {len(tr):,} characters; open it in a browser)")


COMMANDS = [trace_cmd]
