"""The trace viewer: one self-contained HTML page (no network, nothing from a CDN).

The page (template viewer.html, small inline CSS and JS) shows the text with each character's
background coloured by one unit (charlstm.viz.colors), controls for layer, kind and unit, keyboard
stepping (j/k or the arrow keys: next/previous unit; n/p: next/previous in the ranking), a tooltip
with the value and the top-5 next-character predictions, an overview ranking units (variance,
saturation, and any feature scores passed in) and the gate-saturation scatter plots drawn as SVG.

Data embedding (compact and safe):
* activations: per array and unit a scale s = max|v| / 127 and int8 codes round(v / s),
  base64-encoded; ids, probabilities and top-5 as base64 uint16 (probabilities * 65535);
* everything sits in a `<script type="application/json">` block with `<`, `>` and `&` written as
  \\u003c, \\u003e, \\u0026, so no text can close the block; the page inserts text with
  textContent only, never innerHTML;
* at most `max_chars` characters (20,000) and `max_values` numbers (16M, ~21 MB of base64) are
  embedded; the page says how many of the traced characters it shows.

Dictionary features (charlstm.dictionary) can be embedded too (`dicts`): per dictionary its sparse
code over the shown characters, so the page lists it beside the layers and `#dict:12` (or
`#dict/NAME:12`) selects a feature like a unit.

Test hooks: the location hash `#layer1.c:37` selects a unit on load (`#layer1.c:37&tip=5` also
hovers character 5, opening its tooltip); the <html> element carries data-ready="1" when drawn,
data-selected="layer1.c:37" and data-errors (count of uncaught errors and console.error calls).

Owns: the page and its data. Does not know: models or how a trace was computed; it reads a
charlstm.trace.Trace (any object with its fields) and, optionally, gate statistics (an object with
`fractions()` and `n`, like charlstm.trace.GateStats).
"""
from __future__ import annotations

import base64
import html
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from charlstm.errors import CharlstmError
from charlstm.fileio import atomic_write_text
from charlstm.units import SATURATION_GATES, gate_saturation, is_dict_key, key, parse_key, saturated_fraction
from charlstm.viz.colors import NEG, POS



class Trace(Protocol):
    """What the page reads of a charlstm.trace.Trace (the viewer never makes one)."""

    arrays: dict[str, np.ndarray]
    ids: np.ndarray
    next_prob: np.ndarray
    top_ids: np.ndarray
    top_probs: np.ndarray
    vocab: Any
    cell: str
    hidden_size: int
    layers: list[int]
    kinds: list[str]

    def __len__(self) -> int: ...
    def head(self, n: int) -> "Trace": ...


class GateStats(Protocol):
    """What the page reads of gate statistics (charlstm.trace.GateStats)."""

    n: int

    def fractions(self) -> dict[int, dict[str, tuple[np.ndarray, np.ndarray]]]: ...

@dataclass
class DictCodes:
    """A dictionary's sparse code over the traced characters: values [T, k] and feature indices
    [T, k] of `size` features, read from layer `layer`'s `kind`."""

    layer: int
    kind: str
    size: int
    values: np.ndarray
    indices: np.ndarray


MAX_CHARS = 20_000
MAX_VALUES = 16_000_000
RANK_TOP = 200  # units listed per ranking

Scores = Mapping[str, Sequence[tuple[str, int, float]]]


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).decode("ascii")


def display_symbols(trace: Trace) -> list[str]:
    """One display string per id: the character itself for ordinary ones (newline and tab are
    laid out by the page), \\xNN / \\uNNNN for other control characters, <unk>/<eot> as is."""
    out = []
    for i in range(trace.vocab.size):
        s = trace.vocab.symbol(i)
        if len(s) == 1 and s not in "\n\t " and not s.isprintable():
            s = f"\\x{ord(s):02x}" if ord(s) < 256 else f"\\u{ord(s):04x}"
        out.append(s)
    return out


def _quantise(a: np.ndarray) -> tuple[list[float], str]:
    """[n, H] -> (per-unit scales, base64 int8 codes row-major)."""
    a = np.nan_to_num(np.asarray(a, dtype=np.float32))
    m = np.abs(a).max(0) if len(a) else np.zeros(a.shape[1], np.float32)
    scale = np.where(m > 0, m / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(a / scale), -127, 127).astype(np.int8)
    return [float(f"{s:.6g}") for s in scale], _b64(q)


def _ranking(values: np.ndarray) -> list[list[float]]:
    order = np.argsort(-values, kind="stable")[:RANK_TOP]
    return [[int(u), float(f"{values[u]:.4g}")] for u in order]


def _check_scores(scores: Scores | None, trace: Trace, dicts: Mapping[str, DictCodes] | None = None
                  ) -> dict[str, list[list[Any]]]:
    out: dict[str, list[list[Any]]] = {}
    for feature, rows in (scores or {}).items():
        clean = []
        for row in list(rows)[:RANK_TOP]:
            try:
                k, u, s = row
                k = str(k)
                name, width = (k, (dicts or {})[k].size if k in (dicts or {}) else None) if is_dict_key(k) else \
                    (key(*parse_key(k)), trace.hidden_size)
                u, s = int(u), float(s)
            except (TypeError, ValueError, CharlstmError):
                raise CharlstmError(f"feature scores for '{feature}': rows must be (key like 'layer1.c', unit, score), got {row!r}") from None
            if width is not None and not 0 <= u < width:
                raise CharlstmError(f"feature scores for '{feature}': unit {u} does not exist (0..{width - 1})")
            clean.append([name, u, float(f"{s:.4g}") if np.isfinite(s) else None])
        out[str(feature)] = clean
    return out


def _gates_json(fractions: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]]) -> dict[str, Any]:
    return {str(l): {g: {"left": [round(float(v), 4) for v in lo], "right": [round(float(v), 4) for v in hi]}
                     for g, (lo, hi) in gates.items()} for l, gates in fractions.items()}


def _trace_fractions(t: Trace) -> dict[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Gate saturation of the gates embedded in the page (when no statistics were passed in)."""
    out: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for layer in t.layers:
        for g in SATURATION_GATES[t.cell]:
            if key(layer, g) in t.arrays:
                out.setdefault(layer, {})[g] = gate_saturation(t.arrays[key(layer, g)])
    return out


def build_data(trace: Trace, *, scores: Scores | None = None, gate_stats: GateStats | None = None,
               title: str | None = None, max_chars: int = MAX_CHARS, max_values: int = MAX_VALUES,
               select: str | None = None, total: int | None = None, notes: Sequence[str] = (),
               dicts: Mapping[str, DictCodes] | None = None) -> dict[str, Any]:
    """The JSON object the page reads (see the module docstring)."""
    if len(trace) == 0:
        raise CharlstmError("nothing to show: the trace is empty")
    keys = [k for k in trace.arrays]
    if not keys:
        raise CharlstmError("nothing to show: the trace holds no arrays")
    H = trace.hidden_size
    per_char = len(keys) * H
    n = max(1, min(len(trace), max_chars, max_values // max(per_char, 1)))
    total = len(trace) if total is None else total
    notes = list(notes)
    if n < total:
        why = "" if n == max_chars else f" (to keep the page small: {len(keys)} arrays x {H} units; trace fewer --layers/--kinds to see more)"
        notes.append(f"Showing the first {n:,} of {total:,} characters traced{why}.")
    t = trace.head(n)
    arrays, variance, saturation = {}, {}, {}
    for k in keys:
        _, kind = parse_key(k)
        a = np.asarray(t.arrays[k], dtype=np.float32)
        scale, q = _quantise(a)
        arrays[k] = {"scale": scale, "q": q}
        variance[k] = _ranking(a.var(0))
        saturation[k] = _ranking(saturated_fraction(a, kind))
    probs16 = lambda p: np.where(np.isfinite(p), np.rint(np.clip(p, 0, 1) * 65534), 65535).astype(np.uint16)
    top_ids = np.where(t.top_ids >= 0, t.top_ids, 65535).astype(np.uint16)
    fractions = gate_stats.fractions() if gate_stats is not None else _trace_fractions(t)
    gate_chars = int(gate_stats.n) if gate_stats is not None else (len(t) if fractions else 0)
    scores_ = _check_scores(scores, trace, dicts)
    dicts_: dict[str, Any] = {}
    for dk, dc in (dicts or {}).items():
        v = np.asarray(dc.values[:n], dtype=np.float32)
        i = np.asarray(dc.indices[:n], dtype=np.int64)
        m = np.zeros(dc.size, np.float32)
        np.maximum.at(m, i.reshape(-1), np.abs(v).reshape(-1))
        scale = np.where(m > 0, m / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.rint(v / scale[i]), -127, 127).astype(np.int8)
        s1 = np.bincount(i.reshape(-1), v.reshape(-1).astype(np.float64), minlength=dc.size) / n
        s2 = np.bincount(i.reshape(-1), (v.astype(np.float64) ** 2).reshape(-1), minlength=dc.size) / n
        dicts_[dk] = {"layer": dc.layer, "kind": dc.kind, "size": dc.size, "k": int(v.shape[1]),
                      "scale": [float(f"{x:.6g}") for x in scale], "idx": _b64(i.astype(np.uint16)), "q": _b64(q)}
        variance[dk] = _ranking(s2 - s1 ** 2)
        saturation[dk] = []
    if select is None:
        feats = [rows for rows in scores_.values() if rows]
        if feats:
            select = f"{feats[0][0][0]}:{feats[0][0][1]}"
        else:
            last = [k for k in keys if parse_key(k)[0] == max(trace.layers)]
            k0 = next((k for k in last if k.endswith(".c")), last[0])
            select = f"{k0}:{variance[k0][0][0]}"
    return {
        "format": "charlstm-viewer", "version": 1,
        "title": title or "charlstm trace", "cell": trace.cell, "hidden": H, "layers": list(trace.layers),
        "kinds": list(trace.kinds), "n": n, "total": total, "symbols": display_symbols(trace),
        "ids": _b64(t.ids.astype(np.uint16)), "next_prob": _b64(probs16(t.next_prob)),
        "top_ids": _b64(top_ids.reshape(-1)), "top_probs": _b64(probs16(t.top_probs).reshape(-1)),
        "arrays": arrays, "rank": {"variance": variance, "saturation": saturation}, "scores": scores_,
        "gates": _gates_json(fractions), "gate_chars": gate_chars, "dicts": dicts_,
        "select": select, "notes": notes, "colors": {"neg": list(NEG), "pos": list(POS)},
    }


def _json_for_script(obj: Any) -> str:
    """JSON safe inside <script type="application/json">: no '<', '>' or '&' survives, so no
    '</script>' or '<!--' can appear, whatever the text."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(trace: Trace, *, scores: Scores | None = None, gate_stats: GateStats | None = None,
                title: str | None = None, max_chars: int = MAX_CHARS, max_values: int = MAX_VALUES,
                select: str | None = None, total: int | None = None, notes: Sequence[str] = (),
                dicts: Mapping[str, DictCodes] | None = None) -> str:
    """The viewer page for a trace, as a string.

    scores: feature rankings to offer in the overview, {"feature name": [(key, unit, score), ...]}
        with key like "layer1.c", best first (e.g. from `charlstm neurons find`); each list is
        cut to its first 200 rows. The first row of the first feature is selected on load.
    gate_stats: saturation over the whole traced text (a GateStats sink); default: computed from
        the gates embedded in the page.
    select: the unit shown first, "layer1.c:37" (default: the first feature's best unit, else the
        highest-variance cell-state unit of the top traced layer).
    total: how many characters were traced when `trace` holds only the first ones (for the note).
    notes: extra lines shown above the text.
    dicts: dictionaries' sparse codes over the trace ({"dict/NAME": DictCodes}), listed with the layers.
    """
    data = build_data(trace, scores=scores, gate_stats=gate_stats, title=title, max_chars=max_chars,
                      max_values=max_values, select=select, total=total, notes=notes, dicts=dicts)
    template = resources.files("charlstm.viz").joinpath("viewer.html").read_text(encoding="utf-8")
    fill = {"TITLE": html.escape(data["title"]), "DATA": _json_for_script(data)}
    # one pass, so a title containing "{{DATA}}" stays literal
    return re.sub(r"\{\{(TITLE|DATA)\}\}", lambda m: fill[m.group(1)], template)


def write_html(path: str | os.PathLike, trace: Trace, **kw: Any) -> Path:
    """render_html(trace, **kw) written to path atomically (parent folders created); returns the path."""
    path = Path(path)
    atomic_write_text(path, render_html(trace, **kw))
    return path
