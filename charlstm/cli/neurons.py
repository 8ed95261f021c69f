"""`charlstm neurons find|ablate|features` and `charlstm experiment`: parse, call charlstm.neurons or
charlstm.experiments, print. Errors are CharlstmError, shown by the group as one `Error: ...` line."""
from __future__ import annotations

from pathlib import Path

import click

from charlstm.cli.common import quiet_option
from charlstm.errors import CharlstmError
from charlstm.fileio import atomic_write_json, check_output


def _input_options(f):
    """--text / --file / --split / --limit / --unknown / --checkpoint, shared by find and ablate."""
    opts = [
        click.option("--text", help="The text to read (a literal <eot> marks a record boundary)."),
        click.option("--file", "file_", type=click.Path(dir_okay=False, path_type=Path), help="A UTF-8 file to read."),
        click.option("--split", help="A split of the run's dataset (train, val, test)."),
        click.option("--limit", type=int, default=10_000, show_default=True,
                     help="Read at most this many characters (a full trace costs L x 6 x H x 4 bytes per character)."),
        click.option("--unknown", type=click.Choice(["error", "skip", "replace"]), default="error", show_default=True,
                     help="Characters the model does not know: stop, drop them, or read them as <unk>."),
        click.option("--checkpoint", default="best", show_default=True,
                     help="best (model.safetensors), last, or a .safetensors path."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _load(run: str, checkpoint: str, text, file_, split, limit, unknown, dictionaries: str | None = None):
    """The model (charlstm.load), what it reads (charlstm.inputs), at least 2 characters, and with
    dictionaries ("all", "none" or names) the run's dictionaries trained on these weights."""
    from charlstm.api import load
    from charlstm.dictionary import load_all
    from charlstm.inputs import read_input
    from charlstm.runs import resolve_run

    model = load(run, checkpoint=checkpoint)
    inp = read_input(model.vocab, model.config, text=text, file=file_, split=split, limit=limit, unknown=unknown,
                     min_len=2, what="analyse")
    dicts = load_all(resolve_run(run), model.module, dictionaries) if dictionaries else []
    return model.module, model.vocab, inp, dicts


@click.group("neurons")
def neurons_group() -> None:
    """Find the units that track a feature, and check them by ablation.

    \b
      charlstm neurons features                                   # what can be tracked
      charlstm neurons find RUN --feature indentation --split val --html top.html
      charlstm neurons find RUN --feature string --split val --probe l1
      charlstm neurons ablate RUN --unit layer1.c:37 --feature string --split val

    Steering (forcing a unit while generating) is `charlstm sample RUN --clamp layer1.c:37=1.0`.
    """


@neurons_group.command("features")
def features_cmd() -> None:
    """List the features `--feature` accepts (named and parameterised)."""
    from charlstm.neurons import feature_help

    click.echo(feature_help())


@neurons_group.command("find")
@click.argument("run")
@click.option("--feature", "-f", metavar="NAME",
              help="What to track: a name from `charlstm neurons features`, count:a-b, next:X, regex:PATTERN, "
                   "module:function or file.py:function.")
@click.option("--regex", metavar="PATTERN", help="Shorthand for --feature regex:PATTERN.")
@_input_options
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="How many units to list.")
@click.option("--layers", help="Only these layers, e.g. 0,2 (default: all).")
@click.option("--kinds", help="Only these kinds, e.g. h,c (default: every state and gate).")
@click.option("--dict", "dictionaries", default="all", show_default=True, metavar="all|none|NAME,...",
              help="Also rank the features of the run's dictionaries (those on the layers and kinds searched).")
@click.option("--probe", type=click.Choice(["l1"]), help="Also fit a sparse L1 probe and list the few units it needs.")
@click.option("--max-units", type=click.IntRange(min=1), default=5, show_default=True,
              help="At most this many units in the probe.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the trace viewer with the ranking in its overview (n/p step through the top units).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the ranking as JSON.")
@click.option("--png", "png_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw the best unit over the start of the text as a small PNG (needs matplotlib).")
@quiet_option
def find_cmd(run: str, feature: str | None, regex: str | None, text, file_, split, limit, unknown, checkpoint,
             top: int, layers: str | None, kinds: str | None, dictionaries: str, probe: str | None, max_units: int,
             html_path: Path | None, json_path: Path | None, png_path: Path | None, quiet: bool) -> None:
    """Rank every unit of RUN (each layer's h, c and gates) by how well it tracks a feature.

    Continuous features are ranked by |Pearson r|, binary ones by AUROC (shown as max(AUROC,
    1 - AUROC), so a unit that is low on the feature ranks as high as one that is high on it).
    The features of the run's dictionaries (`charlstm dictionary`) are ranked with the units, as
    dict:12 (or dict/NAME:12).

    \b
    Examples:
      charlstm neurons find stdlib-small --feature string --split val --top 5
      charlstm neurons find counting --feature count:a-b --text "aaaXbbb<eot>aaaaaaXbbbbbb<eot>"
      charlstm neurons find stdlib-small --regex "def \\w+" --file mymodule.py
    """
    from charlstm.inputs import check_one_source
    from charlstm.neurons import find_html, find_png, find_units, format_find, get_feature

    if (feature is None) == (regex is None):
        raise CharlstmError("give either --feature NAME or --regex PATTERN (list the features with "
                            "`charlstm neurons features`)")
    if regex is not None:
        feature = f"regex:{regex}"
    get_feature(feature)  # an unknown feature fails before the model is loaded
    check_one_source(text, file_, split)
    for path, what in ((html_path, "--html"), (json_path, "--json"), (png_path, "--png")):
        if path is not None:
            check_output(path, what)
    model, vocab, inp, dicts = _load(run, checkpoint, text, file_, split, limit, unknown, dictionaries)
    result = find_units(model, vocab, inp, feature, top=top, layers=layers, kinds=kinds, probe=probe == "l1",
                        max_units=max_units, dictionaries=dicts)
    click.echo(format_find(result))
    if html_path is not None:
        find_html(result, html_path)
        if not quiet:
            click.echo(f"wrote {html_path}", err=True)
    if png_path is not None:
        if find_png(result, png_path) is None:
            raise CharlstmError("--png needs matplotlib: pip install 'charlstm[plots]'")
        if not quiet:
            click.echo(f"wrote {png_path}", err=True)
    if json_path is not None:
        atomic_write_json(json_path, _find_json(result))
        if not quiet:
            click.echo(f"wrote {json_path}", err=True)


def _find_json(result) -> dict:
    units = [{"unit": u.name, "score": u.score, **({"r": u.r} if u.r is not None else {"auroc": u.auroc})}
             for u in result.ranking]
    out = {"feature": result.feature.name, "kind": result.kind, "source": result.source,
           "characters": int(len(result.values)), "units": units}
    if result.probe is not None:
        p = result.probe
        out["probe"] = {"kind": p.kind, "units": [{"unit": u.name, "weight": u.weight} for u in p.units],
                        "intercept": p.intercept, "heldout": p.heldout, "n_train": p.n_train, "n_test": p.n_test}
    return out


@neurons_group.command("ablate")
@click.argument("run")
@click.option("--unit", "-u", required=True, metavar="LAYER.KIND:UNIT", help="The unit to force, e.g. layer1.c:37.")
@click.option("--feature", "-f", required=True, metavar="NAME",
              help="Split the predictions into where this feature is active and where not.")
@_input_options
@click.option("--mode", type=click.Choice(["zero", "mean", "value"]), default="zero", show_default=True,
              help="Force the unit to 0, to its mean over the text, or to --value.")
@click.option("--value", type=float, help="The value for --mode value.")
def ablate_cmd(run: str, unit: str, feature: str, text, file_, split, limit, unknown, checkpoint, mode: str,
               value: float | None) -> None:
    """Force one unit of RUN at every step and measure the change in bits per character where a
    feature is active and where it is not.

    The model runs layer by layer with the explicit cells (charlstm.cells.step), the clean and the
    ablated copy in one batch; the clean run is checked against the fused model.

    \b
    Examples:
      charlstm neurons ablate stdlib-small --unit layer1.c:37 --feature string --split val
      charlstm neurons ablate counting --unit layer0.c:1 --feature count:a-b --text "aaaaXbbbb<eot>" --mode mean
    """
    from charlstm.inputs import check_one_source
    from charlstm.neurons import ablate, format_ablation, get_feature
    from charlstm.units import Clamp, Unit, parse_unit

    get_feature(feature)
    u = parse_unit(unit)  # bad syntax fails before the model is loaded
    if not isinstance(u, Unit):
        raise CharlstmError(f"--unit {unit}: ablate holds units; to remove a dictionary feature while generating, "
                            f"use `charlstm sample RUN --clamp {unit}=0`")
    check_one_source(text, file_, split)
    model, vocab, inp, _ = _load(run, checkpoint, text, file_, split, limit, unknown)
    click.echo(format_ablation(ablate(model, vocab, inp, Clamp(u.layer, u.kind, u.unit, 0.0), feature, mode=mode,
                                      value=value)))


@click.command("experiment")
@click.argument("task", metavar="TASK", type=click.Choice(["counting", "selective-counting", "remember", "copy"]))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the data, the run and the report [default: out/experiments/TASK].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the data, the model and training.")
@quiet_option
def experiment_cmd(task: str, out: Path | None, seed: int, quiet: bool) -> None:
    """Reproduce one of the source's synthetic experiments: generate the data, train the small
    model, measure generalisation, find the neurons automatically and write a report.

    \b
      counting            aaaaaXbbbbb     1 layer x 10 units; the unit that counts
      selective-counting  aaXaXaaYbbbbb   counts the a's, its input gate ignores the X's
      remember            AxxxxYa         the unit that holds A vs B through the x's
      copy                baaXbaa         2 layers; which units predict each next character

    Writes OUT/report.md and OUT/report.html (with pictures), the dataset OUT/data and the run
    OUT/run (usable with `charlstm sample`, `trace` and `neurons`). Takes well under a minute or two
    on a CPU. Exits with status 1 when a check fails.
    """
    from charlstm.experiments import run_experiment

    from charlstm.viz.terminal import render_ansi

    result = run_experiment(task, out=out, seed=seed, quiet=quiet)
    click.echo(result.summary())
    if result.demo is not None:
        label, chars, values, kind = result.demo
        click.echo(render_ansi(chars, values, kind, title=label), nl=False)
    if not result.passed:
        failed = sum(not c.passed for c in result.checks)
        raise CharlstmError(f"{failed} check(s) of experiment {task} failed; see {result.report_md}")


COMMANDS = [neurons_group, experiment_cmd]
