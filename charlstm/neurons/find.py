"""Finding the units that track a feature: `charlstm neurons find`.

The input (charlstm.inputs) is traced (charlstm.trace), the feature is computed on the same steps
(charlstm.neurons.features), and every unit of every layer and kind is ranked against it
(charlstm.neurons.ranking: |Pearson r| for a continuous feature, AUROC for a binary one; optionally
a sparse L1 probe, charlstm.neurons.probe). The features of dictionaries (charlstm.dictionary: any
encoder with key, layer, kind, size and codes(states)) over the searched layers and kinds are ranked
with them, by the same scores from their sparse codes (charlstm.neurons.sparse), as `dict:12` or
`dict/NAME:12`. The ranking is printed as a table, drawn in the trace
viewer (charlstm.viz.html) and, for the best unit, as a PNG (charlstm.viz.plots).

Owns: FindResult, `find_units`, and how a ranking is shown. Does not know: the command line.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from charlstm.errors import CharlstmError
from charlstm.inputs import Input
from charlstm.neurons.features import Feature, compute, get_feature
from charlstm.neurons.probe import ProbeResult, l1_probe
from charlstm.neurons.ranking import UnitScore, infer_kind, rank_units
from charlstm.neurons.sparse import rank_sparse
from charlstm.trace import trace_ids
from charlstm.units import is_dict_key, key, kind_of, parse_key
from charlstm.viz.html import DictCodes, write_html
from charlstm.viz.plots import wrapped_png
from charlstm.vocab import Vocab

#: Characters used from a --split (and the cap on --text/--file) unless --limit says otherwise:
#: a full trace of a 3x512 LSTM is 36 KB per character.
DEFAULT_LIMIT = 10_000


# ----------------------------------------------------------------------------------------------
# Finding


@dataclass
class FindResult:
    """The outcome of `find_units`.

    feature: the Feature; kind: "binary" or "continuous" (how it was ranked);
    values: float32 [T] feature values; trace: the charlstm.trace.Trace ([T, H] arrays);
    ranking: the best units (and dictionary features), best first; probe: the L1 probe when asked
    for; codes: per dictionary key its sparse code over the text (charlstm.viz.html.DictCodes).
    """

    feature: Feature
    kind: str
    values: np.ndarray
    trace: Any
    ranking: list[UnitScore]
    source: str = ""
    probe: ProbeResult | None = None
    truncated: bool = False
    codes: dict[str, DictCodes] = dataclasses.field(default_factory=dict)

    def column(self, u: UnitScore) -> np.ndarray:
        """The values [T] of a ranked unit or dictionary feature over the text."""
        if u.key in self.codes:
            c = self.codes[u.key]
            return (c.values * (c.indices == u.unit)).sum(1).astype(np.float32)
        return self.trace.unit(u.key, u.unit)

    def best(self, kinds: Sequence[str] | None = None) -> UnitScore:
        """The best unit, optionally only among trace kinds (``("h", "c")``)."""
        for u in self.ranking:
            if kinds is None or kind_of(u.key) in kinds:
                return u
        raise CharlstmError(f"no unit of kind {', '.join(kinds or ())} among the ranked units")

    def _repr_html_(self) -> str:
        """Jupyter shows the ranking as the table `neurons find` prints (charlstm.viz.notebook)."""
        from charlstm.viz.notebook import ranking_html

        return ranking_html(self)


def feature_values(feature: str | Feature, symbols: Sequence[str]) -> tuple[Feature, np.ndarray, str]:
    """(Feature, values float32 [T], kind "binary" | "continuous") of a feature on the symbols."""
    feat = get_feature(feature)
    values = compute(feat, list(symbols))
    kind = feat.kind if feat.kind != "auto" else infer_kind(values)
    return feat, values, kind


def find_units(model, vocab: Vocab, inp: Input, feature: str | Feature, *, top: int = 10,
               layers: Sequence[int] | str | None = None, kinds: Sequence[str] | str | None = None,
               probe: bool = False, max_units: int = 5, mask: np.ndarray | None = None,
               trace=None, dictionaries: Sequence[Any] = ()) -> FindResult:
    """Rank every unit (all layers and kinds unless narrowed) by how well it tracks `feature` on the
    input, and the features of `dictionaries` whose layer and kind are among those searched. mask:
    optional bool [T], the characters to score on. trace: reuse an existing Trace of exactly these
    ids instead of tracing again. Raises CharlstmError when the feature is constant."""
    feat, values, kind = feature_values(feature, inp.symbols)
    if trace is None:
        trace = trace_ids(model, vocab, inp.ids, layers=layers, kinds=kinds)
    ranking = rank_units(trace.arrays, values, kind=kind, top=top, mask=mask)
    codes: dict[str, DictCodes] = {}
    for d in dictionaries:
        states = trace.arrays.get(key(d.layer, d.kind))
        if states is None:
            continue
        v, i = d.codes(states)
        codes[d.key] = DictCodes(d.layer, d.kind, d.size, v, i)
        ranking += rank_sparse(d.key, v, i, d.size, values, kind=kind, top=top, mask=mask)
    if codes:  # merge: by score, units before features on a tie (sorted() is stable)
        ranking = sorted(ranking, key=lambda u: -u.score)[:top]
    pr = l1_probe(trace.arrays, values, kind=kind, max_units=max_units, mask=mask) if probe else None
    return FindResult(feat, kind, values, trace, ranking, inp.source, pr, inp.truncated, codes)


def format_find(result: FindResult) -> str:
    """The table `neurons find` prints: rank, unit, score, and r (continuous) or AUROC plus the
    unit's mean where the feature is on and off (binary)."""
    n = len(result.values)
    how = "|Pearson r|" if result.kind == "continuous" else "AUROC (max of AUROC, 1 - AUROC)"
    lines = [f"feature {result.feature.name} ({result.kind}, ranked by {how}) on {n:,} characters of {result.source}"
             + (" (truncated: --limit)" if result.truncated else "")]
    w = max([14] + [len(u.name) for u in result.ranking])
    if result.kind == "continuous":
        lines.append(f"{'rank':>4}  {'unit':<{w}} {'score':>6} {'r':>7}")
        for k, u in enumerate(result.ranking, 1):
            lines.append(f"{k:>4}  {u.name:<{w}} {u.score:>6.3f} {u.r:>+7.3f}")
    else:
        on = result.values > 0.5
        lines.append(f"{'rank':>4}  {'unit':<{w}} {'score':>6} {'auroc':>6} {'mean on':>8} {'mean off':>9}")
        for k, u in enumerate(result.ranking, 1):
            col = result.column(u)
            lines.append(f"{k:>4}  {u.name:<{w}} {u.score:>6.3f} {u.auroc:>6.3f} {col[on].mean():>8.3f} "
                         f"{col[~on].mean():>9.3f}")
    if result.probe is not None:
        lines.append("")
        lines.extend(format_probe(result.probe).splitlines())
    return "\n".join(lines)


def format_probe(p: ProbeResult) -> str:
    """A few lines describing an L1 probe: how many units, how well on held-out text, which units."""
    if p.kind == "binary":
        h = p.heldout
        perf = (f"held-out accuracy {h['accuracy']:.3f} (majority baseline {h['baseline']:.3f}"
                + (f", AUROC {h['auroc']:.3f}" if "auroc" in h else "") + ")") if h else "no held-out text"
    else:
        perf = f"held-out R^2 {p.heldout['r2']:.3f} (r {p.heldout['r']:+.3f})" if p.heldout else "no held-out text"
    model = "logistic" if p.kind == "binary" else "least squares"
    lines = [f"L1 probe ({model}, units standardised): {len(p.units)} unit(s), {perf}; "
             f"trained on {p.n_train:,}, tested on the last {p.n_test:,} characters"]
    for u in p.units:
        lines.append(f"  {u.name:<14} weight {u.weight:+.3f}")
    if not p.units:
        lines.append("  (no unit helps: the probe is the constant prediction)")
    return "\n".join(lines)


#: Characters the --html page shows: with every unit of a big model embedded, pages grow by about
#: 1.3 bytes per value (21 MB for 10,000 characters of a 2x256 LSTM, all kinds).
HTML_CHARS = 5000


def find_html(result: FindResult, path: str | Path, units: int | None = None, max_chars: int = HTML_CHARS) -> Path:
    """Write the trace viewer (charlstm.viz.html) for the input, with the ranking as the feature's
    scores in its overview: the best unit is shown first, and n/p step through the ranking.
    units: how many of the ranked units to offer (default all of `result.ranking`). To keep the
    page small it holds only the layers and kinds of the ranked units, over the first max_chars
    characters."""
    ranked = result.ranking[:units] if units is not None else result.ranking
    tr = result.trace
    unit_keys = [u.key for u in ranked if not is_dict_key(u.key)] or [key(max(tr.layers), tr.kinds[0])]
    layers = sorted({parse_key(k)[0] for k in unit_keys})
    kinds = [k for k in tr.kinds if any(parse_key(x)[1] == k for x in unit_keys)]
    dicts = {k: c for k, c in result.codes.items() if any(u.key == k for u in ranked)}
    arrays = {key(l, k): tr.arrays[key(l, k)] for l in layers for k in kinds if key(l, k) in tr.arrays}
    shown = dataclasses.replace(tr, arrays=arrays, layers=layers, kinds=kinds).head(min(len(tr), max_chars))
    how = "|r|" if result.kind == "continuous" else "max(AUROC, 1 - AUROC)"
    scores = {f"{result.feature.name} ({how})": [(u.key, u.unit, u.score) for u in ranked]}
    best = ", ".join(f"{u.name} {u.score:.3f}" for u in ranked[:5])
    notes = [f"Units ranked against feature {result.feature.name} ({result.kind}) on {len(result.values):,} characters "
             f"of {result.source}; best: {best}."]
    if result.probe is not None:
        notes.append("L1 probe: " + ", ".join(f"{u.name} ({u.weight:+.2f})" for u in result.probe.units))
    return write_html(path, shown, scores=scores, title=f"charlstm neurons find: {result.feature.name}",
                      notes=notes, total=len(tr), dicts=dicts)


def find_png(result: FindResult, path: str | Path, max_lines: int = 16, max_cols: int = 80) -> Path | None:
    """Draw the best unit over the start of the text (as it reads: a row per line) into a PNG, with
    the viewer's colour map; None when matplotlib is missing."""
    best = result.ranking[0]
    how = f"r {best.r:+.3f}" if best.r is not None else f"AUROC {best.auroc:.3f}"
    title = f"{best.name} ({how} with {result.feature.name})"
    kind = "c" if is_dict_key(best.key) else kind_of(best.key)  # features: scaled by their largest |value|
    return wrapped_png(path, result.trace.chars, result.column(best), kind,
                       title=title, max_lines=max_lines, max_cols=max_cols)


