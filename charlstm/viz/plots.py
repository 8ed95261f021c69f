"""PNG pictures: gate saturation scatter plots, text coloured by a unit, and unit values over a sequence.

* gate_plot: Karpathy, Johnson & Fei-Fei (2015), figure 3: per layer, each gate unit is a point at
  (fraction of time left-saturated < 0.1, fraction right-saturated > 0.9);
* text_png / wrapped_png: characters on backgrounds coloured by a unit, with the viewer's colour map
  (charlstm.viz.colors), as short lines or as running text laid out as it reads;
* series_png: a few units' values as lines over one sequence;
* bars_png: grouped horizontal bars (the LSTM against n-gram baselines, group by group).

matplotlib is optional (the `plots` extra); the Figure/Agg canvas API is used directly so nothing
touches pyplot's global backend state. Without matplotlib the coloured-text functions return None
(callers say the picture was skipped) and gate_plot raises a CharlstmError naming the extra.
Owns: these pictures. Does not know: models or traces (it is given arrays).
"""
from __future__ import annotations

import os
from pathlib import Path

from typing import Sequence

import numpy as np

from charlstm.errors import CharlstmError
from charlstm.viz.colors import normalise, rgb, shown, text_rgb

GATE_COLOURS = {"i": "#1b9e77", "f": "#d95f02", "o": "#7570b3", "r": "#e7298a", "z": "#66a61e"}
GATE_NAMES = {"i": "input", "f": "forget", "o": "output", "r": "reset", "z": "update"}


def gate_plot(stats, path: str | os.PathLike, title: str | None = None) -> Path:
    """Write the scatter plot PNG of a charlstm.trace.GateStats to path; returns the path."""
    mpl = _matplotlib()
    if mpl is None:
        raise CharlstmError("--gate-plot needs matplotlib: pip install 'charlstm[plots]' (or pip install matplotlib)")
    Figure, _ = mpl
    fr = stats.fractions()
    if not fr:
        raise CharlstmError(f"{stats.cell} cells have no gates to plot")
    n = len(fr)
    fig = Figure(figsize=(3.3 * n + 0.6, 3.6), dpi=110)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (layer, gates) in zip(axes, fr.items()):
        ax.plot([0, 1], [1, 0], color="#bbbbbb", lw=0.8, zorder=0)  # x + y = 1: always saturated
        for g, (lo, hi) in gates.items():
            ax.scatter(lo, hi, s=9, alpha=0.6, color=GATE_COLOURS.get(g, "k"), label=f"{GATE_NAMES.get(g, g)} ({g})",
                       edgecolors="none")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_title(f"layer {layer}", fontsize=10)
        ax.set_xlabel("fraction left-saturated (< 0.1)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("fraction right-saturated (> 0.9)", fontsize=8)
    axes[-1].legend(fontsize=7, loc="upper right", markerscale=1.5)
    fig.suptitle(title or f"gate saturation over {stats.n} characters", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str | Path, dpi: float | None = None) -> Path:
    """Write a figure as PNG at path, making its folder; -> the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, **({} if dpi is None else {"dpi": dpi}))
    return path


def _matplotlib():
    """(Figure, Rectangle) from matplotlib's object API, or None when it is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
    except ImportError:
        return None

    def figure(*args, **kw):
        fig = Figure(*args, **kw)
        FigureCanvasAgg(fig)
        return fig

    return figure, Rectangle


def text_png(path: str | Path, lines: Sequence[tuple[str, Sequence[str], np.ndarray, str]],
             title: str | None = None, dpi: int = 100) -> Path | None:
    """Draw lines of coloured characters into a small PNG: per line (label, chars, values, kind),
    coloured by the viewer's map. Cell states (kind "c") share one scale over the whole picture, so
    lines can be compared. Returns the path, or None when matplotlib is missing."""
    mpl = _matplotlib()
    if mpl is None:
        return None
    Figure, Rectangle = mpl
    c_max = max([float(np.abs(np.asarray(v)).max()) for _, _, v, k in lines if k == "c"] or [0.0])
    label_w = max((len(lab) for lab, _, _, _ in lines), default=0)
    # columns: the longest line, or more when the title (about 0.55 columns a character) is longer
    width = max(max(len(c) for _, c, _, _ in lines), int(len(title or "") * 0.55 - label_w * 0.6) + 1)
    cw, ch = 0.16, 0.30  # inches per character cell
    fig = Figure(figsize=((width + label_w * 0.6 + 1) * cw, (len(lines) + (0.9 if title else 0.3)) * ch), dpi=dpi)
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
            ax.add_patch(Rectangle((k, y), 1, 0.9, color=tuple(t / 255 for t in rgb(float(x))), linewidth=0))
            ax.text(k + 0.5, y + 0.45, shown(c)[:1], fontsize=8, ha="center", va="center", family="monospace",
                    color=tuple(t / 255 for t in text_rgb(float(x))))
    return _save(fig, path, dpi)


def wrapped_png(path: str | Path, chars: Sequence[str], values: np.ndarray, kind: str, title: str | None = None,
                max_lines: int = 24, max_cols: int = 80, dpi: int = 100) -> Path | None:
    """Draw running text (code, prose) coloured by one unit, laid out as it reads: a new row at each
    newline (whose own cell, at the end of its line, shows its value) and every max_cols characters;
    at most max_lines rows. Returns the path, or None when matplotlib is missing."""
    mpl = _matplotlib()
    if mpl is None:
        return None
    Figure, Rectangle = mpl
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
    fig = Figure(figsize=((width + 1) * cw, (len(rows) + top) * ch), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(-0.5, width + 0.5)
    ax.set_ylim(len(rows) + top - 0.1, -0.1)
    ax.axis("off")
    if title:
        ax.text(-0.3, 0.0, title, fontsize=7, va="top", ha="left")
    for i, row in enumerate(rows):
        y = i + top
        for k, (c, x) in enumerate(row):
            ax.add_patch(Rectangle((k, y), 1, 1, color=tuple(t / 255 for t in rgb(x)), linewidth=0))
            ax.text(k + 0.5, y + 0.5, shown(c)[:1], fontsize=7, ha="center", va="center", family="monospace",
                    color=tuple(t / 255 for t in text_rgb(x)))
    return _save(fig, path, dpi)


def series_png(path: str | Path, chars: Sequence[str], series: Sequence[tuple[str, np.ndarray]],
               title: str | None = None, dpi: int = 100) -> Path | None:
    """Line plot of a few unit values over one sequence, the characters as x tick labels (e.g. a
    unit's h and c over ``aaaaaXbbbbb``). Returns the path, or None when matplotlib is missing."""
    mpl = _matplotlib()
    if mpl is None:
        return None
    Figure, Rectangle = mpl
    n = len(chars)
    fig = Figure(figsize=(max(4.0, 0.22 * n + 1.2), 2.4), dpi=dpi)
    ax = fig.subplots()
    styles = ["-o", "-s", "--^", ":v", "-.d"]
    for k, (label, values) in enumerate(series):
        ax.plot(np.arange(n), np.asarray(values, dtype=np.float64), styles[k % len(styles)], ms=3, lw=1.3, label=label)
    ax.axhline(0, color="#999", lw=0.6)
    ax.set_xticks(np.arange(n))
    ax.set_xticklabels([shown(c) for c in chars], fontsize=7, family="monospace")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlim(-0.5, n - 0.5)
    ax.legend(fontsize=7, loc="best", frameon=False)
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return _save(fig, path, dpi)


def bars_png(path: str | Path, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]],
             title: str | None = None, xlabel: str = "", dpi: int = 100) -> Path | None:
    """Horizontal grouped bars: per label (a row, top to bottom) one bar per series (name, values
    [len(labels)]), e.g. the bits per character of the LSTM and an n-gram model per group of
    predictions. Returns the path, or None when matplotlib is missing."""
    mpl = _matplotlib()
    if mpl is None:
        return None
    Figure, _ = mpl
    n, k = len(labels), max(len(series), 1)
    fig = Figure(figsize=(6.4, 0.9 + 0.28 * n * max(1.0, k / 2)), dpi=dpi)
    ax = fig.subplots()
    width = 0.8 / k
    colours = ["#0571b0", "#ca0020", "#7570b3", "#66a61e"]
    for j, (name, values) in enumerate(series):
        y = np.arange(n) + (j - (k - 1) / 2) * width
        ax.barh(y, np.asarray(values, dtype=np.float64), height=width, label=name, color=colours[j % len(colours)])
    ax.set_yticks(np.arange(n))
    ax.set_yticklabels(list(labels), fontsize=7)
    ax.invert_yaxis()
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.legend(fontsize=7, loc="lower right", frameon=False)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path, dpi)
