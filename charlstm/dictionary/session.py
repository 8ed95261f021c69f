"""What each `charlstm dictionary` command does, as one library call each: train (then measure and
store the fidelity), info (read, or measure afresh), and the data of the page (charlstm.dictionary
.dashboard). The command line only parses and prints.

Owns: loading the run for a command, choosing the held-out split, resuming with the saved options.
Does not know: the command line.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

from charlstm.checkpoint import load_model, load_tensors
from charlstm.dictionary import fidelity, store
from charlstm.dictionary.train import TrainOptions, TrainResult, train_dictionary
from charlstm.errors import CharlstmError
from charlstm.inputs import split_ids


@dataclasses.dataclass
class _Run:
    """A run loaded for a command: what charlstm.load gives, read here through charlstm.checkpoint so
    this package does not import the API above it (which imports this package for dict: specs)."""

    module: Any
    vocab: Any
    config: dict[str, Any]


def _load(run: str | os.PathLike, checkpoint: str) -> _Run:
    return _Run(*load_model(run, checkpoint=checkpoint, device="cpu"))


def held_out_split(trained_on: str) -> str:
    """The split fidelity is measured on: val, unless the dictionary was trained on val (then train)."""
    return "val" if trained_on != "val" else "train"


def saved_options(run: Path, name: str) -> TrainOptions:
    """The options an interrupted training saved in its last.safetensors."""
    path = store.folder(run, name) / store.LAST
    if not path.exists():
        where = store.folder(run, name)
        raise CharlstmError(f"dictionary '{name}' of run {run.name} has nothing to resume"
                            + (" (it finished; --force trains it again)" if (where / store.WEIGHTS).exists() else ""))
    _, meta = load_tensors(path)
    return TrainOptions(**meta["options"])


def train(run: str | os.PathLike, opts: TrainOptions, *, checkpoint: str = "best", resume: bool = False,
          force: bool = False, on_log: Callable[[dict[str, Any]], None] | None = None,
          say: Callable[[str], None] = lambda s: None, should_stop=None) -> tuple[TrainResult, dict[str, Any] | None]:
    """Train a dictionary of a run (resume: continue the one named opts.name, or the run's only
    unfinished one, with its saved options; --chars / --time-budget may be given anew), then, when
    training finished, measure its fidelity on the held-out split and store it in dictionary.json.
    -> (TrainResult, fidelity dict or None when interrupted)."""
    model = _load(run, checkpoint)
    path = store_path(run)
    if resume:
        name = opts.name or _unfinished(path)
        saved = saved_options(path, name)
        opts = dataclasses.replace(saved, chars=opts.chars if opts.chars is not None or opts.time_budget is not None
                                   else saved.chars,
                                   time_budget=opts.time_budget if opts.time_budget is not None else saved.time_budget)
    opts = opts.resolved(model.module.cfg)
    ids = split_ids(model.config, model.vocab, opts.split, instead="train on another --split")
    base = {"run": path.name, "checkpoint": Path(str(model.config.get("checkpoint_file"))).name}
    result = train_dictionary(model.module, ids, path, opts, resume=resume, force=force, on_log=on_log, say=say,
                              should_stop=should_stop, base_info=base)
    fid = None
    if result.status == "done":
        fid = measure(path, model, result.dictionary, opts.split, opts.fidelity_chars, opts.streams)
    return result, fid


def store_path(run: str | os.PathLike) -> Path:
    from charlstm.runs import resolve_run

    return resolve_run(run)


def _unfinished(run: Path) -> str:
    root = run / store.FOLDER
    cands = sorted(p.name for p in root.iterdir() if (p / store.LAST).exists()) if root.is_dir() else []
    if len(cands) != 1:
        raise CharlstmError("nothing to resume: the run has no interrupted dictionary" if not cands else
                            f"several interrupted dictionaries ({', '.join(cands)}); say which with --name")
    return cands[0]


def measure(run: Path, model, d, trained_on: str, chars: int, streams: int = 64) -> dict[str, Any]:
    """Measure a dictionary's fidelity on the held-out split and store it in its dictionary.json."""
    split = held_out_split(trained_on)
    ids = split_ids(model.config, model.vocab, split, instead="measure on another split")
    f = fidelity.measure(model.module, d, ids, chars=chars, streams=streams, split=split)
    freq = f.pop("freq")
    store.update_info(store.folder(run, d.name), fidelity=f)
    f["freq"] = freq
    return f


def info(run: str | os.PathLike, name: str | None = None, *, measure_again: bool = False, chars: int = 100_000,
         checkpoint: str = "best") -> list[dict[str, Any]]:
    """dictionary.json of the named dictionary, or of every dictionary of the run when name is None
    (measure_again: measure the fidelity afresh, which needs the model, and store it)."""
    path = store_path(run)
    wanted = [store.pick(path, name)] if (name is not None or measure_again) else store.names(path)
    if not wanted:
        raise CharlstmError(f"run {path.name} has no dictionary; train one with `charlstm dictionary train {path.name}`")
    out = []
    for n in wanted:
        meta = store.read_info(store.folder(path, n))
        if measure_again:
            model = _load(path, checkpoint)
            d, meta = store.load(path, n, model=model.module)
            f = measure(path, model, d, (meta.get("train") or {}).get("split", "train"), chars)
            f.pop("freq", None)
            meta = store.read_info(store.folder(path, n))
        out.append(meta)
    return out


def describe(meta: dict[str, Any]) -> list[str]:
    """The lines `dictionary info` prints for one dictionary."""
    t = meta.get("train") or {}
    lines = [f"dictionary {meta['name']} of run {meta.get('run', '?')}: layer{meta['layer']}.{meta['kind']}, "
             f"{meta['hidden']} units -> {meta['size']:,} features, k = {meta['k']}, {meta['code']} code",
             f"  trained on {t.get('states', 0):,} states of the {t.get('split', '?')} split in {t.get('steps', 0):,} steps, "
             f"{t.get('seconds', 0):.0f} s ({t.get('status', '?')}); last training loss {t.get('loss')}"]
    lines += ["  " + ln for ln in fidelity.describe(meta.get("fidelity"), meta.get("size"))]
    return lines


def table(metas: list[dict[str, Any]]) -> str:
    """One line per dictionary: name, layer.kind, size, k, code, states, variance explained, bpc."""
    head = f"{'NAME':<22} {'STATE':<9} {'SIZE':>6} {'K':>3} {'CODE':<6} {'STATES':>10} {'VAR EXPL':>8} {'BPC -> SPLICED':>17}"
    rows = [head]
    for m in metas:
        f = m.get("fidelity") or {}
        t = m.get("train") or {}
        ve = f"{f['variance_explained']:.4f}" if f.get("variance_explained") is not None else "-"
        if not f:
            bpc = t.get("status", "-")
        elif f.get("spliced_bpc") is None:  # the spliced run overflowed (charlstm.dictionary.fidelity)
            bpc = f"{f['bpc']:.3f} -> diverged"
        else:
            bpc = f"{f['bpc']:.3f} -> {f['spliced_bpc']:.3f}"
        rows.append(f"{m['name']:<22} layer{m['layer']}.{m['kind']:<3} {m['size']:>6,} {m['k']:>3} {m['code']:<6} "
                    f"{t.get('states', 0):>10,} {ve:>8} {bpc:>17}")
    return "\n".join(rows)



def show(run: str | os.PathLike, html: str | os.PathLike, name: str | None = None, *, text: str | None = None,
         file: str | os.PathLike | None = None, split: str | None = None, limit: int | None = 100_000,
         unknown: str = "error", checkpoint: str = "best", opts=None) -> dict[str, Any]:
    """Write the dictionary page (charlstm.dictionary.dashboard over the text; charlstm.viz.dictpage)
    -> the page's data. The text: exactly one of text, file and split (default: the held-out split)."""
    from charlstm.dictionary.dashboard import build
    from charlstm.fileio import check_output
    from charlstm.inputs import read_input
    from charlstm.viz.dictpage import write_page

    check_output(html, "--html")
    path = store_path(run)
    model = _load(path, checkpoint)
    d, meta = store.load(path, name, model=model.module)
    if text is None and file is None and split is None:
        split = held_out_split((meta.get("train") or {}).get("split", "train"))
    inp = read_input(model.vocab, model.config, text=text, file=file, split=split, limit=limit, unknown=unknown,
                     min_len=2, what="show")
    data = build(model.module, model.vocab, d, inp.ids, source=inp.source + (" (truncated: --limit)" if inp.truncated else ""),
                 opts=opts, info=meta, title=f"{path.name}: dictionary {d.name}")
    write_page(html, data)
    return data
