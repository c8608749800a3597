"""How much runs agree on heads: Jaccard of selected heads and Spearman correlation of P(g != 0), clustered."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from jola_lens.analysis.figures import colormap, finish, new_figure
from jola_lens.analysis.tables import as_table, single_model
from jola_lens.config import EDIT_KINDS


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|a ∩ b| / |a ∪ b| of two boolean masks; NaN when both are empty."""
    a, b = np.asarray(a, dtype=bool).ravel(), np.asarray(b, dtype=bool).ravel()
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else float("nan")


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties) over positions finite in both; NaN if undefined."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 2:
        return float("nan")
    rx = pd.Series(x[keep]).rank().to_numpy()
    ry = pd.Series(y[keep]).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def overlap_matrices(items: object, kind: str = "additive") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(Jaccard of selected heads, Spearman of P(g != 0)): run x run frames for one edit kind, one base model."""
    table = as_table(items)
    single_model(table)
    rows = table[table["kind"] == kind].sort_values(["layer", "head"])
    if rows.empty:
        raise ValueError(f"no run has a {kind} edit")
    runs = list(dict.fromkeys(rows["run"]))
    selected = {run: g["selected"].to_numpy() for run, g in rows.groupby("run", sort=False)}
    p_nonzero = {run: g["p_nonzero"].to_numpy() for run, g in rows.groupby("run", sort=False)}
    jac = pd.DataFrame([[jaccard(selected[a], selected[b]) for b in runs] for a in runs], index=runs, columns=runs)
    rho = pd.DataFrame([[spearman(p_nonzero[a], p_nonzero[b]) for b in runs] for a in runs], index=runs, columns=runs)
    return jac, rho


def cluster_order(similarity: pd.DataFrame) -> list[str]:
    """Leaf order of average-linkage clustering on 1 - similarity (NaN = most distant).

    Uses scipy (with optimal leaf ordering) when it is installed, else an average-linkage merge written here.
    """
    labels = list(similarity.index)
    if len(labels) < 3:
        return labels
    sim = similarity.to_numpy(dtype=float)
    distance = np.where(np.isfinite(sim), 1.0 - sim, np.nanmax(np.append(1.0 - sim, 1.0)) + 1.0)
    distance = (distance + distance.T) / 2
    np.fill_diagonal(distance, 0.0)
    try:
        from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
        from scipy.spatial.distance import squareform
    except ImportError:
        return [labels[i] for i in _average_linkage_order(distance)]
    condensed = squareform(distance, checks=False)
    tree = optimal_leaf_ordering(linkage(condensed, method="average"), condensed)
    return [labels[i] for i in leaves_list(tree)]


def _average_linkage_order(distance: np.ndarray) -> list[int]:
    """Merge the two clusters with the smallest mean pairwise distance until one is left; its member order."""
    clusters = [[i] for i in range(len(distance))]
    while len(clusters) > 1:
        best = None
        for i in range(len(clusters)):
            for j in range(i + 1, len(clusters)):
                mean = distance[np.ix_(clusters[i], clusters[j])].mean()
                if best is None or mean < best[0]:
                    best = (mean, i, j)
        _, i, j = best
        clusters[i] = clusters[i] + clusters.pop(j)
    return clusters[0]


def task_order(table: pd.DataFrame) -> tuple[list[str], list[tuple[int, int]]]:
    """Runs ordered by task (the ``group`` column of a grouped table, else ``task``) in order of appearance,
    by seed within a task, and the (first position, size) of each task's block."""
    key = "group" if "group" in table.columns else "task"
    runs = table.drop_duplicates("run")
    blocks = list(dict.fromkeys(runs[key]))
    if "seed" in runs.columns:
        runs = runs.sort_values("seed", kind="stable", na_position="last")
    order = [run for block in blocks for run in runs.loc[runs[key] == block, "run"]]
    sizes = [int((runs[key] == block).sum()) for block in blocks]
    return order, list(zip(np.cumsum([0, *sizes[:-1]]).tolist(), sizes))


def plot_overlap(items: object, *, by_task: bool = False, path: str | os.PathLike | None = None) -> Figure:
    """Run x run Jaccard (selected heads) and Spearman (P(g != 0)) matrices per edit kind, in clustered order,
    or with ``by_task`` grouped by task (seed group), the runs of one task framed on the diagonal, so that
    within-task (seed) agreement can be read against the between-task blocks."""
    table = as_table(items)
    model = single_model(table)
    kinds = [kind for kind in EDIT_KINDS if kind in set(table["kind"])]
    n = table["run"].nunique()
    side = min(9.0, max(3.2, 0.45 * n + 1.8))
    fig = new_figure(2 * side + 1.5, len(kinds) * side + 0.8)
    axes = fig.subplots(len(kinds), 2, squeeze=False)
    notes = []
    for row, kind in enumerate(kinds):
        jac, rho = overlap_matrices(table, kind)
        order, blocks = task_order(table) if by_task else (cluster_order(rho.fillna(jac)), [])
        panels = ((axes[row, 0], jac, "Jaccard of selected heads", (0, 1), "viridis"),
                  (axes[row, 1], rho, "Spearman ρ of P(g≠0)", (-1, 1), "RdBu_r"))
        for ax, matrix, name, limits, cmap_name in panels:
            values = matrix.loc[order, order].to_numpy(dtype=float)
            cmap = colormap(cmap_name)
            image = ax.imshow(values, vmin=limits[0], vmax=limits[1], cmap=cmap, interpolation="nearest")
            if len(order) <= 15:
                for (i, j), value in np.ndenumerate(values):
                    r, g, b, _ = cmap(image.norm(value))
                    dark = not np.isnan(value) and 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                    ax.text(j, i, "n/a" if np.isnan(value) else f"{value:.2f}", ha="center", va="center",
                            fontsize=7, color="white" if dark else "black")
            ax.set_xticks(range(len(order)), order, rotation=60, ha="right", fontsize=7)
            ax.set_yticks(range(len(order)), order, fontsize=7)
            for start, size in (block for block in blocks if block[1] > 1):
                ax.add_patch(Rectangle((start - 0.5, start - 0.5), size, size, fill=False, edgecolor="black",
                                       linewidth=1.8))
            ax.set_title(f"{kind}: {name}", fontsize=9)
            fig.colorbar(image, ax=ax, shrink=0.8)
        if np.nanmin(jac.to_numpy(dtype=float), initial=np.inf) == 1.0:
            notes.append(f"{kind}: the same heads are selected in every run (often all open) — read the ρ panel")
    how = ("order: by task; black squares: runs of one task under other seeds" if by_task
           else "order: average-linkage clustering")
    subtitle = "; ".join([*notes, how]) if notes else f"{how}; n/a: undefined (no head selected in either run)"
    fig.suptitle(f"Overlap of head selections across {n} runs — {model}\n{subtitle}", fontsize=11)
    return finish(fig, path)
