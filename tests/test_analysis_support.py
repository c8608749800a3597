"""Helpers for the analysis tests (no tests here): edits with hand-set gates, and fake run folders."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from jola_lens import JoLAConfig, JoLAEdit, atomic
from jola_lens.run_folder import RunFolder

OPEN, CLOSED = 5.0, -5.0  # gate logits: gate 1 / gate 0 at evaluation


def make_edit(n_layers: int = 3, n_heads: int = 4, d_head: int = 8, *, open_heads: dict | None = None,
              layers: tuple[int, ...] | None = None, model: str = "test/model", seed: int = 0,
              **config: object) -> JoLAEdit:
    """An edit whose gates are closed except at ``open_heads[kind] = [(layer, head), ...]``;
    ``open_heads=None`` opens every head. Vectors are random (seeded)."""
    cfg = JoLAConfig(n_layers, n_heads, d_head, layers=layers, base_model=model, **config)
    edit = JoLAEdit(cfg, generator=torch.Generator().manual_seed(seed)).eval()
    rows = {layer: row for row, layer in enumerate(cfg.edited_layers)}
    with torch.no_grad():
        for kind in cfg.edit_kinds:
            logits = edit.gate_logits(kind)
            if logits is None:
                continue
            if open_heads is None:
                logits.fill_(OPEN)
                continue
            logits.fill_(CLOSED)
            for layer, head in open_heads.get(kind, []):
                logits[rows[layer], head] = OPEN
    return edit


def make_run(root: Path, edit: JoLAEdit, task: str | None = "commonsense/ARC-e", *, model: str | None = None,
             snapshots: int = 3, steps_per_epoch: int = 2) -> RunFolder:
    """A run folder as the trainer writes it: config.json, edit/, gates/epoch-NNNN (epochs 0..snapshots-1,
    logits drifting down towards the final edit's), and train_log.jsonl."""
    run = RunFolder(root)
    edit.save_pretrained(run.edit_dir)
    config = {"model": model or edit.config.base_model}
    if task is not None:
        config["task"] = task
    atomic.write_json(run.config, config)
    final = {kind: edit.gate_logits(kind).detach().clone() for kind in edit.config.edit_kinds}
    log = []
    for epoch in range(snapshots):
        weight = epoch / max(snapshots - 1, 1)
        with torch.no_grad():
            for kind, logits in final.items():
                edit.gate_logits(kind).copy_(weight * logits)  # epoch 0: all logits 0 (gate 0.5)
        run.write_gate_snapshot(edit, epoch, epoch * steps_per_epoch)
        if epoch:
            opened = {f"open_{kind}": float(mask.float().mean()) for kind, mask in edit.selected_heads().items()}
            log += [{"step": (epoch - 1) * steps_per_epoch + s + 1, "epoch": epoch, "loss": 1.0, "ce": 1.0,
                     "penalty": 0.1, "lam": 0.1, "lr": 5e-3, **opened} for s in range(steps_per_epoch)]
    with torch.no_grad():
        for kind, logits in final.items():
            edit.gate_logits(kind).copy_(logits)
    run.train_log.write_text("".join(json.dumps(entry) + "\n" for entry in log), encoding="utf-8")
    return run
