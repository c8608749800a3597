"""Where in depth the kept heads sit: per layer, the share of heads selected and the mean P(g != 0)."""

from __future__ import annotations

import os

import pandas as pd
from matplotlib.figure import Figure

from jola_lens.analysis.figures import cell_inches, finish, new_figure, set_index_ticks
from jola_lens.analysis.tables import as_table, grid_shape, single_model
from jola_lens.config import EDIT_KINDS


def depth_profile(items: object) -> pd.DataFrame:
    """Per (run, kind, layer): heads edited and selected, the share selected and the mean P(g != 0)
    (both NaN in layers the edit does not touch)."""
    table = as_table(items)
    grouped = table.groupby(["run", "task", "model", "kind", "layer"], sort=False)
    profile = grouped.agg(n_edited=("edited", "sum"), n_selected=("selected", "sum"),
                          mean_p_nonzero=("p_nonzero", "mean")).reset_index()
    edited = profile["n_edited"].where(profile["n_edited"] > 0)
    profile.insert(profile.columns.get_loc("mean_p_nonzero"), "share_selected", profile["n_selected"] / edited)
    return profile


def plot_depth_profile(items: object, *, path: str | os.PathLike | None = None) -> Figure:
    """Share of heads selected per layer (top row) and mean P(g != 0) per layer (bottom row, which still
    separates layers when every gate is open or every gate closed); one line per run, one column per kind."""
    table = as_table(items)
    model = single_model(table)
    profile = depth_profile(table)
    n_layers, _ = grid_shape(table)
    kinds = [kind for kind in EDIT_KINDS if kind in set(profile["kind"])]
    runs = list(dict.fromkeys(profile["run"]))
    width = max(4.0, min(7.0, n_layers * 0.22))
    fig = new_figure(len(kinds) * width + (2.5 if len(runs) > 1 else 0.5), 6.0)
    axes = fig.subplots(2, len(kinds), squeeze=False, sharex=True)
    for column, kind in enumerate(kinds):
        for run in runs:
            rows = profile[(profile["run"] == run) & (profile["kind"] == kind)]
            if rows.empty:
                continue
            style = {"marker": "o", "markersize": 3, "linewidth": 1.2, "label": run}
            axes[0, column].plot(rows["layer"], rows["share_selected"], **style)
            axes[1, column].plot(rows["layer"], rows["mean_p_nonzero"], **style)
        kept = profile[profile["kind"] == kind]
        all_open = (kept["n_selected"] == kept["n_edited"]).all()
        axes[0, column].set_title(f"{kind}: share of heads selected (gate > 0)"
                                  + ("\nevery head open — see P(g≠0) below" if all_open else ""), fontsize=9)
        axes[0, column].set_ylim(-0.03, 1.03)
        axes[1, column].set_title(f"{kind}: mean P(g≠0) per layer", fontsize=9)
        axes[1, column].set_xlabel("layer", fontsize=8)
        set_index_ticks(axes[1, column], "x", n_layers, cell_inches(n_layers, 1, max_width=width))
        for ax in axes[:, column]:
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("share selected", fontsize=8)
    axes[1, 0].set_ylabel("mean P(g≠0)", fontsize=8)
    if len(runs) > 1:
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right upper", fontsize=7, title="run", title_fontsize=8)
    which = runs[0] if len(runs) == 1 else f"{len(runs)} runs"
    fig.suptitle(f"Where in depth the kept heads sit — {which} — {model}", fontsize=11)
    return finish(fig, path)
