"""Layer x head heatmaps of one run (one panel per edit kind) or of many (one row per run, shared colour scale)."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from jola_lens.analysis.figures import ColorScale, cell_inches, color_scale, finish, new_figure, set_index_ticks
from jola_lens.analysis.tables import as_table, grid_shape, selection_note, single_model
from jola_lens.config import EDIT_KINDS

MIN_PANEL = (3.2, 1.6)  # inches (width, height) of one panel, whatever the grid


def plot_head_heatmap(items: object, color: str = "p_nonzero", *, path: str | os.PathLike | None = None) -> Figure:
    """One run's layer x head grid, one panel per edit kind, coloured by ``color`` (gate, p_nonzero, norm,
    change). The rarer case is marked: ● kept heads (gate > 0) where most are closed, × closed ones where most
    are open; titles say plainly when no gate closed."""
    table = as_table(items)
    runs = table["run"].unique()
    if len(runs) != 1:
        raise ValueError(f"plot_head_heatmap shows one run, got {len(runs)}; use plot_head_grid for several")
    return finish(_plot(table, color, f"{runs[0]} — {single_model(table)}"), path)


def plot_head_grid(items: object, color: str = "p_nonzero", *, path: str | os.PathLike | None = None) -> Figure:
    """Layer x head grids of several runs of one base model: one row per run, one column per edit kind,
    one colour scale for all (per edit kind for ``norm``, whose units differ between kinds)."""
    table = as_table(items)
    return finish(_plot(table, color, f"Head selection in {table['run'].nunique()} runs — {single_model(table)}"), path)


def _plot(table: pd.DataFrame, color: str, title: str) -> Figure:
    scale = color_scale(color)
    if table[color].isna().all():
        raise ValueError(f"no values to colour by {color!r}: 'change' needs each run's gate logits before training "
                         "(a run folder with gates/epoch-0000.safetensors)")
    n_layers, n_heads = grid_shape(table)
    runs = list(dict.fromkeys(table["run"]))
    kinds = [kind for kind in EDIT_KINDS if kind in set(table["kind"])]
    cell = cell_inches(len(kinds) * n_layers, len(runs) * n_heads)
    panel = (max(n_layers * cell, MIN_PANEL[0]), max(n_heads * cell, MIN_PANEL[1]))  # tiny grids: wider cells
    width = len(kinds) * (panel[0] + 0.7) + 1.4
    fig = new_figure(width, len(runs) * (panel[1] + 0.9) + 1.2)
    axes = fig.subplots(len(runs), len(kinds), squeeze=False)
    edited = table[table["edited"]]
    mark_kept = {kind: bool(rows["selected"].sum() <= len(rows) / 2) for kind, rows in edited.groupby("kind")}
    for group in (kinds if color == "norm" else [None]):
        columns = [kinds.index(group)] if group else list(range(len(kinds)))
        vmin, vmax = scale.limits(table.loc[table["kind"] == group, color] if group else table[color])
        image = None
        for row, run in enumerate(runs):
            for column in columns:
                rows = table[(table["run"] == run) & (table["kind"] == kinds[column])]
                ax = axes[row, column]
                if rows.empty:
                    ax.set_axis_off()
                    ax.set_title(f"{run} · {kinds[column]}\nno {kinds[column]} edit", fontsize=9)
                    continue
                image = _draw_panel(ax, rows, scale, (vmin, vmax), (n_layers, n_heads), panel,
                                    mark_kept.get(kinds[column], True))
                ax.set_title(f"{run} · {kinds[column]}\n{selection_note(rows)}", fontsize=9)
                ax.set_xlabel("layer" if row == len(runs) - 1 else "", fontsize=8)
                ax.set_ylabel("head" if column == 0 else "", fontsize=8)
        if image is not None:
            label = scale.label if group is None else f"{scale.label} ({group})"
            fig.colorbar(image, ax=axes[:, columns].ravel().tolist(), label=label, shrink=0.9,
                         pad=0.01, aspect=max(10.0, 0.9 * len(runs) * (panel[1] + 0.9) / 0.15))
    fig.suptitle(f"{title}\n{textwrap.fill(_subtitle(table, scale), int(width * 11))}", fontsize=11)
    return fig


def _draw_panel(ax: Axes, rows: pd.DataFrame, scale: ColorScale, limits: tuple[float, float],
                shape: tuple[int, int], panel: tuple[float, float], mark_kept: bool) -> object:
    """One layer x head panel; marks the kept heads (``mark_kept``) or the closed ones with white symbols."""
    n_layers, n_heads = shape
    cell_x, cell_y = panel[0] / n_layers, panel[1] / n_heads
    grid = np.full((n_heads, n_layers), np.nan)
    grid[rows["head"].to_numpy(), rows["layer"].to_numpy()] = rows[scale.metric].to_numpy(dtype=float)
    image = ax.imshow(grid, cmap=scale.colormap(), vmin=limits[0], vmax=limits[1], aspect="auto",
                      interpolation="nearest")
    edited = rows[rows["edited"]]
    kept = edited["selected"]
    size = (min(cell_x, cell_y, 0.3) * 72 * 0.4) ** 2
    if 0 < kept.sum() < len(edited):
        marked, marker = (edited[kept], "o") if mark_kept else (edited[~kept], "X")
        ax.scatter(marked["layer"], marked["head"], s=size, marker=marker, c="white", edgecolors="black",
                   linewidths=0.6)
    set_index_ticks(ax, "x", n_layers, cell_x)
    set_index_ticks(ax, "y", n_heads, cell_y)
    return image


def _subtitle(table: pd.DataFrame, scale: ColorScale) -> str:
    """Says what the colour shows, what the dots mean, and plainly when no gate closed."""
    panels = [rows for _, rows in table.groupby(["run", "kind"])]
    not_edited = "; grey = layer not edited" if not table["edited"].all() else ""
    if all(rows["selected"].sum() == rows["edited"].sum() for rows in panels):
        counts = {int(rows["edited"].sum()) for rows in panels}
        heads = f"all {counts.pop()} heads" if len(counts) == 1 else "all heads"
        where = "" if len(panels) == 1 else " in every panel"
        return f"no head switched off: {heads} open{where} — colour shows {scale.label}{not_edited}"
    return (f"colour: {scale.label}; per edit kind, the rarer case over all panels is marked: ● = kept (gate > 0) "
            f"where most heads of that kind are closed, × = closed (gate = 0) where most are open{not_edited}")
