"""Showing an atlas: the summary the command prints, the pictures, and the HTML report.

* `format_summary`: the table printed by `charlstm atlas` (one line per feature), the best state
  units' gates on small vocabularies, gate saturation and the n-gram comparison.
* `write_pictures`: PNGs (charlstm.viz.plots): per feature its best unit over a window of the
  confirmation text, the gate saturation scatter plot, the LSTM against the n-gram per group.
* `write_report`: the self-contained HTML page (charlstm.viz.atlas_page) with those pictures
  inlined and the trace viewer one click away.

Owns: the windows shown and how the atlas is laid out in text. Does not know: how it was computed.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from charlstm.errors import CharlstmError
from charlstm.fileio import atomic_write_text
from charlstm.neurons.atlas.breakdown import format_groups
from charlstm.neurons.atlas.results import Atlas, FeatureResult
from charlstm.trace import GateStats
from charlstm.units import kind_of, parse_key, parse_unit
from charlstm.viz.atlas_page import render_atlas_page
from charlstm.viz.colors import VALUE
from charlstm.viz.html import build_data
from charlstm.viz.plots import bars_png, gate_plot, wrapped_png

#: Characters of text shown per feature, and in the viewer behind the report.
WINDOW = 480
VIEWER_CHARS = 2000
VIEWER_VALUES = 4_000_000


def _fmt_p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"


def _ablation_cell(f: FeatureResult, group: str, mode: str = "zero") -> str:
    a = f.ablation(f.best.unit, mode)
    v = a.change(group) if a is not None else float("nan")
    return "-" if v != v else f"{v:+.3f}"


def format_summary(atlas: Atlas) -> str:
    """What `charlstm atlas` prints."""
    m = atlas.model
    sel = atlas.features[0].rows["selection"] if atlas.features else 0
    lines = [f"atlas of {atlas.run or 'the model'} ({m['cell']} {m['layers']}x{m['hidden']}, {m['units']:,} units) on "
             f"{atlas.characters:,} characters of {atlas.source}" + (" (truncated: --limit)" if atlas.truncated else ""),
             f"units ranked on {atlas.settings['blocks']} alternate blocks ({sel:,} characters), confirmed on the others; "
             f"chance: {atlas.settings['controls']} shifted copies of each feature; learning: "
             f"{atlas.settings['untrained']} untrained models of the same shape",
             "",
             f"{'feature':<16} {'best unit':<14} {'score':>6} {'confirm':>7} {'chance p':>8} {'untrained':>9} "
             f"{'ablation active/inactive':>25}  verdict"]
    for f in atlas.features:
        b = f.best
        sign = "+" if b.direction > 0 else "-"
        ut = f"{f.untrained_best:.3f}" if f.untrained else "-"
        abl = f"{_ablation_cell(f, 'active')} / {_ablation_cell(f, 'inactive')}"
        lines.append(f"{f.name[:16]:<16} {b.unit:<14} {sign}{b.score:.3f} {b.heldout:>7.3f} {_fmt_p(f.p):>8} {ut:>9} "
                     f"{abl:>25}  {f.verdict()}")
    lines.append("score: |r| (continuous) or max(AUROC, 1 - AUROC) (binary) on the selection part, sign = direction; "
                 "confirm: the same unit on the other part; untrained: the best untrained unit there; ablation: "
                 "bpc change with the best unit at 0 where the feature is active / inactive (first "
                 f"{atlas.settings['ablated_characters']:,} characters)")
    for name, why in atlas.skipped:
        lines.append(f"skipped {name}: {why} on this text")
    dicts = [(f, d) for f in atlas.features for d in f.dictionary]
    if dicts:
        lines += ["", "dictionary features (ranked and confirmed like the units; chance: the same shifted copies)",
                  f"{'feature':<16} {'best dictionary feature':<26} {'score':>6} {'confirm':>7} {'chance p':>8} "
                  f"{'best unit':>14} {'confirm':>7}  verdict"]
        for f, d in dicts:
            sign = "+" if d["direction"] > 0 else "-"
            lines.append(f"{f.name[:16]:<16} {d['unit'][:26]:<26} {sign}{d['score']:.3f} {d['heldout']:>7.3f} "
                         f"{_fmt_p(d['chance_p']):>8} {f.best.unit:>14} {f.best.heldout:>7.3f}  "
                         f"{'found' if d['found'] else 'not found'}")
    abl = [(f, a) for f in atlas.features for a in f.ablations]
    if abl:
        lines += ["", f"ablations: bpc change on the first {atlas.settings['ablated_characters']:,} characters "
                      "(active / inactive / key predictions: see the report)",
                  f"{'feature':<16} {'unit':<22} {'set to':<18} {'active':>8} {'inactive':>8} {'key':>8}"]
        for f, a in abl:
            how = a.mode if a.mode != "mean" else f"mean {a.value:+.3f}"
            cells = " ".join(f"{a.change(g):>+8.3f}" if g in a.effects else f"{'-':>8}" for g in ("active", "inactive", "key"))
            lines.append(f"{f.name[:16]:<16} {a.unit[:22]:<22} {how:<18} {cells}")
    for f in atlas.features:
        g = f.gates
        if g and g.get("by_char"):
            per = "; ".join(f"{s!r} " + " ".join(f"{k} {v:.2f}" for k, v in gs.items()) for s, gs in g["by_char"].items())
            lines.append(f"{f.name}: gates of {g['unit']} by character read: {per}")
    lines += ["", atlas.saturation["table"]]
    e = atlas.errors
    if e is not None:
        orders = ", ".join(f"{o['n']}: {o['bpc']:.3f}" for o in e["orders"])
        lines += ["", f"LSTM {e['lstm_bpc']:.3f} bpc; n-gram bpc by order ({e['smoothing']}, fitted on "
                      f"{e['train_characters']:,} training characters) {orders}",
                  format_groups(atlas.groups, e["best_order"])]
    lines += [f"note: {n}" for n in atlas.notes]
    lines.append("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in atlas.seconds.items()))
    return "\n".join(lines)


def window(atlas: Atlas, name: str, width: int = WINDOW) -> tuple[int, int]:
    """(start, stop) of the stretch of text that shows a feature best: mostly in the confirmation
    part, where the feature (inside its span) varies most."""
    values, span = atlas.values[name]
    n = len(values)
    if n <= width:
        return 0, n
    v = np.where(span, values, 0.0) if span is not None else np.asarray(values, np.float64)
    best, where = -1.0, 0
    for a in range(0, n - width + 1, max(1, width // 4)):
        seg = v[a:a + width]
        score = float(seg.std()) / (float(np.abs(v).max()) or 1.0)
        if score > best + 1e-12:
            best, where = score, a
    return where, where + width


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "feature"


def write_pictures(atlas: Atlas, folder: str | os.PathLike) -> dict[str, Path]:
    """PNGs into folder: feature-<name>.png per feature, gate-saturation.png, errors.png. Returns
    {what: path} for those drawn (none without matplotlib)."""
    folder = Path(folder)
    out: dict[str, Path] = {}
    for f in atlas.features:
        a, b = window(atlas, f.name)
        u = parse_unit(f.best.unit)
        title = f"{f.best.unit}: {f.name} {f.best.score:.3f}"
        p = wrapped_png(folder / f"feature-{_slug(f.name)}.png", atlas.symbols[a:b],
                        atlas.trace.unit(u.key, u.unit)[a:b], u.kind, title=title, max_lines=16, max_cols=96)
        if p is not None:
            out[f"feature:{f.name}"] = p
    stats = GateStats.from_trace(atlas.trace)
    if stats.fractions():
        try:
            out["gates"] = gate_plot(stats, folder / "gate-saturation.png",
                                     title=f"gate saturation over {stats.n:,} characters")
        except CharlstmError:  # no matplotlib: the page says the picture was skipped
            pass
    if atlas.errors is not None and atlas.groups:
        n = atlas.errors["best_order"]
        gs = atlas.groups
        p = bars_png(folder / "errors.png", [f"{g.what} ({g.count:,})" for g in gs],
                     [("LSTM", [g.lstm for g in gs]), (f"{n}-gram", [g.ngram for g in gs])],
                     title=f"bits per character: LSTM against the {n}-gram model", xlabel="bits per character")
        if p is not None:
            out["errors"] = p
    return out


def _viewer(atlas: Atlas) -> dict:
    """The trace viewer's data for the report: the layers and kinds of each feature's best units,
    the first VIEWER_CHARS characters, every feature's ranking in its overview."""
    tr = atlas.trace
    shown = {f.best.unit for f in atlas.features} | {u.unit for f in atlas.features for u in f.units[:2]}
    keys = sorted({s.split(":")[0] for s in shown})
    layers = sorted({parse_key(k)[0] for k in keys}) or list(tr.layers)
    kinds = [k for k in tr.kinds if any(kind_of(s) == k for s in shown)] or list(tr.kinds)
    import dataclasses

    sub = dataclasses.replace(tr, arrays={k: v for k, v in tr.arrays.items() if parse_key(k)[0] in layers
                                          and parse_key(k)[1] in kinds}, layers=layers, kinds=kinds)
    scores = {f.name: [(u.unit.split(":")[0], int(u.unit.split(":")[1]), u.score) for u in f.units]
              for f in atlas.features}
    return build_data(sub, scores=scores, title=f"charlstm atlas: {atlas.run}", max_chars=VIEWER_CHARS,
                      max_values=VIEWER_VALUES, total=len(tr),
                      notes=["The trace viewer behind the atlas report: each feature's ranking is in the overview."])


def write_report(atlas: Atlas, path: str | os.PathLike, pictures: str | os.PathLike | None = None) -> Path:
    """Write the HTML report (atomically). pictures: also keep the PNGs in this folder (they are
    inlined in the page either way)."""
    snippets = []
    for f in atlas.features:
        a, b = window(atlas, f.name)
        u = parse_unit(f.best.unit)
        values, span = atlas.values[f.name]
        # a continuous feature is scaled by its largest |value| (the cell-state map), a binary one shown as is
        rows = [(f"{f.best.unit}", atlas.trace.unit(u.key, u.unit)[a:b], u.kind),
                (f.name, values[a:b], VALUE if f.kind == "binary" else "c")]
        if span is not None:
            rows.append((f"span {f.span}", span[a:b].astype(np.float32), VALUE))
        snippets.append({"feature": f.name, "unit": f.best.unit, "start": a, "chars": atlas.symbols[a:b], "rows": rows})
    with tempfile.TemporaryDirectory() as tmp:
        pngs = write_pictures(atlas, pictures if pictures is not None else tmp)
        images = {k: p.read_bytes() for k, p in pngs.items()}
    page = render_atlas_page(atlas.to_json(), snippets, images, _viewer(atlas))
    path = Path(path)
    atomic_write_text(path, page)
    return path
