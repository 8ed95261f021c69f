"""`charlstm export`: share a run as a self-contained web page (--html) and/or an ONNX step (--onnx).
Thin: charlstm.export builds both; this module parses the options and prints what was written."""
from __future__ import annotations

from pathlib import Path

import click

from charlstm.cli.common import quiet_option


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


@click.command("export")
@click.argument("run")
@click.option("--html", "html_out", metavar="FILE", help="Write a web page that runs the model (offline, one file).")
@click.option("--onnx", "onnx_out", metavar="FILE", help="Write the model as one step in ONNX (needs charlstm[export]).")
@click.option("--dtype", type=click.Choice(["float16", "float32"]), default="float16", show_default=True,
              help="Weights in the page: float16 (half the size) or float32 (exactly the trained model).")
@click.option("--max-params", type=click.IntRange(1), default=None, metavar="N",
              help="Refuse a page for a model with more parameters than this (default 10,000,000).")
@click.option("--prime", default="", help="The prime the page's form starts with.")
@click.option("--unit", metavar="layer1.c:37", help="The unit the page colours by at first (default: unit 0 of the top layer's c, else h).")
@click.option("--title", help="The page's title (default: the run's name).")
@click.option("--checkpoint", default="best", show_default=True, metavar="best|last|FILE", help="Which weights.")
@quiet_option
def export_cmd(run, html_out, onnx_out, dtype, max_params, prime, unit, title, checkpoint, quiet):
    """Share RUN: a web page that generates with it in the browser, or an ONNX step.

    \b
    Examples:
      charlstm export demo --html demo.html
      charlstm export demo --html demo.html --prime "def " --unit layer1.c:55
      charlstm export demo --onnx demo.onnx

    The page needs no server and no network: open it in a browser, type a prime and generate. Its
    script API (window.charlstm.generate, .trace) is described in docs/formats.md.
    """
    if not html_out and not onnx_out:
        raise click.UsageError("give --html FILE and/or --onnx FILE")
    from charlstm.api import load
    from charlstm.fileio import check_output

    for path, what in ((html_out, "--html"), (onnx_out, "--onnx")):
        if path:
            check_output(path, what)
    if onnx_out:
        from charlstm.export.onnx import require_onnx

        require_onnx()  # before any work: a missing optional package is the first thing to say
    model = load(run, checkpoint=checkpoint)
    if html_out:
        from charlstm.export.page import MAX_PARAMS, write_page

        info = write_page(html_out, model.module, model.vocab, dtype=dtype, title=title or Path(str(run)).name,
                          prime=prime, unit=unit, max_params=max_params or MAX_PARAMS)
        click.echo(f"wrote {info.path} ({_size(info.size)}: {info.params:,} parameters as {info.dtype}; "
                   "open it in a browser)")
    if onnx_out:
        from charlstm.export.onnx import check_onnx, export_onnx

        path = export_onnx(onnx_out, model.module, model.vocab)
        click.echo(f"wrote {path} ({_size(path.stat().st_size)}: one step, inputs and outputs in docs/formats.md)")
        if not quiet:
            chk = check_onnx(path, model.module)
            click.echo(f"checked with onnxruntime: {chk.steps} steps x {chk.rows} rows, largest |logit difference| "
                       f"from PyTorch {chk.max_logit_diff:.1e}, state {chk.max_state_diff:.1e}", err=True)


COMMANDS = [export_cmd]
