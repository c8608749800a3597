"""Consensus over seeds: per seed group, edit kind and head, how often the head was kept and how sure its gate was.

A head counts as selected more often than chance when a one-sided binomial test rejects "each of the group's n
runs keeps it with probability r", r the group's mean share of heads kept (per edit kind), after the
Benjamini-Hochberg correction over that kind's edited heads (false discovery rate :data:`FDR`). With few seeds
nothing can pass: the smallest p-value possible is r^n (0.25 for two seeds keeping half the heads).
"""

from __future__ import annotations

import logging
import os
import textwrap

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy.stats import binom, false_discovery_control
from torch import Tensor

from jola_lens.analysis.figures import cell_inches, colormap, finish, new_figure, set_index_ticks
from jola_lens.analysis.groups import grouped_table, table_groups
from jola_lens.analysis.tables import grid_shape, single_model
from jola_lens.config import EDIT_KINDS

logger = logging.getLogger(__name__)

FDR = 0.05
CONSENSUS_COLUMNS = ("group", "task", "model", "kind", "layer", "head", "edited", "n_runs", "n_selected",
                     "frequency", "mean_p_nonzero", "sd_p_nonzero", "mean_norm", "chance_rate", "p_value",
                     "p_adjusted", "above_chance")
CHANCE_TEXT = ("● = kept by more seeds than chance (one-sided binomial at the group's mean share kept, "
               f"Benjamini–Hochberg FDR {FDR:.0%})")


def consensus_table(runs: object, fdr: float = FDR) -> pd.DataFrame:
    """One row per (seed group, edit kind, layer, head): columns :data:`CONSENSUS_COLUMNS`.

    ``frequency`` = share of the group's runs that kept the head; ``mean_p_nonzero`` / ``sd_p_nonzero`` (sample
    sd, NaN for one run) / ``mean_norm`` over the runs; ``chance_rate`` the group's mean share of heads kept;
    ``p_value`` P(X >= n_selected), X ~ Binomial(n_runs, chance_rate); ``p_adjusted`` Benjamini-Hochberg over the
    kind's edited heads; ``above_chance`` where it is below ``fdr``. Layers not edited: NaN, never above chance.
    ``runs``: run folders, edits, sources, or a (grouped) head table, as for
    :func:`~jola_lens.analysis.stability.stability_report`.
    """
    table = grouped_table(runs)
    frames = []
    for name, members in table_groups(table).items():
        rows = table[table["group"] == name]
        for kind in (k for k in EDIT_KINDS if k in set(rows["kind"])):
            heads = rows[rows["kind"] == kind].groupby(["layer", "head"], sort=True)
            frame = heads.agg(edited=("edited", "all"), n_selected=("selected", "sum"),
                              mean_p_nonzero=("p_nonzero", "mean"), sd_p_nonzero=("p_nonzero", "std"),
                              mean_norm=("norm", "mean")).reset_index()
            n = len(members)
            edited = frame["edited"].to_numpy()
            rate = float(frame.loc[edited, "n_selected"].sum() / (n * edited.sum())) if edited.any() else np.nan
            p = np.where(edited, binom.sf(frame["n_selected"] - 1, n, rate), np.nan)
            adjusted = np.full(len(frame), np.nan)
            if edited.any():
                adjusted[edited] = false_discovery_control(p[edited], method="bh")
            frame = frame.assign(group=name, task=rows["task"].iloc[0], model=rows["model"].iloc[0], kind=kind,
                                 n_runs=n, frequency=np.where(edited, frame["n_selected"] / n, np.nan),
                                 chance_rate=rate, p_value=p, p_adjusted=adjusted,
                                 above_chance=edited & (np.nan_to_num(adjusted, nan=1.0) < fdr))
            for column in ("mean_p_nonzero", "sd_p_nonzero", "mean_norm"):
                frame.loc[~edited, column] = np.nan
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)[list(CONSENSUS_COLUMNS)]


def consensus_heads(consensus: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """The ``k`` most consistently kept heads per (group, kind): by frequency, then mean P(g != 0)."""
    frames = [rows.sort_values(["frequency", "mean_p_nonzero"], ascending=False, kind="stable").head(k)
              for _, rows in consensus[consensus["edited"]].groupby(["group", "kind"], sort=False)]
    top = pd.concat(frames)
    return top.assign(head_id=[f"L{layer}H{head}" for layer, head in zip(top["layer"], top["head"])])[
        ["group", "kind", "head_id", "n_selected", "n_runs", "frequency", "mean_p_nonzero", "sd_p_nonzero",
         "p_adjusted", "above_chance"]].reset_index(drop=True)


def consensus_grid(consensus: pd.DataFrame, group: str, kind: str,
                   metric: str = "mean_p_nonzero") -> Float[Tensor, "layer head"]:
    """One group's ``metric`` (a numeric column of :func:`consensus_table`) as a [layer, head] tensor, NaN where
    not edited: the scores to rank heads by, e.g. for the causal check's top-k, random-k and bottom-k sets."""
    rows = consensus[(consensus["group"] == group) & (consensus["kind"] == kind)]
    if rows.empty:
        pairs = sorted(set(zip(consensus["group"], consensus["kind"])))
        raise ValueError(f"no consensus rows for group {group!r}, kind {kind!r}; there are: {pairs}")
    if metric not in CONSENSUS_COLUMNS or not pd.api.types.is_numeric_dtype(rows[metric]):
        raise ValueError(f"{metric!r} is not a numeric consensus column; choose one of frequency, mean_p_nonzero, "
                         "sd_p_nonzero, mean_norm, p_value, p_adjusted")
    grid = torch.full(grid_shape(rows), float("nan"), dtype=torch.float64)
    values = np.where(rows["edited"].to_numpy(bool), rows[metric].to_numpy(dtype=float), np.nan)
    grid[torch.tensor(rows["layer"].to_numpy()), torch.tensor(rows["head"].to_numpy())] = torch.tensor(values)
    return grid


def _as_consensus(items: object) -> pd.DataFrame:
    if isinstance(items, pd.DataFrame) and "frequency" in items.columns:
        return items
    return consensus_table(items)


def _select(consensus: pd.DataFrame, groups: list[str] | None) -> tuple[pd.DataFrame, list[str]]:
    known = list(dict.fromkeys(consensus["group"]))
    if groups is None:
        return consensus, known
    unknown = [g for g in groups if g not in known]
    if unknown:
        raise ValueError(f"no seed group named {', '.join(map(repr, unknown))}; the groups are: {', '.join(known)}")
    return consensus[consensus["group"].isin(groups)], list(groups)


def _draw(ax: Axes, rows: pd.DataFrame, shape: tuple[int, int], panel: tuple[float, float]) -> object:
    n_layers, n_heads = shape
    grid = np.full((n_heads, n_layers), np.nan)
    grid[rows["head"].to_numpy(), rows["layer"].to_numpy()] = rows["frequency"].to_numpy(dtype=float)
    image = ax.imshow(grid, cmap=colormap("viridis"), vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    marked = rows[rows["above_chance"]]
    if not marked.empty:
        size = (min(panel[0] / n_layers, panel[1] / n_heads, 0.3) * 72 * 0.4) ** 2
        ax.scatter(marked["layer"], marked["head"], s=size, marker="o", c="white", edgecolors="black",
                   linewidths=0.6)
    set_index_ticks(ax, "x", n_layers, panel[0] / n_layers)
    set_index_ticks(ax, "y", n_heads, panel[1] / n_heads)
    return image


def _panel_title(rows: pd.DataFrame) -> str:
    n, rate = int(rows["n_runs"].iloc[0]), float(rows["chance_rate"].iloc[0])
    marked = int(rows["above_chance"].sum())
    floor = f"; smallest possible p {rate ** n:.2g}" if marked == 0 and 0 < rate < 1 else ""
    return (f"{rows['group'].iloc[0]} · {rows['kind'].iloc[0]}\n{n} seed(s), {rate:.0%} of heads kept on average, "
            f"{marked} above chance{floor}")


def _short_title(rows: pd.DataFrame) -> str:
    n, rate = int(rows["n_runs"].iloc[0]), float(rows["chance_rate"].iloc[0])
    floor = f" (smallest p {rate ** n:.2g})" if not rows["above_chance"].any() and 0 < rate < 1 else ""
    return (f"{rows['kind'].iloc[0]}: {n} seeds, {rate:.0%} kept, {int(rows['above_chance'].sum())} above "
            f"chance{floor}")


def plot_consensus_grid(items: object, groups: list[str] | None = None, *,
                        path: str | os.PathLike | None = None) -> Figure:
    """Consensus heatmaps of several seed groups (one row each, one column per edit kind) on one colour scale:
    the share of a group's seeds that kept each head (0 to 1); ● marks heads kept more often than chance."""
    consensus, names = _select(_as_consensus(items), groups)
    model = single_model(consensus.assign(run=consensus["group"]))
    n_layers, n_heads = grid_shape(consensus)
    kinds = [kind for kind in EDIT_KINDS if kind in set(consensus["kind"])]
    cell = cell_inches(len(kinds) * n_layers, len(names) * n_heads)
    panel = (max(n_layers * cell, 3.2), max(n_heads * cell, 1.6))
    width = len(kinds) * (panel[0] + 0.7) + 1.4
    fig = new_figure(width, len(names) * (panel[1] + 1.0) + 1.2)
    axes = fig.subplots(len(names), len(kinds), squeeze=False)
    image = None
    for row, name in enumerate(names):
        for column, kind in enumerate(kinds):
            rows = consensus[(consensus["group"] == name) & (consensus["kind"] == kind)]
            ax = axes[row, column]
            if rows.empty:
                ax.set_axis_off()
                ax.set_title(f"{name} · {kind}\nno {kind} edit", fontsize=9)
                continue
            image = _draw(ax, rows, (n_layers, n_heads), panel)
            ax.set_title(_panel_title(rows), fontsize=8)
            ax.set_xlabel("layer" if row == len(names) - 1 else "", fontsize=8)
            ax.set_ylabel("head" if column == 0 else "", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), label="share of seeds that kept the head", shrink=0.9,
                     pad=0.01, aspect=max(10.0, 0.9 * len(names) * (panel[1] + 1.0) / 0.15))
    what = names[0] if len(names) == 1 else f"{len(names)} seed groups"
    subtitle = f"colour: share of seeds that kept the head (gate > 0); {CHANCE_TEXT}; grey = not edited"
    fig.suptitle(f"Consensus over seeds — {what} — {model}\n{textwrap.fill(subtitle, int(width * 11))}", fontsize=11)
    return finish(fig, path)


def plot_consensus_heatmap(items: object, group: str | None = None, *,
                           path: str | os.PathLike | None = None) -> Figure:
    """One seed group's consensus heatmap (``group`` may be left out when there is only one)."""
    consensus = _as_consensus(items)
    names = list(dict.fromkeys(consensus["group"]))
    if group is None:
        if len(names) != 1:
            raise ValueError(f"these runs form {len(names)} seed groups ({', '.join(names)}); name one with "
                             "group=..., or draw them all with plot_consensus_grid")
        group = names[0]
    return plot_consensus_grid(consensus, [group], path=path)


def plot_consensus_interactive(items: object, group: str | None = None) -> object:
    """The consensus heatmap of one group as a plotly figure (hover: layer, head, share of seeds, mean and sd of
    P(g≠0), mean edit norm); a matplotlib figure (:func:`plot_consensus_heatmap`) when plotly is not installed
    (``pip install jola_lens[plot]``)."""
    consensus = _as_consensus(items)
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError:
        logger.info("plotly is not installed (pip install 'jola_lens[plot]'): drawing with matplotlib")
        return plot_consensus_heatmap(consensus, group)
    names = list(dict.fromkeys(consensus["group"]))
    group = group if group is not None else names[0] if len(names) == 1 else None
    if group not in names:
        raise ValueError(f"name one seed group with group=...; the groups are: {', '.join(names)}")
    rows = consensus[consensus["group"] == group]
    kinds = [kind for kind in EDIT_KINDS if kind in set(rows["kind"])]
    n_layers, n_heads = grid_shape(rows)
    fig = make_subplots(rows=1, cols=len(kinds), subplot_titles=[_short_title(rows[rows["kind"] == k]) for k in kinds],
                        horizontal_spacing=0.08)
    for column, kind in enumerate(kinds, start=1):
        part = rows[rows["kind"] == kind]
        grid = np.full((n_heads, n_layers), np.nan)
        custom = np.full((n_heads, n_layers, 4), np.nan)
        h, layer = part["head"].to_numpy(), part["layer"].to_numpy()
        grid[h, layer] = part["frequency"].to_numpy(float)
        custom[h, layer] = part[["n_selected", "mean_p_nonzero", "sd_p_nonzero", "mean_norm"]].to_numpy(float)
        fig.add_trace(go.Heatmap(
            z=grid, customdata=custom, zmin=0, zmax=1, colorscale="Viridis", showscale=column == len(kinds),
            colorbar={"title": "share of seeds"},
            hovertemplate=("layer %{x}, head %{y}<br>kept by %{customdata[0]:.0f} of " + str(int(part["n_runs"].iloc[0]))
                           + " seeds (%{z:.2f})<br>P(g≠0) %{customdata[1]:.3f} ± %{customdata[2]:.3f}"
                           "<br>edit norm %{customdata[3]:.3f}<extra>" + kind + "</extra>")), row=1, col=column)
        marked = part[part["above_chance"]]
        if not marked.empty:
            fig.add_trace(go.Scatter(x=marked["layer"], y=marked["head"], mode="markers", hoverinfo="skip",
                                     marker={"color": "white", "line": {"color": "black", "width": 1}},
                                     showlegend=False), row=1, col=column)
        fig.update_xaxes(title_text="layer", row=1, col=column)
        fig.update_yaxes(title_text="head" if column == 1 else None, autorange="reversed", row=1, col=column)
    fig.update_annotations(font_size=12)
    fig.update_layout(title=f"Consensus over seeds — {group} — {rows['model'].iloc[0]}<br><sup>{CHANCE_TEXT}</sup>",
                      height=300 + 18 * n_heads, width=520 * len(kinds) + 160, margin={"t": 120})
    return fig
