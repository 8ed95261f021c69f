"""`charlstm dictionary train|info|show`: sparse dictionaries over a run's states. Parses, calls
charlstm.dictionary.session (or .dashboard), prints; errors are one `Error: ...` line."""
from __future__ import annotations

from pathlib import Path

import click

from charlstm.cli.common import parse_duration, quiet_option
from charlstm.errors import CharlstmError
from charlstm.fileio import check_output


@click.group("dictionary")
def dictionary_group() -> None:
    """Sparse dictionaries over a run's states: features nobody named.

    \b
      charlstm dictionary train RUN --time-budget 10m        # TopK sparse autoencoder on the top layer's h
      charlstm dictionary info RUN                           # fidelity: variance explained, spliced bpc
      charlstm dictionary show RUN --html dict.html          # every feature: contexts, effects, label

    A feature is used like a unit: `charlstm trace RUN --show dict:12`, `charlstm sample RUN --clamp
    dict:12=2.0`; `charlstm neurons find` ranks features with the units. With several dictionaries
    in a run, name one: dict/NAME:12.
    """


@dictionary_group.command("train")
@click.argument("run")
@click.option("--name", help="The dictionary's name [default: layer{L}.{kind}-{size}].")
@click.option("--layer", type=int, help="Layer whose states to read [default: the top layer].")
@click.option("--kind", type=click.Choice(["h", "c"]), help="Hidden state h or (LSTMs) cell state c [default: h].")
@click.option("--size", type=int, help="Number of features [default: 8 per unit].")
@click.option("--k", "k", type=int, help="Active features per state [default: units / 4].")
@click.option("--code", type=click.Choice(["relu", "signed"]), default="relu", show_default=True,
              help="relu: non-negative activations (TopK + ReLU); signed: the k largest |pre-activations|, sign kept.")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="train", show_default=True,
              help="The split whose states to train on.")
@click.option("--chars", type=int, help="States to train on (one per character per stream) [default: 2,000,000 "
                                        "unless --time-budget is given].")
@click.option("--time-budget", metavar="DURATION", help="Stop after this much training time (90s, 10m, 1h).")
@click.option("--batch", type=int, default=1024, show_default=True, help="States per step.")
@click.option("--lr", type=float, default=3e-3, show_default=True, help="Adam learning rate.")
@click.option("--streams", type=int, default=64, show_default=True, help="Parallel readers of the split.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--fidelity-chars", type=int, default=100_000, show_default=True,
              help="Held-out characters to measure the finished dictionary on.")
@click.option("--resume", is_flag=True, help="Continue an interrupted dictionary (its saved options; --chars and "
                                             "--time-budget may be given anew).")
@click.option("--force", is_flag=True, help="Train a dictionary of this name again from scratch.")
@click.option("--checkpoint", default="best", show_default=True, help="The run's weights: best, last or a file.")
@click.option("--threads", type=click.IntRange(1), help="CPU threads for torch (default: torch's choice).")
@quiet_option
def train_cmd(run, name, layer, kind, size, k, code, split, chars, time_budget, batch, lr, streams, seed,
              fidelity_chars, resume, force, checkpoint, threads, quiet):
    """Train a TopK sparse autoencoder on one layer's states of RUN, streamed from a split.

    Saved in RUN/dictionaries/NAME/ (docs/formats.md). Ctrl-C stops after the current step and
    saves; --resume continues exactly. When done, the fidelity is measured on the validation split.

    \b
    Examples:
      charlstm dictionary train stdlib-60m --time-budget 10m
      charlstm dictionary train counting --kind c --size 4 --k 4 --code signed --chars 2000000
      charlstm dictionary train stdlib-60m --resume
    """
    from charlstm.dictionary import fidelity, session
    from charlstm.dictionary.train import TrainOptions
    from charlstm.runtime import cpu_threads

    budget = parse_duration(time_budget)
    if chars is None and budget is None and not resume:
        chars = 2_000_000
    opts = TrainOptions(name=name, layer=layer, kind=kind, size=size, k=k, code=code, split=split, chars=chars,
                        time_budget=budget, batch=batch, lr=lr, streams=streams, seed=seed,
                        fidelity_chars=fidelity_chars)
    say = (lambda s: None) if quiet else (lambda s: click.echo(s, err=True))

    def on_log(r):
        if not quiet:
            click.echo(f"step {r['step']:,}: {r['states']:,} states ({100 * min(r['progress'], 1):.0f}%), loss "
                       f"{r['loss']}, dead {r['dead']:,}, {r['states_per_s']:,.0f} states/s", err=True)

    with cpu_threads(threads):
        res, fid = session.train(run, opts, checkpoint=checkpoint, resume=resume, force=force, on_log=on_log, say=say)
    d, o = res.dictionary, res.options
    click.echo(f"dictionary {o.name}: layer{o.layer}.{o.kind}, {d.hidden} units -> {o.size:,} features, k = {o.k}, "
               f"{o.code} code; {res.steps:,} steps, {res.states:,} states in {res.seconds:.0f} s "
               f"({res.states / max(res.seconds, 1e-9):,.0f} states/s); training loss {res.loss:.4f}")
    if res.status != "done":
        click.echo(f"interrupted: saved in {res.folder}; continue with `charlstm dictionary train {run} --name {o.name} "
                   f"--resume`")
        return
    click.echo(f"saved in {res.folder}")
    for line in fidelity.describe(fid, o.size):
        click.echo(line)


@dictionary_group.command("info")
@click.argument("run")
@click.option("--name", help="One dictionary (default: all of the run's).")
@click.option("--measure", is_flag=True, help="Measure the fidelity afresh (needs the model) and store it.")
@click.option("--fidelity-chars", type=int, default=100_000, show_default=True,
              help="Held-out characters to measure on (with --measure).")
@click.option("--json", "as_json", is_flag=True, help="Print dictionary.json.")
def info_cmd(run, name, measure, fidelity_chars, as_json):
    """Show a run's dictionaries: settings, training and fidelity (variance explained on held-out
    states, dead and dense features, the bpc with the reconstruction spliced in).

    \b
    Examples:
      charlstm dictionary info stdlib-60m
      charlstm dictionary info stdlib-60m --name layer0.c-4096 --measure
    """
    import json

    from charlstm.dictionary import session

    metas = session.info(run, name, measure_again=measure, chars=fidelity_chars)
    if as_json:
        click.echo(json.dumps(metas[0] if len(metas) == 1 else metas, indent=2))
        return
    if len(metas) > 1:
        click.echo(session.table(metas))
        return
    for line in session.describe(metas[0]):
        click.echo(line)


@dictionary_group.command("show")
@click.argument("run")
@click.option("--html", "html_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the page here.")
@click.option("--name", help="Which dictionary (default: the run's only one).")
@click.option("--text", help="Show the features over this text.")
@click.option("--file", "file_", type=click.Path(dir_okay=False, path_type=Path), help="... over this UTF-8 file.")
@click.option("--split", type=click.Choice(["train", "val", "test"]),
              help="... over a split of the run's dataset [default: val, held out].")
@click.option("--limit", type=int, default=100_000, show_default=True, help="At most this many characters.")
@click.option("--contexts", type=click.IntRange(1, 50), default=8, show_default=True,
              help="Top-activating contexts per feature.")
@click.option("--unknown", type=click.Choice(["error", "skip", "replace"]), default="error", show_default=True,
              help="Characters the model does not know: stop, drop them, or read them as <unk>.")
@click.option("--checkpoint", default="best", show_default=True, help="The run's weights: best, last or a file.")
@quiet_option
def show_cmd(run, html_path, name, text, file_, split, limit, contexts, unknown, checkpoint, quiet):
    """Write a page of every feature of a dictionary: its top-activating contexts coloured by it, an
    activation histogram, the next characters it promotes and suppresses, and an automatic label
    (the best-matching library feature, when one matches well). Sortable and searchable; one
    self-contained file.

    \b
    Examples:
      charlstm dictionary show stdlib-60m --html dict.html
      charlstm dictionary show stdlib-60m --name layer0.h-4096 --file mymodule.py --html dict.html
    """
    from charlstm.dictionary import session
    from charlstm.dictionary.dashboard import PageOptions

    if sum(x is not None for x in (text, file_, split)) > 1:
        raise CharlstmError("give at most one of --text, --file or --split")
    check_output(html_path, "--html")
    data = session.show(run, html_path, name, text=text, file=file_, split=split, limit=limit, unknown=unknown,
                        checkpoint=checkpoint, opts=PageOptions(contexts=contexts))
    feats = data["features"]
    labelled = sum(1 for f in feats if f["match"] and f["match"][0][2])
    active = sum(1 for f in feats if f["n"])
    click.echo(f"wrote {html_path}: {len(feats):,} features of {data['dictionary']['key']} over {data['chars']:,} "
               f"characters of {data['source']}; {active:,} active, {labelled:,} labelled "
               f"({data['seconds']:.0f} s)")


COMMANDS = [dictionary_group]
