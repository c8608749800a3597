"""The run folder: its layout, the files a run owns, and the run's identity (the settings that define it).

    <run>/config.json            the run's settings (model, task, backend, hyperparameters, edit config)
    <run>/edit/                  the kept edit (jola_config.json + jola_edit.safetensors)
    <run>/train_items.jsonl      ids and instructions of the training and validation items (the overlap guard)
    <run>/train_log.jsonl        one line per training step (loss, ce, penalty, lam, lr, open-gate shares)
    <run>/gates/epoch-NNNN.safetensors   gate logits after each epoch (epoch 0 = initial values)
    <run>/predictions.jsonl      one line per evaluated item
    <run>/metrics.json           evaluation metrics
    <run>/checkpoint/            resume state (trainer-internal)
    <run>/lofit_scaling/         an earlier stage of a multi-stage method (LoFiT), a run folder of its own
    <run>/../results.jsonl       the default results file: one line per run, shared by the runs beside it

A run's identity is the part of config.json that defines its result. :func:`settings_diff` is the one comparison
of two identities: resuming a checkpoint, reusing an output folder and reusing a study's run all name the
differing settings with it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from jola_lens import atomic
from jola_lens.edit import JoLAEdit
from jola_lens.tasks.examples import Example

_SNAPSHOT = re.compile(r"epoch-(\d{4})\.safetensors$")

CONFIG_NAME = "config.json"
TRAIN_ITEMS_NAME = "train_items.jsonl"
RESULTS_NAME = "results.jsonl"
OWNED_FILES = (CONFIG_NAME, TRAIN_ITEMS_NAME, "train_log.jsonl", "predictions.jsonl", "metrics.json")
OWNED_DIRS = ("edit", "gates", "checkpoint")
STAGE_DIRS = ("lofit_scaling",)
"""Everything a run writes into its folder (its stages' folders included); clearing a run deletes these and nothing
else."""


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}`` (a flat dict is returned as it is)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def settings_diff(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key: saved -> current`` for every flattened key whose value differs (a key one side lacks counts as
    None there), sorted by key; [] when the settings agree."""
    a, b = flatten(saved), flatten(current)
    return [f"{key}: {a.get(key)!r} -> {b.get(key)!r}" for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def train_defaults() -> dict[str, Any]:
    """The default of every :class:`~jola_lens.training.config.TrainConfig` field that has one."""
    from jola_lens.training.config import TrainConfig

    return {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}


class NotARunError(FileNotFoundError):
    """A folder that is not a jola_lens run folder."""


@dataclass(frozen=True)
class RunFolder:
    """One run folder: the paths of its files, reading and writing them, and its identity."""

    root: Path

    def __init__(self, root: str | os.PathLike) -> None:
        object.__setattr__(self, "root", Path(root))

    config = property(lambda self: self.root / CONFIG_NAME)
    edit_dir = property(lambda self: self.root / "edit")
    train_items = property(lambda self: self.root / TRAIN_ITEMS_NAME)
    train_log = property(lambda self: self.root / "train_log.jsonl")
    gates_dir = property(lambda self: self.root / "gates")
    predictions = property(lambda self: self.root / "predictions.jsonl")
    metrics = property(lambda self: self.root / "metrics.json")
    checkpoint_dir = property(lambda self: self.root / "checkpoint")
    default_results_file = property(lambda self: self.root.parent / RESULTS_NAME)

    def gate_snapshot(self, epoch: int) -> Path:
        return self.gates_dir / f"epoch-{epoch:04d}.safetensors"

    # ---- what the folder holds ----------------------------------------------------------------------
    def is_run(self) -> bool:
        """True when the folder holds a trained run (a config.json and an edit)."""
        return self.config.is_file() and self.edit_dir.is_dir()

    def require(self) -> RunFolder:
        """Raise :class:`NotARunError` unless this folder holds a run (a config.json and an edit)."""
        if not self.is_run():
            raise NotARunError(
                f"{self.root} is not a jola_lens run folder (expected config.json and edit/ inside it; "
                "`jola-lens train --output_dir DIR` writes one)"
            )
        return self

    def stage(self, name: str) -> RunFolder:
        """The run folder of an earlier stage ``name`` (one of :data:`STAGE_DIRS`) inside this one."""
        if name not in STAGE_DIRS:
            raise ValueError(f"unknown stage folder {name!r}; a run folder holds {STAGE_DIRS}")
        return RunFolder(self.root / name)

    def stage_folders(self) -> list[RunFolder]:
        """The earlier stages' run folders that exist (LoFiT's lofit_scaling/)."""
        return [self.stage(name) for name in STAGE_DIRS if (self.root / name).is_dir()]

    def owned_paths(self) -> list[Path]:
        """The files and folders this run wrote that exist (what :meth:`clear` deletes)."""
        names = (*OWNED_FILES, *OWNED_DIRS, *STAGE_DIRS)
        return [self.root / name for name in names if (self.root / name).exists()]

    def clear(self) -> None:
        """Delete the run's own files (:data:`OWNED_FILES`, :data:`OWNED_DIRS`, :data:`STAGE_DIRS`), nothing else
        beside them."""
        for path in self.owned_paths():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    # ---- identity -----------------------------------------------------------------------------------
    def write_config(self, identity: Mapping[str, Any], details: Mapping[str, Any]) -> None:
        """config.json: the run's ``identity`` plus descriptive ``details`` (names, sizes, versions)."""
        atomic.write_json(self.config, dict(identity) | dict(details))

    def read_config(self) -> dict[str, Any]:
        """config.json of a run (see :meth:`require`); a damaged file is named."""
        try:
            return json.loads(self.require().config.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{self.config} is not valid JSON ({error}); restore it, or train the run again "
                             "with --overwrite") from error

    def settings_diff(self, identity: Mapping[str, Any]) -> list[str]:
        """:func:`settings_diff` between the run's saved settings and ``identity``, over ``identity``'s keys
        (config.json's descriptive entries are not compared). A training setting the saved run lacks takes its
        default: the run was saved before the setting existed, when it behaved as the default does."""
        saved = json.loads(self.config.read_text(encoding="utf-8")) if self.config.is_file() else {}
        if isinstance(saved.get("train"), dict) and isinstance(identity.get("train"), Mapping):
            defaults = train_defaults()
            added = {key: defaults[key] for key in identity["train"] if key not in saved["train"] and key in defaults}
            saved["train"] = saved["train"] | added
        return settings_diff({key: saved.get(key) for key in identity}, identity)

    # ---- training and validation items --------------------------------------------------------------
    def write_train_items(self, splits: Mapping[str, Sequence[Example]]) -> None:
        """train_items.jsonl: ``{"split", "id", "instruction"}`` per item of each split (e.g. train, validation)."""
        atomic.write_text(self.train_items, "".join(
            json.dumps({"split": split, "id": e.id, "instruction": e.instruction}) + "\n"
            for split, examples in splits.items() for e in examples))

    def read_train_items(self) -> list[Example]:
        """The training and validation items the run recorded, as Examples (id and instruction only)."""
        if not self.train_items.is_file():
            raise FileNotFoundError(
                f"{self.train_items} is missing: cannot check that {self.root}'s training items are not in the "
                "test set. Restore it, or evaluate the edit folder itself (--edit RUN/edit).")
        return [Example(id=row["id"], instruction=row["instruction"], target="")
                for row in atomic.read_jsonl(self.train_items)]

    # ---- edit, train log, gate snapshots ------------------------------------------------------------
    def load_edit(self) -> JoLAEdit:
        return JoLAEdit.from_pretrained(self.require().edit_dir)

    def read_train_log(self) -> list[dict]:
        """One record per training step ([] before the first; a line torn by a crash is left out)."""
        return atomic.read_jsonl(self.train_log)

    def append_train_log(self, record: Mapping[str, Any]) -> None:
        """Add one step's record to train_log.jsonl (an fsynced append, not a rewrite)."""
        atomic.append_jsonl(self.train_log, dict(record))

    def truncate_train_log(self, step: int) -> None:
        """Keep the records up to ``step`` (a resumed run's checkpoint), rewriting the log atomically."""
        kept = [r for r in self.read_train_log() if r["step"] <= step]
        atomic.write_text(self.train_log, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))

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
