"""`charlstm train` and `charlstm runs`: parse options, call charlstm.train (setup, then train), print."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from charlstm.cli.common import parse_duration, parse_save_every, quiet_option
from charlstm.config import CELLS, OPTIONS, PRESETS
from charlstm.runs import runs_root

# CLI option name (as click passes it) -> config field
_RENAME = {option.replace("-", "_"): field for field, option in OPTIONS.items()}


@click.command("train", context_settings={"max_content_width": 100})
@click.argument("dataset")
@click.option("--run", "run_name", metavar="NAME", help="Run name: a folder under checkpoints/ ($CHARLSTM_CHECKPOINTS); letters, digits, . _ + -. Default: the dataset's name.")
@click.option("--preset", type=click.Choice(list(PRESETS)), help="Model/batch sizes: tiny 2x128, small 2x256, medium 3x512, large 3x1024.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML file with [model] and [train] sections (overrides the preset; options override it).")
@click.option("--cell", type=click.Choice(CELLS), help="Recurrent cell (peephole is explicit and much slower).")
@click.option("--layers", type=int, help="Number of recurrent layers.")
@click.option("--hidden", type=int, help="Hidden units per layer.")
@click.option("--embed", type=int, help="Character embedding size.")
@click.option("--dropout", type=float, help="Dropout between layers and before the output.")
@click.option("--batch-size", type=int, help="Parallel streams per step (global: divided among torchrun processes).")
@click.option("--seq-len", type=int, help="Characters per truncated-BPTT chunk.")
@click.option("--lr", type=float, help="Peak learning rate (AdamW).")
@click.option("--min-lr", type=float, help="Learning rate at the end of the cosine / floor of the step schedule.")
@click.option("--warmup", type=int, help="Linear warm-up steps.")
@click.option("--schedule", type=click.Choice(["cosine", "step", "constant"]), help="Decay after warm-up.")
@click.option("--grad-clip", type=float, help="Clip the gradient norm to this (0: no clipping).")
@click.option("--grad-accum", type=int, help="Chunks accumulated per optimizer step.")
@click.option("--weight-decay", type=float, help="AdamW weight decay.")
@click.option("--max-steps", type=int, help="Stop after this many optimizer steps.")
@click.option("--max-epochs", type=float, help="Stop after this many passes over the training split.")
@click.option("--time-budget", metavar="DURATION", help="Stop after this long (90s, 10m, 1.5h); the schedule anneals to the end of it. "
              "Alone (no preset, config file or size/optimiser options) it also picks the model and its training: see --autosize.")
@click.option("--autosize/--no-autosize", default=None,
              help="Choose size, batch, sequence length, learning rate and schedule for the --time-budget by timing "
                   "candidate models on this machine (the options you give still win). Default: on when --time-budget "
                   "is the only sizing option given.")
@click.option("--eval-every", type=int, help="Score the validation split every this many steps.")
@click.option("--save-every", metavar="DURATION|STEPS",
              help="Also save last.safetensors every DURATION (5m) or every STEPS steps (1000), whatever the "
                   "evaluations do, so a crash loses at most that much work; 'off' for evaluations only [default: 5m].")
@click.option("--eval-chars", "eval_max_chars", type=int, metavar="N",
              help="Score only the first N validation characters (still exact on them). Default: all.")
@click.option("--seed", type=int, help="One seed for everything (a CPU run is fully deterministic).")
@click.option("--device", help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile the model.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default=None,
              help="Arithmetic: bf16 autocast or fp32. auto: bf16 on a GPU, and on a CPU with AMX/AVX512-BF16 when "
                   "a few timed steps of this model are faster in it [default: auto].")
@click.option("--resume", is_flag=True, help="Continue the run exactly where its last checkpoint left off.")
@click.option("--force", is_flag=True, help="Replace an existing run of the same name.")
@quiet_option
def train_cmd(dataset: str, run_name: str | None, preset: str | None, config_file: Path | None, resume: bool,
              force: bool, quiet: bool, time_budget: str | None, save_every: str | None, autosize: bool | None,
              compile_: bool | None, **opts: Any) -> None:
    """Train a character model on DATASET (a name under data/ or a dataset folder).

    \b
    Examples:
      charlstm train stdlib --time-budget 5m            # picks the best model for 5 minutes here
      charlstm train stdlib --preset small --time-budget 10m
      charlstm train stdlib --run big --preset medium --dropout 0.2 --max-epochs 5
      charlstm train stdlib --run big --resume          # after Ctrl-C, a kill or a crash
      torchrun --nproc_per_node 4 -m charlstm -- train stdlib --preset large
    """
    from charlstm.fileio import check_name
    from charlstm.runs import run_dir
    from charlstm.train import train
    from charlstm.train.distributed import from_env
    from charlstm.train.progress import rate
    from charlstm.train.setup import configure

    name = run_name if run_name is not None else check_name(Path(dataset.rstrip("/")).name, "run")
    rdir = run_dir(name)
    overrides = {_RENAME.get(k, k): v for k, v in opts.items()}
    overrides.update(time_budget=parse_duration(time_budget), compile=compile_, **parse_save_every(save_every))
    setup = configure(dataset, rdir, preset=preset, config_file=config_file, overrides=overrides, resume=resume,
                      force=force, autosize_flag=autosize, say=(lambda msg: None) if quiet else click.echo)
    if setup.autosized:
        # the choice is a result, shown even with --quiet: it is what reproduces the run with explicit options
        click.echo(setup.autosized)
    result = train(setup.dataset, rdir, setup.model, setup.train, resume=resume, force=force, quiet=quiet)
    if not from_env().is_main:
        return
    best = (f"best val {result.best_val_bpc:.4f} bpc at step {result.best_step}"
            if result.best_val_bpc is not None else "not evaluated yet")
    if result.stopped in ("interrupted", "callback"):
        # train() has said where it stopped and what it saved
        click.echo(f"Resume with: charlstm train {dataset} --run {name} --resume")
    else:
        why = "time budget used" if result.stopped == "time budget" else "done"
        speed = f", {rate(result.chars_per_s)} chars/s" if result.chars_per_s else ""
        click.echo(f"Run '{name}' {why}: {result.steps} steps ({result.epoch:.2f} epochs) in {result.elapsed:.0f}s"
                   f"{speed}; {best}; saved in {rdir}")


@click.command("runs")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per run instead of a table.")
def runs_cmd(as_json: bool) -> None:
    """List training runs (under checkpoints/, or $CHARLSTM_CHECKPOINTS) with their best val bpc.

    \b
    Example:
      charlstm runs
    """
    from charlstm.runs import list_runs

    runs = list_runs()
    if as_json:
        for r in runs:
            click.echo(json.dumps(r.as_dict()))
        return
    if not runs:
        click.echo(f"No runs in {runs_root()}. Train one with `charlstm train DATASET`.")
        return
    rows = [("RUN", "DATASET", "MODEL", "PARAMS", "STEPS", "BEST VAL BPC")]
    for r in runs:
        if r.error:
            rows.append((r.name, "(unreadable)", "-", "-", "-", r.error[:60]))
            continue
        bpc = f"{r.best_val_bpc:.4f} (step {r.best_step})" if r.best_val_bpc is not None else "-"
        rows.append((r.name, r.dataset, r.model, _count(r.parameters), str(r.steps if r.steps is not None else "-"), bpc))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _count(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)


COMMANDS = [train_cmd, runs_cmd]
