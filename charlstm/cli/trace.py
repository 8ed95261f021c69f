"""`charlstm trace`: neuron traces of a run on a text, a file or a dataset split, written as .npz or
an LSTMVis folder, shown as an HTML viewer, in the terminal, or summarised as gate statistics.

Thin on purpose: the input is charlstm.inputs', the one pass over it and every output are
charlstm.trace.outputs'; this module parses the options and prints what was done.
"""
from __future__ import annotations

from pathlib import Path

import click

from charlstm.cli.common import quiet_option


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
@click.option("--show", metavar="layer1.c:37", help="Print the text coloured by one unit, or by a dictionary feature "
              "(dict:12, dict/NAME:12; selected in --html too) (ANSI colours; NO_COLOR prints a table).")
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
      charlstm trace demo --split val --limit 2000 --show dict:12 --html out/trace.html
      charlstm trace demo --file foo.py --gate-stats --gate-plot gates.png
      charlstm trace demo --split val --format lstmvis -o lstmvis/demo
    With no output option, the trace is written to trace.npz. The viewer lists the features of the
    run's dictionaries (charlstm dictionary) beside the layers.
    """
    from charlstm.api import load
    from charlstm.inputs import check_one_source, read_input
    from charlstm.runtime import cpu_threads
    from charlstm.trace.outputs import TraceOutputs, trace_outputs
    from charlstm.units import DictUnit, Unit, parse_unit

    # ---- everything that can be checked before a model is loaded
    check_one_source(text, file_, split)
    if fmt == "npz" and not any((output, html_out, show, gate_stats, gate_plot)):
        output = "trace.npz"
    spec = parse_unit(show) if show else None
    outs = TraceOutputs(output=Path(output) if output else None, fmt=fmt, html=Path(html_out) if html_out else None,
                        html_chars=html_chars, show=spec, gate_stats=gate_stats,
                        gate_plot=Path(gate_plot) if gate_plot else None, dtype=dtype)
    outs.check()
    model = load(run, checkpoint=checkpoint, device=device)
    if isinstance(spec, DictUnit):
        outs.show = model.resolve(spec)
    if html_out:
        outs.dictionaries = model.dictionaries()
    inp = read_input(model.vocab, model.config, text=text, file=file_, split=split, limit=limit, unknown=unknown,
                     what="trace")
    meta = {"run": str(run), "checkpoint": model.config.get("checkpoint_file"), "source": inp.origin, "chunk": chunk}
    with cpu_threads(threads):
        rep = trace_outputs(model.module, model.vocab, inp.ids, outs, layers=layers, kinds=kinds, chunk=chunk,
                            progress=not quiet and len(inp) > 20000, meta=meta,
                            title=f"{Path(str(run)).name} — {inp.source}")
    mc = model.module.cfg
    if not quiet:
        click.echo(f"traced {rep.total:,} characters ({mc.cell}, layers {','.join(map(str, rep.layers))} of "
                   f"{mc.num_layers} x {mc.hidden_size} units; kinds {','.join(rep.kinds)}) in {rep.seconds:.2f} s "
                   f"({rep.total / max(rep.seconds, 1e-9):,.0f} chars/s)", err=True)

    # ---- results
    if rep.column is not None:
        from charlstm.viz.terminal import render_ansi

        chars = [model.vocab.symbol(int(i)) for i in inp.ids]
        shown_kind = outs.show.kind if isinstance(spec, Unit) else "c"  # features: scaled by their largest |value|
        click.echo(render_ansi(chars, rep.column, shown_kind, title=str(outs.show)), nl=False, color=True)
    if gate_stats and rep.stats is not None:
        click.echo(rep.stats.table())
    for path, what in rep.written.items():
        if what == "html":
            click.echo(f"wrote {path} (viewer of the first {rep.html_chars:,} characters; open it in a browser)")
        elif what == "plot":
            click.echo(f"wrote {path}")
        else:
            click.echo(f"wrote {path} ({_size(path)})")


COMMANDS = [trace_cmd]
