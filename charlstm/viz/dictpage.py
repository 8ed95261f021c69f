"""The dictionary page: one self-contained HTML file showing every feature of a dictionary (no
network). The data (charlstm.dictionary.dashboard.build) sits in a
`<script type="application/json">` block with `<`, `>`, `&` written as \\u003c, \\u003e, \\u0026,
and the page inserts all text with textContent, never innerHTML, so corpus text stays text.

The page: a table of the features (sortable by number, frequency, largest activation or label
score; searchable by label, #number or text in their contexts; "labelled only"), and for the
feature clicked its best library matches, activation histogram, the next characters it promotes and
suppresses, and its top-activating contexts coloured by its activation (the viewer's colour map).

Test hooks: the location hash `#q=TEXT&sort=freq&labelled=1&open=12` sets the controls and opens a
feature (`open=first`: the first one listed); <html> carries data-ready="1" when drawn, data-rows
(features listed), data-first (the first listed), data-open and data-errors (uncaught errors and
console.error calls).

Owns: the page. Does not know: dictionaries or models; it reads the data dict.
"""
from __future__ import annotations

import html
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

from charlstm.fileio import atomic_write_text
from charlstm.viz.html import _json_for_script


def render_page(data: dict[str, Any]) -> str:
    """The page for the data of charlstm.dictionary.dashboard.build, as a string."""
    template = resources.files("charlstm.viz").joinpath("dictionary.html").read_text(encoding="utf-8")
    fill = {"TITLE": html.escape(str(data.get("title", "dictionary"))), "DATA": _json_for_script(data)}
    return re.sub(r"\{\{(TITLE|DATA)\}\}", lambda m: fill[m.group(1)], template)


def write_page(path: str | os.PathLike, data: dict[str, Any]) -> Path:
    """render_page(data) written atomically; returns the path."""
    path = Path(path)
    atomic_write_text(path, render_page(data))
    return path
