"""`charlstm train` and `charlstm runs`: parse options, build configs, call charlstm.train, print."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from charlstm.cli.common import parse_duration, quiet_option
from charlstm.config import CELLS, PRESETS, build_configs
from charlstm.errors import CharlstmError
from charlstm.paths import runs_root

# CLI option name -> config field
_RENAME = {"layers": "num_layers", "hidden": "hidden_size", "embed": "embed_dim", "warmup": "warmup_steps"}


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise CharlstmError(f"cannot read config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise CharlstmError(f"config file {path} is not valid TOML: {e}") from None


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) for k, v in base.items()}
    for section, values in top.items():
        if not isinstance(values, dict):
            raise CharlstmError(f"config setting '{section}' must be inside a [model] or [train] section")
        out.setdefault(section, {}).update(values)
    return out


def run_path(name: str) -> Path:
    """A run name (folder under checkpoints/) or an explicit path containing a slash."""
    return Path(name) if (os.sep in name or "/" in name) else runs_root() / name


@click.command("train", context_settings={"max_content_width": 100})
@click.argument("dataset")
@click.option("--run", "run_name", metavar="NAME", help="Run name (folder under checkpoints/). Default: the dataset's name.")
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
@click.option("--eval-chars", "eval_max_chars", type=int, metavar="N",
              help="Score only the first N validation characters (still exact on them). Default: all.")
@click.option("--seed", type=int, help="One seed for everything (a CPU run is fully deterministic).")
@click.option("--device", help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile the model.")
@click.option("--amp/--no-amp", default=None, help="bf16 autocast on CUDA (default on; ignored on CPU).")
@click.option("--resume", is_flag=True, help="Continue the run exactly where its last checkpoint left off.")
@click.option("--force", is_flag=True, help="Replace an existing run of the same name.")
@quiet_option
def train_cmd(dataset: str, run_name: str | None, preset: str | None, config_file: Path | None, resume: bool,
              force: bool, quiet: bool, time_budget: str | None, autosize: bool | None, compile_: bool | None,
              amp: bool | None, **opts: Any) -> None:
    """Train a character model on DATASET (a name under data/ or a dataset folder).

    \b
    Examples:
      charlstm train stdlib --time-budget 5m            # picks the best model for 5 minutes here
      charlstm train stdlib --preset small --time-budget 10m
      charlstm train stdlib --run big --preset medium --dropout 0.2 --max-epochs 5
      charlstm train stdlib --run big --resume          # after Ctrl-C, a kill or a crash
      torchrun --nproc_per_node 4 -m charlstm -- train stdlib --preset large
    """
    from charlstm import autosize as autosize_mod
    from charlstm.distributed import from_env
    from charlstm.progress import rate
    from charlstm.train import load_run_configs, train

    name = run_name or Path(dataset.rstrip("/")).name
    rdir = run_path(name)
    overrides = {_RENAME.get(k, k): v for k, v in opts.items()}
    overrides["time_budget"] = parse_duration(time_budget)
    overrides["compile"] = compile_
    overrides["amp"] = amp
    file_values = _read_toml(config_file) if config_file else {}
    data: Any = dataset  # a name or folder; autosize replaces it by the Dataset it opened
    if resume and (rdir / "config.json").exists():
        # Resuming starts from the run's own settings; anything given on top must stay compatible.
        import dataclasses

        m0, t0 = load_run_configs(rdir)
        base = {"model": dataclasses.asdict(m0), "train": dataclasses.asdict(t0)}
        if preset:
            base = _merge(base, PRESETS[preset])
        mcfg, tcfg = build_configs(None, _merge(base, file_values), overrides)
    elif autosize_mod.wanted(autosize, overrides["time_budget"], overrides, preset, file_values, resume,
                             from_env().world_size):
        data, values = _autosized(dataset, rdir, overrides, force, quiet)
        mcfg, tcfg = build_configs(None, None, values)
    else:
        mcfg, tcfg = build_configs(preset, file_values, overrides)
    result = train(data, rdir, mcfg, tcfg, resume=resume, force=force, quiet=quiet)
    if int(os.environ.get("RANK", "0")) != 0:
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


def _autosized(dataset: str, rdir: Path, overrides: dict[str, Any], force: bool, quiet: bool) -> tuple[Any, dict[str, Any]]:
    """(the opened Dataset, the overrides of the autosized run). Checks the run folder first, so a
    refused run costs no timing; the Dataset is handed on to train() so it is opened (and its
    checksums verified) once."""
    from charlstm import autosize
    from charlstm.dataset import open_dataset
    from charlstm.distributed import from_env, resolve_device
    from charlstm.train import check_run_dir

    check_run_dir(rdir, resume=False, force=force)
    ds = open_dataset(dataset)
    device = resolve_device(overrides.get("device") or "auto", from_env())
    if not quiet:
        click.echo(f"autosize: timing candidate models on {device} for the {overrides['time_budget']:.0f}s budget ...")
    values, p = autosize.autosized_overrides(ds, overrides["time_budget"], device, overrides)
    # the choice is a result, shown even with --quiet: it is what reproduces the run with explicit options
    click.echo(autosize.describe(values, values) + f" ({p.reason}; timing took {p.calibration_seconds:.1f}s)")
    return ds, values


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
