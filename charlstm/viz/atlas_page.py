"""The atlas report: one self-contained HTML page (no network, pictures inlined as data: URIs).

Sections: the settings, a summary table (per feature: best unit, selection and confirmation
scores, chance p, the best untrained unit, probe selectivity, ablation effects, verdict), then per
feature its ranked units, controls, probe, ablations, the best state unit's gates and the best unit
drawn over real text; gate saturation; the n-gram error analysis.

Every piece of corpus text is escaped on the server side (html.escape, charlstm.viz.colors); the
page's script never writes HTML. "Open in the viewer" shows the trace viewer (charlstm.viz.html,
its template and data embedded as JSON blocks, `<`, `>` and `&` escaped) in an iframe built from
`srcdoc`, with that unit selected.

Test hooks: the location hash `#open=layer0.c:3` opens the viewer on that unit on load; <html>
carries data-ready="1" once the script ran, data-errors (uncaught errors and console.error calls),
and, once the embedded viewer has drawn, data-viewer-ready, data-viewer-selected and
data-viewer-errors (copied from the viewer's own <html>).

Owns: the page. Does not know: how an atlas is computed; it reads the atlas JSON (a dict), text
snippets (characters and rows of values), PNG bytes and the viewer's data (viz.html.build_data).
"""
from __future__ import annotations

import base64
import html
from importlib import resources
from typing import Any, Mapping, Sequence

from charlstm.viz.colors import unit_rows_html
from charlstm.viz.html import _json_for_script

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 78em; padding: 0 1em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.02em; margin: 1.2em 0 0.3em; }
table { border-collapse: collapse; margin: 0.4em 0 0.9em; font-size: 13px; }
td, th { border: 1px solid #ddd; padding: 0.15em 0.5em; text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
.found { color: #1a7f37; font-weight: 600; } .not { color: #b35900; }
.muted { color: #666; font-size: 12px; }
.row { margin: 0.2em 0 0.6em; } .label { font-size: 12px; color: #555; }
.chars { font: 12px/1.55 ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; tab-size: 4; }
img { max-width: 100%; border: 1px solid #eee; }
button.open { font: inherit; font-size: 12px; margin: 0.2em 0; cursor: pointer; }
#viewer-box { position: fixed; inset: 3% 3%; background: #fff; border: 1px solid #888; box-shadow: 0 4px 20px rgba(0,0,0,.3); z-index: 5; }
#viewer-box iframe { width: 100%; height: calc(100% - 2em); border: 0; }
#viewer-bar { height: 2em; display: flex; align-items: center; gap: 1em; padding: 0 0.6em; background: #f3f3f3; }
"""

_JS = """
(function () {
  var root = document.documentElement, n = 0;
  function bump() { n += 1; root.setAttribute("data-errors", String(n)); }
  window.addEventListener("error", bump);
  var ce = console.error; console.error = function () { bump(); return ce.apply(console, arguments); };
  var tpl = JSON.parse(document.getElementById("viewer-template").textContent);
  var data = JSON.parse(document.getElementById("viewer-data").textContent);
  var box = document.getElementById("viewer-box"), frame = document.getElementById("viewer-frame");
  function safe(s) { return s.replace(/</g, "\\\\u003c").replace(/>/g, "\\\\u003e").replace(/&/g, "\\\\u0026"); }
  function open(unit) {
    data.select = unit;
    frame.onload = function () {
      var v = frame.contentDocument && frame.contentDocument.documentElement;
      if (!v) return;
      ["ready", "selected", "errors"].forEach(function (a) {
        root.setAttribute("data-viewer-" + a, v.getAttribute("data-" + a) || "");
      });
    };
    frame.srcdoc = tpl.split("{{DATA}}").join(safe(JSON.stringify(data)));
    box.hidden = false;
    document.getElementById("viewer-unit").textContent = unit;
  }
  Array.prototype.forEach.call(document.querySelectorAll("button.open"), function (b) {
    b.addEventListener("click", function () { open(b.getAttribute("data-unit")); });
  });
  document.getElementById("viewer-close").addEventListener("click", function () { box.hidden = true; });
  var m = /^#open=(layer\\d+\\.[a-z]:\\d+)$/.exec(location.hash);
  if (m) open(m[1]);
  root.setAttribute("data-ready", "1");
})();
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _num(x: Any, fmt: str = ".3f") -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "-"
    return format(x, fmt) if isinstance(x, (int, float)) else _e(x)


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    th = "".join(f'<th class="l">{_e(h)}</th>' if i < left else f"<th>{_e(h)}</th>" for i, h in enumerate(head))
    body = []
    for r in rows:
        body.append("<tr>" + "".join(f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>" for i, c in enumerate(r))
                    + "</tr>")
    return f"<table><tr>{th}</tr>{''.join(body)}</table>"


def _img(images: Mapping[str, bytes], key: str, alt: str) -> str:
    if key not in images:
        return '<p class="muted">(picture skipped: matplotlib is not installed)</p>'
    b64 = base64.b64encode(images[key]).decode("ascii")
    return f'<p><img alt="{_e(alt)}" src="data:image/png;base64,{b64}"></p>'


def _abl(f: Mapping[str, Any], unit: str, mode: str, group: str) -> str:
    for a in f["ablations"]:
        if a["unit"] == unit and a["mode"] == mode and group in a["effects"]:
            return f"{a['effects'][group]['change']:+.3f}"
    return "-"


def _summary(data: Mapping[str, Any]) -> str:
    rows = []
    for f in data["features"]:
        b = f["units"][0]
        ut = max((u["heldout"] for u in f["untrained"]), default=None)
        pr = f["probe"]
        sel = "-" if not pr else (f'{pr["metric"]} {pr["selectivity"]:+.3f}'
                                  + (f', AUROC {pr["auroc"]["selectivity"]:+.3f}' if pr.get("auroc") else ""))
        verdict = f'<span class="{"found" if f["found"] else "not"}">{_e(f["verdict"])}</span>'
        rows.append([f'<a href="#f-{_e(f["feature"])}">{_e(f["feature"])}</a>', _e(b["unit"]),
                     f"{'+' if b['direction'] > 0 else '-'}{b['score']:.3f}", _num(b["heldout"]),
                     f"{_p(f['chance']['p'])} ({f['chance']['beaten']:.0%})", _num(ut), _e(sel),
                     _abl(f, b["unit"], "zero", "active"), _abl(f, b["unit"], "zero", "inactive"),
                     _abl(f, b["unit"], "zero", "key"), verdict])
    head = ["feature", "best unit", "score", "confirmed", "chance p (controls beaten)", "untrained best",
            "probe selectivity", "ablation: active", "inactive", "key", "verdict"]
    return _table(head, rows, left=2)


def _dictionaries(data: Mapping[str, Any]) -> str:
    """Per feature and dictionary: its best dictionary feature next to the best unit (empty without
    dictionaries)."""
    rows = []
    for f in data["features"]:
        for d in f.get("dictionary", []):
            verdict = f'<span class="{"found" if d["found"] else "not"}">{"found" if d["found"] else "not found"}</span>'
            rows.append([_e(f["feature"]), _e(d["unit"]), f"{'+' if d['direction'] > 0 else '-'}{d['score']:.3f}",
                         _num(d["heldout"]), _p(d["chance_p"]), _e(f["units"][0]["unit"]), _num(f["units"][0]["heldout"]),
                         f'{d["heldout"] - f["units"][0]["heldout"]:+.3f}', verdict])
    if not rows:
        return ""
    head = ["feature", "best dictionary feature", "score", "confirmed", "chance p", "best unit", "confirmed",
            "feature - unit", "verdict"]
    return ("<h2>Dictionary features</h2><p>Each dictionary's features (charlstm dictionary) ranked like the units on "
            "the ranking part, the best confirmed on the other part and held against the same shifted copies. "
            "There is no learning control for a dictionary: it was fitted to this model's states.</p>"
            + _table(head, rows, left=2))


def _feature(f: Mapping[str, Any], snippet: Mapping[str, Any] | None, images: Mapping[str, bytes],
             ablated: int) -> str:
    name = f["feature"]
    out = [f'<h3 id="f-{_e(name)}">{_e(name)}</h3>',
           f'<p>{_e(f["description"])}. <span class="muted">{_e(f["why"])}; {f["kind"]}'
           + (f'; scored inside <code>{_e(f["span"])}</code>' if f["span"] else "")
           + f'; {f["rows"]["selection"]:,} characters to rank on ({f["rows"]["on_selection"]:,} non-zero), '
           f'{f["rows"]["confirmation"]:,} to confirm on ({f["rows"]["on_confirmation"]:,} non-zero)</span></p>']
    metric = "r" if f["kind"] == "continuous" else "AUROC"
    out.append(_table(["unit", f"{metric} (ranking)", "score", f"{metric} (confirmation)", "confirmed", "p", "holds up"],
                      [[_e(u["unit"]), f"{u['raw']:+.3f}" if metric == "r" else f"{u['raw']:.3f}", _num(u["score"]),
                        f"{u['heldout_raw']:+.3f}" if metric == "r" else f"{u['heldout_raw']:.3f}", _num(u["heldout"]),
                        _p(u["heldout_p"]), "yes" if u["holds_up"] else '<span class="not">no</span>']
                       for u in f["units"]]))
    c = f["chance"]
    out.append(f'<p>Chance: the best unit against the best of every unit on {c["controls"]} circularly shifted copies of '
               f'the feature: p = {_p(c["p"])}, better than {c["beaten"]:.0%} of them (their median {c["null_median"]:.3f}, '
               f'99th percentile {c["null_99"]:.3f}, best {c["null_max"]:.3f}).</p>')
    if f["untrained"]:
        ut = ", ".join(f'{_e(u["unit"])} {u["heldout"]:.3f}' for u in f["untrained"])
        out.append(f'<p>Learning: the best unit of each untrained model of the same shape, confirmed the same way: {ut}. '
                   f'Learned: <b>{"yes" if f["learned"] else "no"}</b> (the trained unit must leave at most half the '
                   f'error, 1 - score, of the best untrained one).</p>')
    if f["probe"]:
        p = f["probe"]
        out.append(f'<p>Probe (L1, at most 5 units, trained on the ranking part): {p["metric"]} {p["feature"]:.3f} on the '
                   f'feature, {p["control"]:.3f} on a control task (a random label per character type; Hewitt &amp; '
                   f'Liang 2019): selectivity {p["selectivity"]:+.3f}'
                   + (f'; held-out AUROC {p["auroc"]["feature"]:.3f} against {p["auroc"]["control"]:.3f}, '
                      f'selectivity {p["auroc"]["selectivity"]:+.3f}' if p.get("auroc") else "")
                   + '. Units: '
                   + ", ".join(f'{_e(u["unit"])} ({u["weight"]:+.2f})' for u in p["units"]) + "</p>")
    if f["ablations"]:
        rows = [[_e(a["unit"]), _e(a["mode"]) + (f' ({a["value"]:+.3f})' if a["mode"] == "mean" else "")]
                + [(f'{a["effects"][g]["before"]:.3f} &rarr; {a["effects"][g]["after"]:.3f} ({a["effects"][g]["change"]:+.3f})'
                    if g in a["effects"] else "-") for g in ("active", "inactive", "key", "all")] for a in f["ablations"]]
        out.append(f'<p>Ablation: bits per character with the unit forced at every step, on the first {ablated:,} '
                   f'characters (key predictions: {_e(f["key_predictions"])}).</p>' + _table(["unit", "set to", "active", "inactive", "key", "all"], rows, 2))
    g = f.get("gates")
    if g:
        kinds = list((g.get("moves") or g.get("holds") or {}).keys())
        rows = [["feature moves"] + [_num((g["moves"] or {}).get(k)) for k in kinds],
                ["feature holds"] + [_num((g["holds"] or {}).get(k)) for k in kinds]]
        rows += [[f"reads {_e(repr(s))}"] + [_num(v.get(k)) for k in kinds] for s, v in (g.get("by_char") or {}).items()]
        out.append(f'<p>Gates of the best state unit {_e(g["unit"])} (mean gate value; 0 closed, 1 open):</p>'
                   + _table(["where"] + kinds, rows))
    if snippet is not None:
        out.append(f'<p class="muted">{_e(snippet["unit"])} and the feature over characters {snippet["start"]:,}.. '
                   f'(red negative, blue positive; gates: red closed, blue open) '
                   f'<button class="open" data-unit="{_e(snippet["unit"])}">open in the viewer</button></p>')
        out.append(unit_rows_html(snippet["chars"], snippet["rows"]))
    out.append(_img(images, f"feature:{name}", f"{f['units'][0]['unit']} over text"))
    return "\n".join(out)


def _saturation(data: Mapping[str, Any], images: Mapping[str, bytes]) -> str:
    s = data["gate_saturation"]
    rows = []
    for layer, gates in s["layers"].items():
        for g, v in gates.items():
            rows.append([layer, _e(g), _num(v["left_mean"]), _num(v["right_mean"]), v["mostly_left"], v["mostly_right"],
                         v["never"], v["units"]])
    if not rows:
        return "<p>This cell has no gates.</p>"
    return (f'<p>Over {s["characters"]:,} characters: the mean fraction of time each gate is left-saturated (&lt; 0.1) '
            'and right-saturated (&gt; 0.9), and how many units are so more than half the time (Karpathy, Johnson '
            '&amp; Fei-Fei 2015, figure 3).</p>'
            + _table(["layer", "gate", "left", "right", "mostly left", "mostly right", "never", "units"], rows, 2)
            + _img(images, "gates", "gate saturation"))


def _errors(data: Mapping[str, Any], images: Mapping[str, bytes]) -> str:
    e = data["errors"]
    if e is None:
        return "<p>Skipped: " + _e("; ".join(n for n in data["notes"] if "n-gram" in n) or "no training text") + "</p>"
    orders = _table(["model", "bpc"], [["LSTM", _num(e["lstm_bpc"])]] + [[f'{o["n"]}-gram', _num(o["bpc"])]
                                                                            for o in e["orders"]])
    n = e["best_order"]
    rows = [[_e(g["what"]), f'{g["count"]:,}', _num(g["lstm"]), _num(g["ngram"]), _num(g["diff"], "+.3f"),
             f'{g["lstm_better"]:.0%}'] for g in e["groups"]]
    return (f'<p>n-gram models ({_e(e["smoothing"])}) fitted on {e["train_characters"]:,} characters of the training '
            f'split, scored on this text; the best is the {n}-gram. Each group of predictions is named by the '
            'character predicted, the region it is read in, or, for closing brackets, how far back the bracket '
            'opened.</p>' + orders
            + _table(["predictions of", "count", "LSTM bpc", f"{n}-gram bpc", "LSTM - n-gram", "LSTM better"], rows)
            + _img(images, "errors", "LSTM against n-gram"))


def render_atlas_page(data: Mapping[str, Any], snippets: Sequence[Mapping[str, Any]], images: Mapping[str, bytes],
                      viewer: Mapping[str, Any]) -> str:
    """The report page as a string. data: the atlas JSON (Atlas.to_json); snippets: per feature
    {"feature", "unit", "start", "chars": [symbols], "rows": [(label, values, kind)]}; images:
    "feature:NAME", "gates", "errors" -> PNG bytes; viewer: the viewer's data (viz.html.build_data)."""
    m = data["model"]
    title = f"charlstm atlas: {data['run']}"
    st = data["settings"]
    by_name = {s["feature"]: s for s in snippets}
    body = [f"<h1>{_e(title)}</h1>",
            f'<p>{_e(m["cell"])} {m["layers"]}x{m["hidden"]} ({m["parameters"]:,} parameters, {m["units"]:,} units: every '
            f'layer\'s h, c and gates) on {data["characters"]:,} characters of {_e(data["source"])}. Units are ranked on '
            f'{st["blocks"]} alternate blocks of the text and confirmed on the others; a unit holds up when it keeps '
            f'{st["keep"]:.0%} of its distance from chance there and beats its own shifted controls (p &le; {st["p_max"]}); '
            f'a feature is <span class="found">found</span> when its best unit holds up, beats {st["controls"]} shifted '
            f'copies of the feature (p &le; {st["p_max"]}) and the best units of {st["untrained"]} untrained models.</p>',
            "<h2>Summary</h2>", _summary(data),
            '<p class="muted">score: |r| (continuous) or max(AUROC, 1 - AUROC) (binary) on the ranking part, sign = '
            'direction; confirmed: the same unit on the other part; ablation: bits per character change with the best '
            'unit set to 0, where the feature is active / inactive / on its key predictions.</p>']
    body.append(_dictionaries(data))
    if data["skipped"]:
        body.append("<p>Not scored: " + "; ".join(f'{_e(s["feature"])} ({_e(s["why"])} on this text)'
                                                  for s in data["skipped"]) + ".</p>")
    body.append("<h2>Features</h2>")
    body += [_feature(f, by_name.get(f["feature"]), images, st["ablated_characters"]) for f in data["features"]]
    body += ["<h2>Gate saturation</h2>", _saturation(data, images), "<h2>Where the LSTM beats the n-grams</h2>",
             _errors(data, images)]
    if data["notes"]:
        body.append("<p class=\"muted\">" + "<br>".join(_e(n) for n in data["notes"]) + "</p>")
    body.append('<p class="muted">seconds: ' + _e(", ".join(f"{k} {v}" for k, v in data["seconds"].items())) + "</p>")
    template = resources.files("charlstm.viz").joinpath("viewer.html").read_text(encoding="utf-8")
    template = template.replace("{{TITLE}}", "charlstm atlas: trace viewer")
    body.append('<div id="viewer-box" hidden><div id="viewer-bar"><b>trace viewer</b> <span id="viewer-unit"></span>'
                '<button id="viewer-close">close</button></div><iframe id="viewer-frame" title="trace viewer"></iframe></div>')
    body.append(f'<script type="application/json" id="viewer-template">{_json_for_script(template)}</script>')
    body.append(f'<script type="application/json" id="viewer-data">{_json_for_script(dict(viewer))}</script>')
    body.append(f"<script>{_JS}</script>")
    return (f'<!doctype html>\n<html lang="en" data-ready="0" data-errors="0"><head><meta charset="utf-8">'
            f'<link rel="icon" href="data:,"><title>{_e(title)}</title><style>{_CSS}</style></head><body>\n'
            + "\n".join(body) + "\n</body></html>\n")
