"""`charlstm atlas`: parse, call charlstm.neurons.atlas, print. Errors are CharlstmError, shown by the
group as one `Error: ...` line."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from charlstm.cli.common import quiet_option
from charlstm.fileio import atomic_write_json, check_output


@click.command("atlas")
@click.argument("run")
@click.option("--split", help="A split of the run's dataset [default: val, when no --file or --text].")
@click.option("--file", "file_", type=click.Path(dir_okay=False, path_type=Path), help="A UTF-8 file to read.")
@click.option("--text", help="The text to read (a literal <eot> marks a record boundary).")
@click.option("--limit", type=click.IntRange(min=20), default=20_000, show_default=True,
              help="Read at most this many characters (the trace of every unit is held in memory).")
@click.option("--feature", "-f", "features", multiple=True, metavar="NAME",
              help="Also look for this feature (repeatable): any name `charlstm neurons features` lists, count:a-b, "
                   "next:X, regex:PATTERN, module:function.")
@click.option("--dict", "dictionaries", default="all", show_default=True, metavar="all|none|NAME,...",
              help="Also rank the features of the run's dictionaries (charlstm dictionary) trained on these weights.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report: one self-contained HTML page.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write every number as JSON.")
@click.option("--pictures", type=click.Path(file_okay=False, path_type=Path),
              help="Also write the report's pictures as PNG files into this folder.")
@click.option("--controls", type=click.IntRange(min=99), default=199, show_default=True,
              help="Shifted copies of each feature for the chance control (p >= 1 / (controls + 1); a finding needs "
                   "p <= 0.01).")
@click.option("--untrained", type=click.IntRange(min=0), default=3, show_default=True,
              help="Untrained models of the same shape for the learning control (0: skip it; nothing is then "
                   "called learned).")
@click.option("--top", type=click.IntRange(min=0), default=1, show_default=True,
              help="Units ablated per feature (each set to 0 and to its mean).")
@click.option("--ablate-limit", type=click.IntRange(min=2), default=20_000, show_default=True,
              help="Ablate on the first this many characters (each ablated copy reruns the model step by step).")
@click.option("--ngram", type=click.IntRange(min=0), default=5, show_default=True,
              help="Highest n-gram order of the error analysis (0: skip it).")
@click.option("--no-probe", is_flag=True, help="Skip the L1 probes and their control tasks.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the controls.")
@click.option("--unknown", type=click.Choice(["error", "skip", "replace"]), default="error", show_default=True,
              help="Characters the model does not know: stop, drop them, or read them as <unk>.")
@click.option("--checkpoint", default="best", show_default=True,
              help="best (model.safetensors), last, or a .safetensors path.")
@quiet_option
def atlas_cmd(run: str, split, file_, text, limit: int, features: tuple[str, ...], dictionaries: str, html_path: Path | None,
              json_path: Path | None, pictures: Path | None, controls: int, untrained: int, top: int, ablate_limit: int,
              ngram: int,
              no_probe: bool, seed: int, unknown: str, checkpoint: str, quiet: bool) -> None:
    """What did RUN learn? Every applicable feature against every unit, with controls, causes and
    one report.

    The features come from what the run was trained on (code: strings, comments, brackets,
    indentation, line position...; prose; tweets; a synthetic task's own variables), plus each
    --feature. For each: every unit (each layer's h, c and gates) is ranked on half the text and
    the best confirmed on the other half; the best is held against shifted copies of the feature
    (chance) and against untrained models of the same shape (was it learned?); an L1 probe is
    compared with a control task; the top units are ablated. The report adds gate saturation and
    where the model beats n-gram baselines fitted on the training split.

    \b
    Examples:
      charlstm atlas stdlib-60m --html atlas.html --json atlas.json
      charlstm atlas linux --split val --limit 20000 --feature "regex:if \\(" --html linux.html
      charlstm atlas out/experiments/counting/run --html counting.html
    """
    from charlstm.inputs import check_one_source
    from charlstm.neurons.features import get_feature

    if split is None and file_ is None and text is None:
        split = "val"
    check_one_source(text, file_, split)
    for name in features:
        get_feature(name)  # an unknown feature fails before the model is loaded
    for path, what in ((html_path, "--html"), (json_path, "--json")):
        if path is not None:
            check_output(path, what)
    if pictures is not None:
        check_output(pictures, "--pictures", folder=True)

    from charlstm.api import load
    from charlstm.inputs import read_input
    from charlstm.neurons.atlas import build_atlas
    from charlstm.neurons.atlas.report import format_summary, write_report

    from charlstm.dictionary import load_all
    from charlstm.runs import resolve_run

    model = load(run, checkpoint=checkpoint)
    dicts = load_all(resolve_run(run), model.module, dictionaries)
    inp = read_input(model.vocab, model.config, text=text, file=file_, split=split, limit=limit, unknown=unknown,
                     min_len=20, what="map")
    start = time.monotonic()

    def log(msg: str) -> None:
        if not quiet:
            print(f"[{time.monotonic() - start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    atlas = build_atlas(model.module, model.vocab, inp, model.config, run=run, features=features, dictionaries=dicts, top=top,
                        controls=controls, untrained=untrained, probe=not no_probe, ngram=ngram,
                        ablate_chars=ablate_limit, seed=seed, log=log)
    click.echo(format_summary(atlas))
    if html_path is not None:
        write_report(atlas, html_path, pictures=pictures)
        if not quiet:
            click.echo(f"wrote {html_path}", err=True)
    elif pictures is not None:
        from charlstm.neurons.atlas.report import write_pictures

        write_pictures(atlas, pictures)
    if json_path is not None:
        atomic_write_json(json_path, atlas.to_json())
        if not quiet:
            click.echo(f"wrote {json_path}", err=True)


COMMANDS = [atlas_cmd]
