"""`charlstm sample` and `charlstm eval`: thin commands over charlstm.api (generation, scoring,
dynamic evaluation, the compressor baseline)."""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import click

from charlstm.cli.common import dynamic_options, dynamic_settings, quiet_option
from charlstm.errors import CharlstmError
from charlstm.fileio import check_output

UNKNOWN = click.Choice(["error", "skip", "replace"])


def _unescape(s: str) -> str:
    r"""'\n', '\t', '\r' and '\\' in a --stop string mean newline, tab, return and a backslash."""
    table = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    return re.sub(r"\\(.)", lambda m: table.get(m.group(1), m.group(0)), s)


def _load(run: str, checkpoint: str, device: str):
    from charlstm.api import load

    return load(run, checkpoint=checkpoint, device=device)


class _Stream:
    """Writes generated text to stdout as it comes, flushing at most every 30 ms: a flush (a
    system call) per character would cost a good part of what generating it does."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, piece: str) -> None:
        sys.stdout.write(piece)
        now = time.perf_counter()
        if now - self.last > 0.03:
            sys.stdout.flush()
            self.last = now

    def close(self) -> None:
        sys.stdout.write("\n")
        sys.stdout.flush()


def _header(i: int, n: int, reason: str) -> str:
    why = {"eot": ", ended at <eot>", "stop": ", ended at a stop string"}.get(reason, "")
    return f"──── sample {i + 1}/{n}{why} ────"


@click.command("sample")
@click.argument("run")
@click.option("--prime", "-p", default=None, help="Text the model reads first and continues.")
@click.option("--prime-file", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Read the prime from a file ('-' for stdin).")
@click.option("--length", "-n", type=int, default=500, show_default=True,
              help="Characters to generate (bytes for byte models).")
@click.option("--temperature", "-t", type=float, default=1.0, show_default=True,
              help="Below 1: safer, more repetitive; above 1: more surprising.")
@click.option("--top-k", type=int, default=None, help="Sample only among the k most likely characters.")
@click.option("--top-p", type=float, default=None, help="Sample only among the most likely characters totalling p.")
@click.option("--greedy", is_flag=True, help="Always take the most likely character.")
@click.option("--seed", type=int, default=None, help="Same seed, same text (default: a fresh one, printed).")
@click.option("--num-samples", "-N", type=int, default=1, show_default=True,
              help="Generate this many samples together, as one batch.")
@click.option("--stop", multiple=True, metavar="STRING",
              help=r"End a sample after it writes STRING (kept; repeatable; \n and \t understood).")
@click.option("--stop-at-eot/--no-stop-at-eot", default=True, show_default=True,
              help="End a sample at the end-of-text symbol <eot> (record/tweet models).")
@click.option("--unknown", type=UNKNOWN, default="error", show_default=True,
              help="Prime characters the model does not know: error, skip them, or replace with <unk>.")
@click.option("--clamp", multiple=True, metavar="LAYER.KIND:UNIT=VALUE",
              help="Hold a unit at a value while generating, e.g. layer1.c:37=1.0 (layers from 0; repeatable), or a "
                   "dictionary feature's activation, e.g. dict:12=2.0 (dict/NAME:12=2.0 with several dictionaries).")
@click.option("--clamp-prime", is_flag=True, help="Clamp while reading the prime too.")
@click.option("--adapt", "adapt_file", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Adapt the weights to this file by dynamic evaluation first, so samples continue in its "
                   "style (the trained weights are not changed).")
@dynamic_options
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Also write the samples to a file: JSONL with the options if it ends in .jsonl, else text.")
@click.option("--checkpoint", default="best", show_default=True, help="best, last, or a .safetensors file.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N, mps or auto.")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="CPU threads (default: one for small models or a busy machine, else torch's choice).")
@quiet_option
def sample_cmd(run, prime, prime_file, length, temperature, top_k, top_p, greedy, seed, num_samples, stop,
               stop_at_eot, unknown, clamp, clamp_prime, adapt_file, step_size, decay, segment, output, checkpoint,
               device, threads, quiet):
    """Generate text from RUN (a run name or folder), continuing a prime.

    \b
    Examples:
      charlstm sample stdlib --prime "def " --temperature 0.8 --seed 1
      charlstm sample tweets -N 8 --top-p 0.9 -o tweets.jsonl
      charlstm sample stdlib --prime "    " --stop "\\n\\n" --greedy
      charlstm sample stdlib --prime "if (" --clamp layer1.c:37=1.0
      charlstm sample stdlib --adapt mymodule.py --prime "def " --seed 1

    One sample streams to the terminal as it is generated; several are printed one after another.
    The prime is read once and each new character costs one model step. --adapt FILE first reads
    FILE by dynamic evaluation (--step-size, --decay, --segment), adapting the weights to it.
    """
    if prime is not None and prime_file is not None:
        raise click.UsageError("give --prime or --prime-file, not both")
    settings = dynamic_settings(adapt_file is not None, "--adapt FILE", step_size, decay, segment)
    from charlstm.inputs import read_file

    if output:
        check_output(output, "--output")
    model = _load(run, checkpoint, device)
    if prime_file is not None:
        prime = read_file(prime_file, model.vocab.units, "prime file")
    prime = prime or ""
    stops = tuple(_unescape(s) for s in stop)
    opts = model.options(length=length, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                         num_samples=num_samples, seed=seed, stop=stops, stop_at_eot=stop_at_eot,
                         clamp=list(clamp), clamp_prime=clamp_prime)
    ids = model.encode(prime, unknown)
    from contextlib import nullcontext

    from charlstm.sample import generate

    adapting = nullcontext()
    if adapt_file is not None:
        text = read_file(adapt_file, model.vocab.units, "file to adapt to")
        adapting = model.adapted(text, unknown=unknown, dynamic=settings)
    with adapting as adapted:
        if adapted is not None and not quiet:
            unit = "byte" if model.vocab.units == "byte" else "character"
            click.echo(f"adapted to {adapt_file}: {adapted.scored:,} {unit}s read by dynamic evaluation at "
                       f"{adapted.bpc:.4f} bits per {unit}", err=True)
        stream = _Stream() if num_samples == 1 else None
        if stream:
            stream(prime)
        t0 = time.perf_counter()
        try:
            g = generate(model.module, model.vocab, ids, opts, on_text=stream, threads=threads or "auto")
        finally:
            if stream:
                stream.close()
        dt = time.perf_counter() - t0
    if not stream:
        for i, s in enumerate(g.samples):
            click.echo(_header(i, num_samples, s.stop_reason))
            click.echo(prime + s.text)
    if output:
        _write_output(Path(output), run, model, prime, g, opts, unknown, checkpoint, adapt_file, settings)
    if not quiet:
        n = sum(len(s.ids) for s in g.samples)
        ends = ", ".join(sorted({s.stop_reason for s in g.samples}))
        click.echo(f"seed {g.seed} · {n} {'byte' if model.vocab.units == 'byte' else 'character'}s in "
                   f"{dt:.2f} s ({n / max(dt, 1e-9):,.0f}/s) · ended by {ends}"
                   + (f" · written to {output}" if output else ""), err=True)


def _write_output(path: Path, run, model, prime, g, opts, unknown, checkpoint, adapt_file, settings) -> None:
    from charlstm.fileio import atomic_write_text

    if path.suffix.lower() == ".jsonl":
        options = {"length": opts.length, "temperature": opts.temperature, "top_k": opts.top_k,
                   "top_p": opts.top_p, "greedy": opts.greedy, "num_samples": opts.num_samples, "seed": g.seed,
                   "stop": list(opts.stop), "stop_at_eot": opts.stop_at_eot, "unknown": unknown,
                   "clamp": [str(c) for c in opts.clamp], "clamp_prime": opts.clamp_prime,
                   "checkpoint": checkpoint, "checkpoint_file": model.config.get("checkpoint_file"),
                   "adapt": adapt_file, "adapt_settings": settings.as_dict() if settings else None}
        lines = [json.dumps({"run": str(run), "sample": i, "prime": prime, "text": s.text,
                             "stop_reason": s.stop_reason, "options": options}, ensure_ascii=False)
                 for i, s in enumerate(g.samples)]
        data = "\n".join(lines) + "\n"
    elif len(g.samples) == 1:
        data = prime + g.samples[0].text
    else:
        data = "".join(f"{_header(i, len(g.samples), s.stop_reason)}\n{prime}{s.text}\n" for i, s in enumerate(g.samples))
    atomic_write_text(path, data)


@click.command("eval")
@click.argument("run")
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--split", type=click.Choice(["train", "val", "test"]), default=None,
              help="Score a split of the run's dataset (default: val, when no FILE is given).")
@click.option("--unknown", type=UNKNOWN, default="error", show_default=True,
              help="Characters of FILE the model does not know: error, skip, or replace with <unk>.")
@click.option("--per-char", type=click.Path(dir_okay=False), default=None,
              help="Write each character's surprisal (bits) and the top predictions to this JSONL file.")
@click.option("--top", type=click.IntRange(0, 100), default=5, show_default=True,
              help="Predictions per character in --per-char.")
@click.option("--chunk", type=click.IntRange(1), default=2048, show_default=True,
              help="Characters per forward pass (memory bound; the result does not depend on it).")
@click.option("--checkpoint", default="best", show_default=True, help="best, last, or a .safetensors file.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N, mps or auto.")
@click.option("--dynamic", is_flag=True,
              help="Dynamic evaluation: adapt the weights to the text while reading it (each character is "
                   "still scored before the weights have seen it; nothing on disk changes).")
@dynamic_options
@click.option("--no-baseline", is_flag=True, help="Do not print what xz -9e achieves on the same text.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@quiet_option
def eval_cmd(run, file, split, unknown, per_char, top, chunk, dynamic, step_size, decay, segment, no_baseline,
             checkpoint, device, as_json, quiet):
    """Bits per character of a text under RUN: FILE ('-' for stdin), or a --split of its dataset.

    \b
    Examples:
      charlstm eval stdlib                       # the validation split
      charlstm eval stdlib --split test
      charlstm eval stdlib mycode.py --per-char surprise.jsonl
      charlstm eval stdlib mycode.py --dynamic

    Exact: every character after the first is scored once, from all the text before it. A second
    line gives what the compressor xz -9e achieves on the same characters (--no-baseline: skip it).
    --dynamic adapts the weights while reading, segment by segment (--step-size, --decay,
    --segment); the trained weights are not changed.
    """
    if file is not None and split is not None:
        raise click.UsageError("give FILE or --split, not both")
    settings = dynamic_settings(dynamic, "--dynamic", step_size, decay, segment)
    if per_char:
        check_output(per_char, "--per-char")
    from charlstm.inputs import read_file

    model = _load(run, checkpoint, device)
    if file is not None:
        ids, what = model.encode(read_file(file, model.vocab.units), unknown), f"{file}"
    else:
        split = split or "val"
        ids, what = model.split(split), f"{split} split"
    progress, bar = None, None
    if not quiet and len(ids) > 100_000:
        from tqdm import tqdm

        bar = tqdm(total=max(len(ids) - 1, 0), unit="char", unit_scale=True, desc="scoring", file=sys.stderr,
                   disable=None)  # None: only on a terminal
        progress = lambda n: bar.update(n - bar.n)  # noqa: E731
    try:
        r = model.evaluate(ids=ids, per_char=per_char is not None, top=top if per_char else 0,
                           chunk=chunk, progress=progress, dynamic=settings or False, baseline=not no_baseline)
    finally:
        if bar is not None:
            bar.close()
    if r.scored == 0:
        raise CharlstmError(f"{what} has fewer than 2 characters: nothing to score")
    if per_char:
        from charlstm.score import write_per_char_jsonl

        write_per_char_jsonl(per_char, r, model.vocab)
    unit = "byte" if model.vocab.units == "byte" else "character"
    if as_json:
        click.echo(json.dumps({**r.as_dict(), "run": str(run), "source": what, "checkpoint": checkpoint,
                               "per_char": per_char}))
    else:
        how = ""
        if settings is not None:
            how = (f"; dynamic evaluation: step size {settings.step:g}, decay {settings.decay:g}, segment "
                   f"{settings.segment}")
        click.echo(f"{r.bpc:.4f} bits per {unit} ({r.scored:,} {unit}s of {what} scored{how})")
        if r.baseline is not None:
            click.echo(f"{r.baseline.bpc:.4f} bits per {unit} for {r.baseline.name} on the same {unit}s "
                       f"({r.baseline.compressed:,} bytes)")
        if per_char and not quiet:
            click.echo(f"per-{unit} surprisal written to {per_char}", err=True)


COMMANDS = [sample_cmd, eval_cmd]
