"""Resume checkpoints: every tensor in one safetensors file, every scalar in ``state.json`` (no pickle).

A checkpoint commits in two atomic steps: a new, uniquely named tensor file is written, then ``state.json``
(which names it) replaces the old one; older tensor files are deleted afterwards. A crash at any point
leaves the previous complete checkpoint readable.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from jola_lens import atomic
from jola_lens.edit import JoLAEdit
from jola_lens.gates import GateSchedule
from jola_lens.run_folder import settings_diff
from jola_lens.training.rng import capture_rng, restore_rng

logger = logging.getLogger(__name__)

STATE_NAME = "state.json"
FORMAT_VERSION = 1
GATE_NOISE_STATE = "gate_noise"
"""Key (under ``rng.``) of the gates' own noise stream, for runs with ``gate_noise_seed``."""


class CheckpointMismatchError(ValueError):
    """A checkpoint written for another model, task or configuration."""


@dataclass
class TrainState:
    """Progress of a run: what a resumed run needs besides tensors and the optimizer/scheduler states.

    ``batches_done`` counts the batches of the epoch in progress (epoch ``epochs_done + 1``);
    ``bad_epochs`` the epochs since the validation loss last improved.
    """

    epochs_done: int = 0
    batches_done: int = 0
    global_step: int = 0
    best_val_loss: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    val_losses: list[float] = field(default_factory=list)
    stop_reason: str | None = None
    train_seconds: float = 0.0
    sparsity_target: dict | None = None
    """The sparsity target's multipliers and optimizer moments (None without a target)."""

    @property
    def finished(self) -> bool:
        return self.stop_reason is not None


def has_checkpoint(directory: Path) -> bool:
    return (Path(directory) / STATE_NAME).is_file()


def save_checkpoint(directory: Path, *, edit: JoLAEdit, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, gate_schedule: GateSchedule,
                    state: TrainState, fingerprint: dict[str, Any],
                    noise_generator: torch.Generator | None = None) -> None:
    """Write the full resume state of a run into ``directory`` (``noise_generator``: the gates' own noise stream)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    optimizer_tensors, optimizer_scalars = _split_optimizer(optimizer.state_dict())
    rng_tensors, rng_scalars = capture_rng()
    tensors = {f"edit.{name}": p.detach() for name, p in edit.named_parameters()}
    tensors |= {f"optimizer.{key}": t for key, t in optimizer_tensors.items()}
    tensors |= {f"rng.{key}": t for key, t in rng_tensors.items()}
    if noise_generator is not None:
        tensors[f"rng.{GATE_NOISE_STATE}"] = noise_generator.get_state()
    tensors = {key: t.cpu().contiguous().clone() for key, t in tensors.items()}
    tensor_name = f"tensors-{state.global_step:07d}-{uuid.uuid4().hex[:8]}.safetensors"
    with atomic.atomic_path(directory / tensor_name) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "jola_lens-checkpoint"})
    record = {
        "format_version": FORMAT_VERSION, "tensors": tensor_name, "fingerprint": fingerprint,
        "state": dataclasses.asdict(state), "optimizer": optimizer_scalars, "scheduler": scheduler.state_dict(),
        "gate_schedule": gate_schedule.state_dict(), "rng": rng_scalars,
    }
    atomic.write_json(directory / STATE_NAME, record)
    for old in directory.glob("tensors-*.safetensors"):
        if old.name != tensor_name:
            old.unlink(missing_ok=True)
    logger.debug("checkpoint at step %d written to %s", state.global_step, directory)


def read_checkpoint_record(directory: Path) -> dict[str, Any]:
    """The scalars of a checkpoint (``state.json``), without loading tensors."""
    return atomic.read_versioned_json(Path(directory) / STATE_NAME, FORMAT_VERSION,
                                      damaged="start again with --overwrite")


def load_checkpoint(directory: Path, *, edit: JoLAEdit, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, gate_schedule: GateSchedule,
                    fingerprint: dict[str, Any], noise_generator: torch.Generator | None = None) -> TrainState:
    """Restore everything :func:`save_checkpoint` wrote (RNG states included) and return the progress.

    Raises :class:`CheckpointMismatchError` when the checkpoint's fingerprint (model, task, settings)
    differs from ``fingerprint``.
    """
    directory = Path(directory)
    record = read_checkpoint_record(directory)
    check_fingerprint(record["fingerprint"], fingerprint, directory)
    tensors = load_file(str(directory / record["tensors"]))
    groups = _group(tensors)
    expected = {name: tuple(p.shape) for name, p in edit.named_parameters()}
    found = {name: tuple(t.shape) for name, t in groups["edit"].items()}
    if expected != found:
        raise CheckpointMismatchError(f"{directory}: the checkpoint's edit has tensors {found}, but this run's "
                                      f"edit has {expected} (a different model?)")
    edit.load_state_dict(groups["edit"])
    optimizer.load_state_dict(_join_optimizer(groups["optimizer"], record["optimizer"]))
    scheduler.load_state_dict(record["scheduler"])
    gate_schedule.load_state_dict(record["gate_schedule"])
    restore_rng(groups["rng"], record["rng"])
    if noise_generator is not None:
        noise_generator.set_state(groups["rng"][GATE_NOISE_STATE])
    return TrainState(**record["state"])


def check_fingerprint(saved: dict[str, Any], current: dict[str, Any], where: Path) -> None:
    """Raise :class:`CheckpointMismatchError` naming every setting that differs (:func:`settings_diff`)."""
    differing = settings_diff(saved, current)
    if differing:
        raise CheckpointMismatchError(
            f"the checkpoint in {where} belongs to another run (checkpoint -> now: {'; '.join(differing)}). Use the "
            "same settings to resume it, or --overwrite / another --output_dir to start a new run."
        )


def _group(tensors: dict[str, Tensor]) -> dict[str, dict[str, Tensor]]:
    groups: dict[str, dict[str, Tensor]] = {"edit": {}, "optimizer": {}, "rng": {}}
    for key, tensor in tensors.items():
        prefix, _, rest = key.partition(".")
        groups[prefix][rest] = tensor
    return groups


def _split_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for index, entries in state_dict["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "state_scalars": scalars}


def _join_optimizer(tensors: dict[str, Tensor], scalars: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        index, _, name = key.partition(".")
        state.setdefault(int(index), {})[name] = tensor
    for index, entries in scalars["state_scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    groups = [{k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in group.items()}
              for group in scalars["param_groups"]]
    return {"state": state, "param_groups": groups}
