"""`charlstm bench`: measure training, sampling, tracing and encoding speed on this machine.

Thin: parses options, calls charlstm.bench.run_bench (or run_scaling), prints the tables and
writes the JSON."""
from __future__ import annotations

from pathlib import Path

import click

from charlstm.cli.common import quiet_option
from charlstm.config import PRESETS


@click.command("bench", context_settings={"max_content_width": 100})
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--quick", is_flag=True, help="About a minute: tiny and small only, short timings.")
@click.option("--presets", metavar="LIST",
              help=f"Comma-separated presets to measure ({', '.join(PRESETS)}) [default: tiny,small,medium; "
                   "--quick: tiny,small].")
@click.option("--threads", type=click.IntRange(min=1), help="torch CPU threads [default: torch's, one per core].")
@click.option("--scaling", is_flag=True,
              help="Instead: training chars/s and memory as hidden size, layers, batch and seq len grow (minutes).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the results here.")
@quiet_option
def bench_cmd(device: str, quick: bool, presets: str | None, threads: int | None, scaling: bool,
              json_path: Path | None, quiet: bool) -> None:
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
    """
    from charlstm import bench
    from charlstm.fileio import atomic_write_json, check_output

    if json_path is not None:
        check_output(json_path, "--json")
    say = (lambda msg: None) if quiet else bench.main_say
    if scaling:
        res = bench.run_scaling(device, quick=quick, threads=threads, say=say)
        click.echo(bench.format_scaling(res))
    else:
        opts = bench.BenchOptions(device=device, quick=quick, threads=threads,
                                  presets=[p.strip() for p in presets.split(",") if p.strip()] if presets else None)
        res = bench.run_bench(opts, say=say)
        click.echo(bench.format_report(res))
    if json_path is not None:
        atomic_write_json(json_path, res)
        click.echo(f"wrote {json_path}")


COMMANDS = [bench_cmd]
