"""Gate saturation scatter plots (Karpathy, Johnson & Fei-Fei 2015, figure 3): per layer, each gate
unit is a point at (fraction of time left-saturated < 0.1, fraction right-saturated > 0.9).

matplotlib is optional (the `plots` extra); the Figure/Agg canvas API is used directly so nothing
touches pyplot's global backend state.
"""
from __future__ import annotations

import os
from pathlib import Path

from charlstm.errors import CharlstmError

GATE_COLOURS = {"i": "#1b9e77", "f": "#d95f02", "o": "#7570b3", "r": "#e7298a", "z": "#66a61e"}
GATE_NAMES = {"i": "input", "f": "forget", "o": "output", "r": "reset", "z": "update"}


def gate_plot(stats, path: str | os.PathLike, title: str | None = None) -> Path:
    """Write the scatter plot PNG of a charlstm.trace.GateStats to path; returns the path."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise CharlstmError("--gate-plot needs matplotlib: pip install 'charlstm[plots]' (or pip install matplotlib)") from None
    fr = stats.fractions()
    if not fr:
        raise CharlstmError(f"{stats.cell} cells have no gates to plot")
    n = len(fr)
    fig = Figure(figsize=(3.3 * n + 0.6, 3.6), dpi=110)
    FigureCanvasAgg(fig)
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
