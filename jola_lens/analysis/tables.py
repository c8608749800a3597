"""Tidy per-head data: one row per (run, edit kind, layer, head), and [layer, head] tensors per edit kind.

Layers the edit does not touch (``config.layers`` a subset) are kept: NaN values, ``edited`` and
``selected`` False, so every run covers the model's whole layer x head grid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from jaxtyping import Bool, Float
from torch import Tensor

from jola_lens import gates as hc
from jola_lens.analysis.sources import EditSource, SourceLike, load_source, load_sources

METRICS = ("gate", "p_nonzero", "logit", "norm", "init_logit", "init_p_nonzero", "change")
"""gate: deterministic gate; p_nonzero: P(g != 0); logit: gate logit; norm: L2 of the edit vector;
init_*: the same before training (epoch-0 snapshot); change: p_nonzero - init_p_nonzero."""

COLUMNS = ("run", "task", "model", "kind", "layer", "head", "edited", "selected", *METRICS, "d_head")


def _edited_rows(source: EditSource) -> dict[str, dict[str, Float[Tensor, "edited_layer head"]]]:
    """Every metric per edit kind, on the edited layers only."""
    edit, config = source.edit, source.edit.config
    gates, p_nonzero = edit.gates(), edit.prob_nonzero()
    initial = source.initial_logits or {}
    out: dict[str, dict[str, Tensor]] = {metric: {} for metric in METRICS}
    for kind in config.edit_kinds:
        logits = edit.gate_logits(kind)
        nan = torch.full_like(gates[kind], float("nan"))
        init_logit = initial.get(kind, nan).float()
        init_p = hc.prob_nonzero(init_logit, config.beta, config.gamma, config.zeta)
        out["gate"][kind] = gates[kind]
        out["p_nonzero"][kind] = p_nonzero[kind]
        out["logit"][kind] = logits.detach().float() if logits is not None else nan
        out["norm"][kind] = getattr(edit, kind).detach().float().norm(dim=-1)
        out["init_logit"][kind] = init_logit
        out["init_p_nonzero"][kind] = init_p
        out["change"][kind] = p_nonzero[kind] - init_p
    return out


def _full_grid(source: EditSource, rows: Tensor, fill: float | bool) -> Tensor:
    config = source.edit.config
    grid = torch.full((config.n_layers, config.n_heads), fill, dtype=rows.dtype)
    grid[list(config.edited_layers)] = rows
    return grid


def head_tensors(item: SourceLike, metric: str = "gate") -> dict[str, Float[Tensor, "layer head"]]:
    """``{kind: [n_layers, n_heads]}`` of one metric (see :data:`METRICS`); NaN in layers not edited."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
    source = load_source(item)
    return {kind: _full_grid(source, rows, float("nan")) for kind, rows in _edited_rows(source)[metric].items()}


def selected_mask(item: SourceLike) -> dict[str, Bool[Tensor, "layer head"]]:
    """``{kind: [n_layers, n_heads]}``: True where the deterministic gate is > 0 (False in layers not edited)."""
    source = load_source(item)
    return {kind: _full_grid(source, mask, False) for kind, mask in source.edit.selected_heads().items()}


def head_table(items: SourceLike | list[SourceLike]) -> pd.DataFrame:
    """The tidy table (columns :data:`COLUMNS`) of one or many edits, edit folders or run folders."""
    frames = []
    for source in load_sources(items):
        config = source.edit.config
        rows = _edited_rows(source)
        selected = selected_mask(source)
        layer, head = np.meshgrid(np.arange(config.n_layers), np.arange(config.n_heads), indexing="ij")
        edited = np.isin(layer, config.edited_layers)
        for kind in config.edit_kinds:
            frame = {"run": source.label, "task": source.task, "model": source.model, "kind": kind,
                     "layer": layer.ravel(), "head": head.ravel(), "edited": edited.ravel(),
                     "selected": selected[kind].numpy().ravel()}
            for metric in METRICS:
                frame[metric] = _full_grid(source, rows[metric][kind], float("nan")).numpy().ravel()
            frame["d_head"] = config.d_head
            frames.append(pd.DataFrame(frame, columns=list(COLUMNS)))
    return pd.concat(frames, ignore_index=True)


def as_table(items: pd.DataFrame | SourceLike | list[SourceLike]) -> pd.DataFrame:
    """``items`` if it already is a head table, else :func:`head_table` of it."""
    return items if isinstance(items, pd.DataFrame) else head_table(items)


def grid_shape(table: pd.DataFrame) -> tuple[int, int]:
    """(n_layers, n_heads) of the model a head table covers."""
    return int(table["layer"].max()) + 1, int(table["head"].max()) + 1


class MixedModelsError(ValueError):
    """Runs of different base models were given to a view that compares heads across runs."""


def single_model(table: pd.DataFrame) -> str:
    """The one base model of ``table``; raises :class:`MixedModelsError` if there are several or shapes differ."""
    models = sorted(table["model"].unique())
    if len(models) != 1:
        raise MixedModelsError(
            f"these runs come from {len(models)} base models ({', '.join(models)}); heads of different models do not "
            "correspond, so compare them per model: split the table with table.groupby('model')"
        )
    shapes = {run: (int(g["layer"].max()) + 1, int(g["head"].max()) + 1) for run, g in table.groupby("run")}
    if len(set(shapes.values())) > 1:
        raise MixedModelsError(f"runs labelled with model {models[0]!r} have different layer x head grids: {shapes}")
    return models[0]


def selection_note(rows: pd.DataFrame) -> str:
    """How many of the edited heads in ``rows`` are kept, said plainly ('all 270 heads open (no gate closed)')."""
    edited = int(rows["edited"].sum())
    kept = int(rows["selected"].sum())
    if edited == 0:
        return "no head edited"
    if kept == edited:
        return f"all {edited} heads open (no gate closed)"
    if kept == 0:
        return f"all {edited} heads closed"
    return f"{kept} of {edited} heads kept"
