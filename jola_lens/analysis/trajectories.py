"""Gates over training, from a run's gates/epoch-NNNN.safetensors snapshots and train_log.jsonl."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from jola_lens import gates as hc
from jola_lens.analysis.figures import finish, new_figure
from jola_lens.analysis.sources import EditSource, SourceLike, load_source


class NoGateSnapshotsError(ValueError):
    """Gate trajectories were asked of an edit without gate snapshots."""


def _source_with_snapshots(item: SourceLike) -> EditSource:
    source = load_source(item)
    if source.run is None:
        raise NoGateSnapshotsError(f"{source.label}: gate trajectories need a run folder (with gates/ snapshots), "
                                   "not a bare edit")
    if not source.snapshots:
        raise NoGateSnapshotsError(f"{source.label}: {source.run.gates_dir} holds no epoch-NNNN.safetensors gate "
                                   "snapshots, so there are no trajectories to show")
    return source


def gate_trajectories(item: SourceLike) -> pd.DataFrame:
    """One row per (snapshot, kind, layer, head): epoch, step, logit, gate, p_nonzero, selected."""
    source = _source_with_snapshots(item)
    config = source.edit.config
    layers = np.asarray(config.edited_layers)
    frames = []
    for epoch, step, snapshot in source.snapshots:
        for kind, logits in snapshot.items():
            logits = logits.float()
            gate = hc.deterministic_gates(logits, config.gamma, config.zeta)
            row, head = np.meshgrid(np.arange(logits.shape[0]), np.arange(logits.shape[1]), indexing="ij")
            frames.append(pd.DataFrame({
                "run": source.label, "epoch": epoch, "step": step, "kind": kind,
                "layer": layers[row.ravel()], "head": head.ravel(), "logit": logits.numpy().ravel(),
                "gate": gate.numpy().ravel(),
                "p_nonzero": hc.prob_nonzero(logits, config.beta, config.gamma, config.zeta).numpy().ravel(),
                "selected": (gate > 0).numpy().ravel(),
            }))
    return pd.concat(frames, ignore_index=True)


def open_heads_log(item: SourceLike) -> pd.DataFrame:
    """From train_log.jsonl, per (step, kind): the share and number of edited heads with gate > 0."""
    source = load_source(item)
    log = source.run.read_train_log() if source.run is not None else []
    edited = len(source.edit.config.edited_layers) * source.edit.config.n_heads
    records = [{"step": entry.get("step"), "epoch": entry.get("epoch"), "kind": kind,
                "share_open": entry[f"open_{kind}"], "n_open": entry[f"open_{kind}"] * edited}
               for entry in log for kind in source.edit.config.edit_kinds if entry.get(f"open_{kind}") is not None]
    return pd.DataFrame(records, columns=["step", "epoch", "kind", "share_open", "n_open"])


def plot_gate_trajectories(item: SourceLike, *, top: int = 8, path: str | os.PathLike | None = None) -> Figure:
    """Top: open heads per edit kind over training. Below, per kind: P(g != 0) per epoch of the ``top`` heads
    that changed most (coloured, labelled) over all other heads (grey), with the level below which a gate closes."""
    source = _source_with_snapshots(item)
    config = source.edit.config
    trajectory = gate_trajectories(source)
    log = open_heads_log(source)
    kinds = [kind for kind in config.edit_kinds if kind in set(trajectory["kind"])]
    edited = len(config.edited_layers) * config.n_heads
    x = "step" if (trajectory["step"] >= 0).all() else "epoch"
    fig = new_figure(max(8.0, 5.0 * len(kinds)), 8.0)
    axes = fig.subplot_mosaic([["open"] * len(kinds), kinds], height_ratios=[1, 1.6])
    opened = axes["open"]
    styles = {"additive": ("-", "o", 7), "multiplicative": ("--", "s", 4)}
    for kind in kinds:
        linestyle, marker, size = styles[kind]
        counts = trajectory[trajectory["kind"] == kind].groupby(["epoch", x])["selected"].sum().reset_index()
        line = None
        if not log.empty and log[x].notna().all():
            rows = log[log["kind"] == kind]
            (line,) = opened.plot(rows[x], rows["n_open"], linestyle=linestyle, linewidth=1.2,
                                  label=f"{kind} (train log)")
        opened.plot(counts[x], counts["selected"], marker, color=line.get_color() if line is not None else None,
                    markersize=size, label=f"{kind} (epoch snapshots)")
    opened.set_ylim(-0.03 * edited, edited * 1.05)
    opened.set_xlabel(f"training {x}", fontsize=8)
    opened.set_ylabel(f"open heads (of {edited})", fontsize=8)
    opened.legend(fontsize=7)
    opened.grid(alpha=0.3)
    closing = float(hc.prob_nonzero(torch.tensor(hc.closing_threshold(config.gamma, config.zeta)),
                                    config.beta, config.gamma, config.zeta))
    for kind in kinds:
        ax = axes[kind]
        wide = trajectory[trajectory["kind"] == kind].pivot_table(
            index="epoch", columns=["layer", "head"], values="p_nonzero")
        change = (wide.iloc[-1] - wide.iloc[0]).abs().sort_values(ascending=False)
        ax.plot(wide.index, wide.drop(columns=change.index[:top]).to_numpy(), color="0.8", linewidth=0.5)
        for layer, head in change.index[:top]:
            ax.plot(wide.index, wide[(layer, head)], marker="o", markersize=3, linewidth=1.4, label=f"L{layer} H{head}")
        ax.axhline(closing, color="black", linestyle=":", linewidth=1)
        ax.text(wide.index[-1], closing, "gate closes below ", ha="right", va="bottom", fontsize=7)
        ax.set_title(f"{kind}: P(g≠0), the {min(top, len(change))} heads that changed most", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("P(g≠0)", fontsize=8)
        ax.set_ylim(0, 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=6, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.16))
        ax.grid(alpha=0.3)
    for ax in axes.values():
        ax.tick_params(labelsize=7)
    never_closed = trajectory["selected"].all()
    note = (f"no gate closed at any snapshot — all {edited} heads open throughout" if never_closed
            else f"{len(trajectory['epoch'].unique())} gate snapshots")
    fig.suptitle(f"{source.label} — {source.model}: gates over training\n{note}", fontsize=11)
    return finish(fig, path)
