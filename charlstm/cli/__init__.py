"""The `charlstm` command line: a thin Click group. Each command family lives in its own module
(data, train, sample, trace, neurons, atlas, dictionary, export, bench) exporting `COMMANDS`; this file only
assembles them and
turns CharlstmError (and an OS error such as a full disk) into one clear line with exit status 1,
never a traceback.

Commands parse their options, call the library and print. They import the library inside the
command so that `charlstm --help` and option errors answer without loading torch.
"""
from __future__ import annotations

import sys

import click

from charlstm import __version__
from charlstm.errors import CharlstmError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Group(click.Group):
    """A click group that reports CharlstmError (and a few OS errors) as `Error: ...` lines."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CharlstmError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:  # the disk filled up, a folder vanished, a permission changed mid-run
            where = f"{e.filename}: " if e.filename else ""
            raise click.ClickException(f"{where}{e.strerror or e}") from None
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="charlstm")
def main() -> None:
    """Character-level LSTM/GRU/RNN models of text and code.

    \b
    Typical session:
      charlstm data code                      # the Python standard library as a corpus
      charlstm train stdlib --preset small --time-budget 10m
      charlstm sample stdlib --prime "def " --temperature 0.8
      charlstm trace stdlib --split val --html trace.html
      charlstm neurons find stdlib --feature indentation --split val
      charlstm export stdlib --html stdlib.html   # a page that runs the model, offline
    """


def _register() -> None:
    import importlib

    for mod in ("data", "train", "sample", "trace", "neurons", "atlas", "dictionary", "export", "bench"):
        m = importlib.import_module(f"charlstm.cli.{mod}")
        for cmd in getattr(m, "COMMANDS", []):
            main.add_command(cmd)


_register()
