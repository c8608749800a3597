"""The layout of a run folder: what the trainer writes and what analysis reads.

    <run>/config.json            the run's settings (model, task, backend, hyperparameters, edit config)
    <run>/edit/                  the kept edit (jola_config.json + jola_edit.safetensors)
    <run>/train_log.jsonl        one line per training step (loss, ce, penalty, lam, lr, open-gate shares)
    <run>/gates/epoch-NNNN.safetensors   gate logits after each epoch (epoch 0 = initial values)
    <run>/predictions.jsonl      one line per evaluated item
    <run>/metrics.json           evaluation metrics
    <run>/checkpoint/            resume state (trainer-internal)
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from jola_lens import atomic
from jola_lens.edit import JoLAEdit

_SNAPSHOT = re.compile(r"epoch-(\d{4})\.safetensors$")


class NotARunError(FileNotFoundError):
    """A folder that is not a jola_lens run folder."""


@dataclass(frozen=True)
class RunFolder:
    root: Path

    def __init__(self, root: str | os.PathLike) -> None:
        object.__setattr__(self, "root", Path(root))

    config = property(lambda self: self.root / "config.json")
    edit_dir = property(lambda self: self.root / "edit")
    train_log = property(lambda self: self.root / "train_log.jsonl")
    gates_dir = property(lambda self: self.root / "gates")
    predictions = property(lambda self: self.root / "predictions.jsonl")
    metrics = property(lambda self: self.root / "metrics.json")
    checkpoint_dir = property(lambda self: self.root / "checkpoint")

    def gate_snapshot(self, epoch: int) -> Path:
        return self.gates_dir / f"epoch-{epoch:04d}.safetensors"

    def require(self) -> RunFolder:
        """Raise :class:`NotARunError` unless this folder holds a run (a config.json and an edit)."""
        if not self.config.is_file() or not self.edit_dir.is_dir():
            raise NotARunError(
                f"{self.root} is not a jola_lens run folder (expected config.json and edit/ inside it; "
                "`jola-lens train --output_dir DIR` writes one)"
            )
        return self

    def read_config(self) -> dict:
        return json.loads(self.require().config.read_text(encoding="utf-8"))

    def load_edit(self) -> JoLAEdit:
        return JoLAEdit.from_pretrained(self.require().edit_dir)

    def read_train_log(self) -> list[dict]:
        if not self.train_log.is_file():
            return []
        return [json.loads(line) for line in self.train_log.read_text(encoding="utf-8").splitlines() if line.strip()]

    def write_gate_snapshot(self, edit: JoLAEdit, epoch: int, step: int) -> None:
        tensors = {f"{kind}_gate_logits": edit.gate_logits(kind).detach().cpu().contiguous()
                   for kind in edit.config.edit_kinds if edit.gate_logits(kind) is not None}
        if not tensors:
            return
        with atomic.atomic_path(self.gate_snapshot(epoch)) as tmp:
            save_file(tensors, str(tmp), metadata={"epoch": str(epoch), "step": str(step)})

    def read_gate_snapshots(self) -> list[tuple[int, int, dict[str, torch.Tensor]]]:
        """``[(epoch, step, {kind: gate logits [layer, head]}), ...]`` in epoch order."""
        from safetensors import safe_open

        snapshots = []
        for path in sorted(self.gates_dir.glob("epoch-*.safetensors")) if self.gates_dir.is_dir() else []:
            match = _SNAPSHOT.search(path.name)
            if not match:
                continue
            with safe_open(str(path), framework="pt") as handle:
                step = int(handle.metadata().get("step", -1))
            tensors = load_file(str(path))
            snapshots.append((int(match.group(1)), step,
                              {name.removesuffix("_gate_logits"): t for name, t in tensors.items()}))
        return snapshots
