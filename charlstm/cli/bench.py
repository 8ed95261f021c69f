"""`charlstm bench`: measure training, sampling, tracing and encoding speed on this machine.

Thin: parses options, calls charlstm.bench.run_bench (or run_scaling), prints the tables and
writes the JSON."""
from __future__ import annotations

from pathlib import Path

import click

from charlstm.cli.common import quiet_option
from charlstm.config import PRESETS
from charlstm.errors import CharlstmError


@click.command("bench", context_settings={"max_content_width": 100})
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--quick", is_flag=True, help="About a minute: tiny and small only, short timings.")
@click.option("--presets", metavar="LIST",
              help=f"Comma-separated presets to measure ({', '.join(PRESETS)}) [default: tiny,small,medium; "
                   "--quick: tiny,small].")
@click.option("--threads", type=click.IntRange(min=1), help="torch CPU threads [default: torch's, one per core].")
@click.option("--scaling", is_flag=True,
              help="Instead: training chars/s and memory as hidden size, layers, batch and seq len grow (minutes).")
@click.option("--axis", "axes", multiple=True, metavar="NAME=V1,V2,...",
              help="With --scaling: vary NAME (num_layers, hidden_size, embed_dim, batch_size or seq_len) over "
                   "these values instead of the default four axes; repeatable.")
@click.option("--base", "base", multiple=True, metavar="NAME=V",
              help="With --scaling: set NAME in the shape every row varies from (default 2x256, embedding 64, "
                   "batch 32 x seq 100); repeatable.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the results here.")
@quiet_option
def bench_cmd(device: str, quick: bool, presets: str | None, threads: int | None, scaling: bool,
              axes: tuple[str, ...], base: tuple[str, ...], json_path: Path | None, quiet: bool) -> None:
    """Measure how fast charlstm runs here, next to what the hardware allows.

    Training chars/s per preset beside a bare nn.LSTM loop of the same shape and the measured
    matmul FLOP/s (model FLOP utilisation); sampling chars/s at batch 1 and 64 beside the
    weight-streaming limit; tracing and encoding speed; peak memory. Everything runs in this
    process on generated data (nothing under data/ or checkpoints/ is touched).

    \b
    Examples:
      charlstm bench --quick
      charlstm bench --json bench.json
      charlstm bench --device cuda --presets small,medium,large
      charlstm bench --scaling --json scaling.json
      charlstm bench --scaling --device cuda --base num_layers=3 --base hidden_size=512 --axis batch_size=64,256,1024
    """
    from charlstm import bench
    from charlstm.fileio import atomic_write_json, check_output

    if (axes or base) and not scaling:
        raise CharlstmError("--axis and --base shape the scaling table: add --scaling")
    if json_path is not None:
        check_output(json_path, "--json")
    say = (lambda msg: None) if quiet else bench.main_say
    if scaling:
        shape = {}
        for text in base:
            name, values = _assignment("--base", text)
            if len(values) != 1:
                raise CharlstmError(f"--base {name} takes one value, got {len(values)}")
            shape[name] = values[0]
        res = bench.run_scaling(device, axes=dict(_assignment("--axis", a) for a in axes) or None, base=shape,
                                quick=quick, threads=threads, say=say)
        click.echo(bench.format_scaling(res))
    else:
        opts = bench.BenchOptions(device=device, quick=quick, threads=threads,
                                  presets=[p.strip() for p in presets.split(",") if p.strip()] if presets else None)
        res = bench.run_bench(opts, say=say)
        click.echo(bench.format_report(res))
    if json_path is not None:
        atomic_write_json(json_path, res)
        click.echo(f"wrote {json_path}")


def _assignment(option: str, text: str) -> tuple[str, list[int]]:
    """'batch_size=32,128' -> ('batch_size', [32, 128]); the names and ranges are run_scaling's to check."""
    name, sep, values = text.partition("=")
    try:
        ints = [int(v) for v in values.split(",")]
    except ValueError:
        ints = []
    if not sep or not name.strip() or not ints:
        raise CharlstmError(f"cannot read {option} '{text}': use NAME=V1,V2,... with whole numbers, e.g. batch_size=32,128")
    return name.strip(), ints


COMMANDS = [bench_cmd]
