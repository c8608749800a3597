"""Shared figure helpers: colour scales, sizes derived from the head grid, thinned ticks, atomic saving.

Figures are plain :class:`matplotlib.figure.Figure` objects (Agg canvas, no pyplot state); every plot function
returns one and saves it when given ``path=``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import Colormap
from matplotlib.figure import Figure

from jola_lens import atomic

FORMATS = ("png", "svg", "pdf")
NOT_EDITED_COLOR = "#d9d9d9"


@dataclass(frozen=True)
class ColorScale:
    """How one head metric is coloured."""

    metric: str
    label: str
    cmap: str
    diverging: bool = False

    def colormap(self) -> Colormap:
        return colormap(self.cmap)

    def limits(self, values: np.ndarray) -> tuple[float, float]:
        """Colour limits spanning the finite ``values`` (symmetric about 0 when diverging), never empty."""
        finite = np.asarray(values, dtype=float)
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            return (-1.0, 1.0) if self.diverging else (0.0, 1.0)
        if self.diverging:
            bound = float(np.abs(finite).max()) or 1e-6
            return -bound, bound
        low, high = float(finite.min()), float(finite.max())
        if high - low < 1e-9:
            pad = max(abs(high) * 0.05, 1e-3)
            return low - pad, high + pad
        return low, high


def colormap(name: str) -> Colormap:
    """A named colormap drawing NaN (layers not edited, undefined values) in light grey."""
    return colormaps[name].with_extremes(bad=NOT_EDITED_COLOR)


COLOR_SCALES = {
    "gate": ColorScale("gate", "gate value g (evaluation)", "viridis"),
    "p_nonzero": ColorScale("p_nonzero", "P(g≠0)", "viridis"),
    "norm": ColorScale("norm", "‖edit vector‖₂", "magma"),
    "change": ColorScale("change", "change in P(g≠0) since init", "RdBu_r", diverging=True),
}


def color_scale(metric: str) -> ColorScale:
    if metric not in COLOR_SCALES:
        raise ValueError(f"unknown colour metric {metric!r}; choose one of {tuple(COLOR_SCALES)}")
    return COLOR_SCALES[metric]


def cell_inches(n_cols: int, n_rows: int, *, max_width: float = 15.0, max_height: float = 36.0) -> float:
    """Side of one heatmap cell in inches for a figure ``n_cols`` x ``n_rows`` cells across all panels."""
    return max(0.05, min(0.25, max_width / max(n_cols, 1), max_height / max(n_rows, 1)))


def tick_step(n: int, cell: float, min_gap: float = 0.18) -> int:
    """Label every k-th index so labels stay ``min_gap`` inches apart (1, 2, 5, 10, ...)."""
    need = max(1, math.ceil(min_gap / cell))
    for step in (1, 2, 5, 10, 20, 50, 100):
        if step >= need:
            return step
    return need


def set_index_ticks(ax: Axes, axis: str, n: int, cell: float) -> None:
    """Integer index ticks 0..n-1 on ``axis`` ('x' or 'y'), thinned for large grids."""
    ticks = np.arange(0, n, tick_step(n, cell))
    (ax.set_xticks if axis == "x" else ax.set_yticks)(ticks)
    ax.tick_params(axis=axis, labelsize=7, length=2)


def new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` (.png, .svg or .pdf, from the suffix) atomically and return the path."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"cannot save a figure as {path.name!r}: use a .png, .svg or .pdf file name")
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
    return path


def finish(fig: Figure, path: str | os.PathLike | None) -> Figure:
    """Save ``fig`` when ``path`` is given; return it."""
    if path is not None:
        save_figure(fig, path)
    return fig


def slug(text: str) -> str:
    """A file-name-safe form of a label ('commonsense/ARC-e' -> 'commonsense-ARC-e')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"
