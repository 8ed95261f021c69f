"""HTML for Jupyter: what a Trace, a Generation and a FindResult show as in a notebook (`_repr_html_`).

* a trace: the trace viewer of charlstm.viz.html, whole and self-contained, inside an
  `<iframe srcdoc="...">`: the page is HTML-escaped into the attribute (every `&`, `<`, `>` and
  quote), so nothing in the traced text can leave it, and the frame is sandboxed to scripts only
  (no same-origin access to the notebook). A notebook page holds several, so the limits are
  smaller than the file viewer's: 2,000 characters and 2M values, and the page says when it shows
  fewer than were traced;
* a generation: a table of its samples (the text in `<pre>`, escaped), why each ended, the seed;
* a ranking of units against a feature: the table `charlstm neurons find` prints, as HTML.

Reads the objects' fields (protocols); imports no stage (charlstm.trace, charlstm.sample and
charlstm.neurons import this module lazily, in their `_repr_html_`).
"""
from __future__ import annotations

import html
from typing import Any, Protocol, Sequence

import numpy as np

from charlstm.viz.html import Trace, render_html

#: Characters and values the inline viewer embeds (the file viewer: 20,000 and 16M).
NOTEBOOK_CHARS = 2_000
NOTEBOOK_VALUES = 2_000_000
FRAME_HEIGHT = 520
_STYLE = "font: 13px/1.4 system-ui, sans-serif; border-collapse: collapse;"


def trace_html(trace: Trace, *, max_chars: int = NOTEBOOK_CHARS, max_values: int = NOTEBOOK_VALUES,
               height: int = FRAME_HEIGHT, **kw: Any) -> str:
    """The viewer of a trace in an escaped, sandboxed iframe (keyword arguments: render_html's)."""
    page = render_html(trace, max_chars=max_chars, max_values=max_values, **kw)
    return (f'<iframe srcdoc="{html.escape(page, quote=True)}" sandbox="allow-scripts" '
            f'style="width: 100%; height: {int(height)}px; border: 1px solid #ddd;" '
            f'title="charlstm trace viewer"></iframe>')


class SampleLike(Protocol):
    text: str
    ids: list[int]
    stop_reason: str


def samples_html(samples: Sequence[SampleLike], seed: int | None = None) -> str:
    """A table of generated samples: number, length, why it ended, the text (escaped, as written)."""
    why = {"eot": "<eot>", "stop": "a stop string", "length": "length"}
    rows = "".join(
        f'<tr><td style="vertical-align: top; padding: 2px 8px;">{i + 1}</td>'
        f'<td style="vertical-align: top; padding: 2px 8px; text-align: right;">{len(s.ids):,}</td>'
        f'<td style="vertical-align: top; padding: 2px 8px;">{html.escape(why.get(s.stop_reason, s.stop_reason))}</td>'
        f'<td style="padding: 2px 8px;"><pre style="margin: 0; white-space: pre-wrap;">{html.escape(s.text)}</pre></td></tr>'
        for i, s in enumerate(samples))
    caption = f"seed {seed}" if seed is not None else ""
    return (f'<table style="{_STYLE}"><caption style="text-align: left; color: #666;">{html.escape(caption)}</caption>'
            '<thead><tr><th>sample</th><th>length</th><th>ended by</th><th style="text-align: left;">text</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def ranking_html(result: Any) -> str:
    """The ranking of a charlstm.neurons.FindResult (feature, kind, values, trace, ranking, source,
    truncated) as the table `neurons find` prints: rank, unit, score and r (continuous features) or
    AUROC with the unit's mean where the feature is on and off (binary features)."""
    n = len(result.values)
    binary = result.kind != "continuous"
    how = "AUROC (max of AUROC, 1 - AUROC)" if binary else "|Pearson r|"
    head = ["rank", "unit", "score"] + (["AUROC", "mean on", "mean off"] if binary else ["r"])
    on = np.asarray(result.values) > 0.5
    rows = []
    for k, u in enumerate(result.ranking, 1):
        cells = [str(k), html.escape(u.name), f"{u.score:.3f}"]
        if binary:
            col = result.trace.unit(u.key, u.unit)
            cells += [f"{u.auroc:.3f}", f"{col[on].mean():.3f}", f"{col[~on].mean():.3f}"]
        else:
            cells.append(f"{u.r:+.3f}")
        rows.append("<tr>" + "".join(f'<td style="padding: 1px 8px; text-align: {"left" if j == 1 else "right"};">{c}</td>'
                                     for j, c in enumerate(cells)) + "</tr>")
    caption = (f"feature {result.feature.name} ({result.kind}, ranked by {how}) on {n:,} characters of "
               f"{result.source}" + (" (truncated)" if result.truncated else ""))
    return (f'<table style="{_STYLE}"><caption style="text-align: left; color: #666;">{html.escape(caption)}</caption>'
            "<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")
