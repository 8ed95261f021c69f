"""Reports of neuron experiments: the colour map, coloured-text HTML and PNG, unit plots, and a
Report that writes the same content as Markdown (report.md) and HTML (report.html).

The colour map is the viewer's and the terminal's (charlstm.viz.colors), the one the source's
pictures use: each character's background is one unit's value as the model reads it, red for
negative, blue for positive, pale near zero; tanh outputs (h, g) as they are, gates centred at 0.5
(red closed, blue open), cell states and other unbounded values (feature values) scaled by their
largest |value|. Matplotlib is imported only when a picture is drawn (Agg backend, no
display needed); it is an optional dependency (`pip install charlstm[plots]`), and without it the
reports say that the pictures were skipped.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from charlstm.viz.colors import normalise
from charlstm.viz.colors import rgb as _rgb255
from charlstm.viz.colors import text_rgb

#: A row of coloured characters: (label, values [T], kind). kind picks the scaling (see above):
#: "h", "c", "i", "f", "g", "o", ...; "c" (scaled by the largest |value|) suits any unbounded value.
Row = tuple[str, np.ndarray, str]
#: The kind for values shown as they are (clipped to -1..1): 0/1 features, tanh outputs.
VALUE = "value"

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
pre, code { background: #f6f6f6; }
pre { padding: 0.6em; overflow-x: auto; }
.row { margin: 0.3em 0 0.9em; }
.label { font-size: 0.85em; color: #555; }
.chars { font-family: ui-monospace, monospace; white-space: pre-wrap; line-height: 1.6; word-break: break-all; }
.chars span { padding: 0.05em 0; }
.pass { color: #1a7f37; font-weight: bold; }
.fail { color: #cf222e; font-weight: bold; }
img { max-width: 100%; border: 1px solid #ddd; }
"""


def kind_of(unit: str) -> str:
    """The kind of a unit spec or trace key: "layer1.c:37" -> "c", "layer0.i" -> "i"."""
    return unit.split(":")[0].rsplit(".", 1)[-1]


def colours(values: np.ndarray, kind: str) -> list[tuple[int, int, int]]:
    """One (r, g, b) in 0..255 per value, by the viewer's colour map for this kind."""
    return [_rgb255(float(x)) for x in normalise(np.asarray(values, dtype=np.float64), kind)]


def _shown(ch: str) -> str:
    """How a symbol is drawn: <eot> as a pilcrow (a glyph every font has), newlines kept, tabs visible."""
    return {"<eot>": "\u00b6", "<unk>": "\ufffd", "\t": "\u2192   "}.get(ch, ch)


def unit_rows_html(chars: Sequence[str], rows: Sequence[Row]) -> str:
    """HTML for several units over the same characters: per row (label, values [T], kind) a label
    and the characters coloured by the values; the exact value of each character in its tooltip."""
    out = []
    for label, values, kind in rows:
        v = np.asarray(values, dtype=np.float64)
        spans = "".join(f'<span style="background:rgb{col}" title="{x:+.3f}">{html.escape(_shown(c))}</span>'
                        for c, x, col in zip(chars, v, colours(v, kind)))
        out.append(f'<div class="row"><div class="label">{html.escape(label)}</div><div class="chars">{spans}</div></div>')
    return "\n".join(out)


def page(title: str, body: str) -> str:
    """A complete, self-contained HTML page."""
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n")


# ----------------------------------------------------------------------------------------------
# Pictures (matplotlib)


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def text_png(path: str | Path, lines: Sequence[tuple[str, Sequence[str], np.ndarray, str]],
             title: str | None = None, dpi: int = 100) -> Path | None:
    """Draw lines of coloured characters into a small PNG: per line (label, chars, values, kind),
    coloured by the viewer's map. Cell states (kind "c") share one scale over the whole picture, so
    lines can be compared. Returns the path, or None when matplotlib is missing."""
    plt = _plt()
    if plt is None:
        return None
    c_max = max([float(np.abs(np.asarray(v)).max()) for _, _, v, k in lines if k == "c"] or [0.0])
    label_w = max((len(lab) for lab, _, _, _ in lines), default=0)
    # columns: the longest line, or more when the title (about 0.55 columns a character) is longer
    width = max(max(len(c) for _, c, _, _ in lines), int(len(title or "") * 0.55 - label_w * 0.6) + 1)
    cw, ch = 0.16, 0.30  # inches per character cell
    fig = plt.figure(figsize=((width + label_w * 0.6 + 1) * cw, (len(lines) + (0.9 if title else 0.3)) * ch), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(-label_w * 0.6 - 0.5, width + 0.5)
    ax.set_ylim(len(lines) + (0.7 if title else 0.1), -0.2)
    ax.axis("off")
    if title:
        ax.text(-label_w * 0.6 - 0.3, -0.05, title, fontsize=8, va="top", ha="left")
    for row, (label, chars, values, kind) in enumerate(lines):
        y = row + (0.6 if title else 0.05)
        ax.text(-0.4, y + 0.45, label, fontsize=7, ha="right", va="center", color="#555")
        v = np.asarray(values, dtype=np.float64)
        if kind == "c" and c_max > 0:
            v = np.append(v, c_max)  # the shared scale: normalise() divides by the largest |value|
        for k, (c, x) in enumerate(zip(chars, normalise(v, kind))):
            ax.add_patch(plt.Rectangle((k, y), 1, 0.9, color=tuple(t / 255 for t in _rgb255(float(x))), linewidth=0))
            ax.text(k + 0.5, y + 0.45, _shown(c)[:1], fontsize=8, ha="center", va="center", family="monospace",
                    color=tuple(t / 255 for t in text_rgb(float(x))))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def wrapped_png(path: str | Path, chars: Sequence[str], values: np.ndarray, kind: str, title: str | None = None,
                max_lines: int = 24, max_cols: int = 80, dpi: int = 100) -> Path | None:
    """Draw running text (code, prose) coloured by one unit, laid out as it reads: a new row at each
    newline (whose own cell, at the end of its line, shows its value) and every max_cols characters;
    at most max_lines rows. Returns the path, or None when matplotlib is missing."""
    plt = _plt()
    if plt is None:
        return None
    xs = normalise(np.asarray(values, dtype=np.float64), kind)
    rows: list[list[tuple[str, float]]] = [[]]
    for c, x in zip(chars, xs):
        if len(rows[-1]) >= max_cols:
            rows.append([])
        rows[-1].append((" " if c == "\n" else c, float(x)))
        if c == "\n" or c == "<eot>":
            rows.append([])
        if len(rows) > max_lines:
            break
    rows = [r for r in rows[:max_lines]]
    width = max((len(r) for r in rows), default=1)
    cw, ch = 0.08, 0.19  # inches per character cell: about the advance of a 7 pt monospace character
    top = 0.9 if title else 0.2
    fig = plt.figure(figsize=((width + 1) * cw, (len(rows) + top) * ch), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(-0.5, width + 0.5)
    ax.set_ylim(len(rows) + top - 0.1, -0.1)
    ax.axis("off")
    if title:
        ax.text(-0.3, 0.0, title, fontsize=7, va="top", ha="left")
    for i, row in enumerate(rows):
        y = i + top
        for k, (c, x) in enumerate(row):
            ax.add_patch(plt.Rectangle((k, y), 1, 1, color=tuple(t / 255 for t in _rgb255(x)), linewidth=0))
            ax.text(k + 0.5, y + 0.5, _shown(c)[:1], fontsize=7, ha="center", va="center", family="monospace",
                    color=tuple(t / 255 for t in text_rgb(x)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def series_png(path: str | Path, chars: Sequence[str], series: Sequence[tuple[str, np.ndarray]],
               title: str | None = None, dpi: int = 100) -> Path | None:
    """Line plot of a few unit values over one sequence, the characters as x tick labels (e.g. a
    unit's h and c over ``aaaaaXbbbbb``). Returns the path, or None when matplotlib is missing."""
    plt = _plt()
    if plt is None:
        return None
    n = len(chars)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.22 * n + 1.2), 2.4), dpi=dpi)
    styles = ["-o", "-s", "--^", ":v", "-.d"]
    for k, (label, values) in enumerate(series):
        ax.plot(np.arange(n), np.asarray(values, dtype=np.float64), styles[k % len(styles)], ms=3, lw=1.3, label=label)
    ax.axhline(0, color="#999", lw=0.6)
    ax.set_xticks(np.arange(n))
    ax.set_xticklabels([_shown(c) for c in chars], fontsize=7, family="monospace")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlim(-0.5, n - 0.5)
    ax.legend(fontsize=7, loc="best", frameon=False)
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------
# Reports


@dataclass
class Check:
    """One acceptance criterion: what, the measured value, the threshold and whether it passed."""

    what: str
    value: float
    threshold: str
    passed: bool

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.what}: {self.value:.4g} ({self.threshold})"


@dataclass
class Report:
    """A report built in order from headings, paragraphs, tables, code, pictures and coloured text;
    `write` renders it as Markdown and HTML in one folder (pictures are files beside them)."""

    title: str
    folder: Path
    md: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.md.append(f"{'#' * level} {text}\n")
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def para(self, text: str) -> None:
        """A paragraph; `code` spans in backticks are kept in both renderings."""
        self.md.append(text + "\n")
        parts = text.split("`")
        rendered = "".join(f"<code>{html.escape(p)}</code>" if k % 2 else html.escape(p) for k, p in enumerate(parts))
        self.html.append(f"<p>{rendered}</p>")

    def code(self, text: str) -> None:
        self.md.append(f"```\n{text}\n```\n")
        self.html.append(f"<pre>{html.escape(text)}</pre>")

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        cells = [[str(c) for c in r] for r in rows]
        self.md.append("| " + " | ".join(header) + " |\n|" + "|".join("---" for _ in header) + "|\n"
                       + "".join("| " + " | ".join(r) + " |\n" for r in cells))
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in cells)
        self.html.append(f"<table><tr>{head}</tr>{body}</table>")

    def image(self, path: Path | None, caption: str) -> None:
        """A picture (a file in the report folder); a note instead when it could not be drawn."""
        if path is None:
            self.para(f"({caption}: picture skipped, matplotlib is not installed)")
            return
        name = Path(path).name
        self.md.append(f"![{caption}]({name})\n")
        self.html.append(f'<figure><img src="{html.escape(name)}" alt="{html.escape(caption)}">'
                         f"<figcaption class=\"label\">{html.escape(caption)}</figcaption></figure>")

    def coloured(self, chars: Sequence[str], rows: Sequence[Row]) -> None:
        """Coloured characters: in the HTML as spans; in Markdown the PNG next to it covers it."""
        self.html.append(unit_rows_html(chars, rows))

    def checks(self, checks: Sequence[Check]) -> None:
        self.md.append("".join(f"- **{'PASS' if c.passed else 'FAIL'}** {c.what}: {c.value:.4g} ({c.threshold})\n"
                               for c in checks))
        self.html.append("<ul>" + "".join(
            f"<li><span class=\"{'pass' if c.passed else 'fail'}\">{'PASS' if c.passed else 'FAIL'}</span> "
            f"{html.escape(c.what)}: {c.value:.4g} ({html.escape(c.threshold)})</li>" for c in checks) + "</ul>")

    def write(self) -> tuple[Path, Path]:
        """Write report.md and report.html into the folder; returns their paths."""
        self.folder.mkdir(parents=True, exist_ok=True)
        md_path, html_path = self.folder / "report.md", self.folder / "report.html"
        md_path.write_text(f"# {self.title}\n\n" + "\n".join(self.md), encoding="utf-8")
        html_path.write_text(page(self.title, f"<h1>{html.escape(self.title)}</h1>\n" + "\n".join(self.html)),
                             encoding="utf-8")
        return md_path, html_path
