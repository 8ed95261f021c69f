"""Reports of neuron experiments: a Report that writes the same content as Markdown (report.md) and
HTML (report.html), and the Check each experiment passes or fails.

The pictures are charlstm.viz's (coloured text as HTML spans from viz.colors, PNGs from viz.plots,
with the viewer's colour map: red negative, blue positive, pale near zero). matplotlib is optional
(`pip install charlstm[plots]`); without it the reports say that the pictures were skipped.
Owns: the report's structure. Does not know: models or experiments.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from charlstm.viz.colors import Row, unit_rows_html

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


def page(title: str, body: str) -> str:
    """A complete, self-contained HTML page."""
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n")


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
