"""TrainConfig: the hyperparameters of one JoLA training run (the paper's values by default), validated."""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from jola_lens.config import check_known_fields
from jola_lens.gates import SCHEDULES

SAVE_STRATEGIES = ("best", "last", "no")
GATE_NOISE = ("sample", "off")


@dataclass(frozen=True)
class TrainConfig:
    """How to train an edit.

    The defaults are the paper's protocol: AdamW (weight decay 0) at lr 5e-3, cosine schedule with 50
    warm-up steps, batch 8, 20 epochs, sequences of at most 400 tokens, the ``expon`` gate scheduler,
    validation every epoch, the lowest-validation-loss epoch kept, early stopping after 2 epochs without
    improvement, seed 42. ``gate_lr`` (default: ``lr``) is the learning rate of the gate logits;
    ``penalty_scale`` multiplies the spec's gate penalty (which is already divided by layers x heads).
    ``max_grad_norm`` clips the global gradient norm (1.0 is the Hugging Face Trainer default the reference
    code inherits; 0 switches clipping off). ``patience`` 0 switches early stopping off.
    ``gate_lambda`` is the constant lam of the ``none`` scheduler. ``gate_init`` (default None: the spec's random
    uniform logits) starts every gate logit at one value, see ``JoLAConfig.gate_init``. ``init_std`` (default None:
    the spec's 1e-3) is the spread of the edit vectors' normal initialisation; 0 starts them at zero, so no head's
    gate gets a head start from the seed's draw. ``gate_noise`` ``sample`` (the spec) trains with Hard-Concrete
    samples, ``off`` with the deterministic evaluation gates (an ablation: no noise, so which gates close follows the
    task's gradients and the batch order only); ``gate_noise_seed`` (default None: the run's random stream, which
    ``seed`` seeds) draws that noise from a stream of its own, so runs of different seeds can share one noise
    sequence, or one seed can be run under several.
    ``penalty_delay`` / ``penalty_warmup`` hold the gate penalty at 0 for that many steps, then raise it linearly to
    full strength (0 / 0: the paper's penalty from step 0). ``target_heads`` (default None: the spec's penalty; a
    number of heads, or a share of the edited heads in (0, 1)) replaces the penalty by a Lagrangian that holds that
    many heads open per gated edit kind, its target moving from the first step's expected open count down to
    ``target_heads`` over ``target_warmup`` steps, its multipliers learned at ``target_lr`` (see
    :mod:`jola_lens.training.sparsity`). ``keep_heads`` (default None: keep every head whose gate is open; a number
    or a share like ``target_heads``) prunes the kept edit after training to the heads per gated edit kind with
    the highest gate logits (:meth:`jola_lens.edit.JoLAEdit.pruned`), so every run keeps the same number. ``heads`` (a spec such as ``L12H3,L20H0`` or a head file, see
    :mod:`jola_lens.heads`) restricts the edit to those heads. ``group_by_length`` batches examples of similar
    length together (seeded, every example once per epoch; see :func:`jola_lens.batching.epoch_batches`).
    """

    lr: float = 5e-3
    gate_lr: float | None = None
    train_batch: int = 8
    eval_batch: int = 1
    num_epoch: int = 20
    warmup_steps: int = 50
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 400
    gate_scheduler: str = "expon"
    gate_lambda: float = 0.0
    penalty_scale: float = 1.0
    gate_init: float | None = None
    init_std: float | None = None
    gate_noise: str = "sample"
    gate_noise_seed: int | None = None
    penalty_delay: int = 0
    penalty_warmup: int = 0
    target_heads: int | float | None = None
    target_warmup: int = 0
    target_lr: float = 0.01
    keep_heads: int | float | None = None
    heads: str | None = None
    patience: int = 2
    save_strategy: str = "best"
    group_by_length: bool = False
    seed: int = 42

    def __post_init__(self) -> None:
        if self.gate_lr is None:
            object.__setattr__(self, "gate_lr", self.lr)
        for name in ("lr", "gate_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("train_batch", "eval_batch", "num_epoch"):
            _check_int(name, getattr(self, name), minimum=1)
        for name in ("warmup_steps", "patience", "seed", "penalty_delay", "penalty_warmup", "target_warmup"):
            _check_int(name, getattr(self, name), minimum=0)
        _check_int("max_length", self.max_length, minimum=2)
        for name in ("weight_decay", "max_grad_norm", "penalty_scale"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.gate_init is not None and not math.isfinite(self.gate_init):
            raise ValueError(f"gate_init must be a finite logit or None, got {self.gate_init}")
        if self.init_std is not None and not (math.isfinite(self.init_std) and self.init_std >= 0):
            raise ValueError(f"init_std must be a finite number >= 0 or None (the spec's 1e-3), got {self.init_std}")
        if self.gate_noise not in GATE_NOISE:
            raise ValueError(f"unknown gate_noise {self.gate_noise!r}; choose one of {GATE_NOISE}")
        if self.gate_noise_seed is not None:
            _check_int("gate_noise_seed", self.gate_noise_seed, minimum=0)
            if self.gate_noise == "off":
                raise ValueError("gate_noise_seed seeds the gates' Hard-Concrete noise, which gate_noise 'off' "
                                 "switches off: drop one of them")
        if self.target_heads is not None and not _is_head_count_or_share(self.target_heads):
            raise ValueError("target_heads must be a number of heads (an integer >= 1) or a share of the edited "
                             f"heads in (0, 1), such as 0.3; got {self.target_heads!r}")
        if self.keep_heads is not None and not _is_head_count_or_share(self.keep_heads):
            raise ValueError("keep_heads must be a number of heads (an integer >= 1) or a share of the edited "
                             f"heads in (0, 1), such as 0.3; got {self.keep_heads!r}")
        if not self.target_lr > 0:
            raise ValueError(f"target_lr must be > 0, got {self.target_lr}")
        if self.gate_scheduler not in SCHEDULES:
            raise ValueError(f"unknown gate_scheduler {self.gate_scheduler!r}; choose one of {SCHEDULES}")
        if not 0 <= self.gate_lambda <= 1:
            raise ValueError(f"gate_lambda must be in [0, 1], got {self.gate_lambda}")
        if not isinstance(self.group_by_length, bool):
            raise TypeError(f"group_by_length must be True or False, got {self.group_by_length!r}")
        if self.save_strategy not in SAVE_STRATEGIES:
            raise ValueError(f"unknown save_strategy {self.save_strategy!r}; choose one of {SAVE_STRATEGIES}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        check_known_fields(cls, data)
        return cls(**data)


def parse_target_heads(text: str | int | float) -> int | float:
    """``--target_heads`` from the command line or a sweep file: a number of heads (27) or a share (0.3)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return text
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            continue
    raise argparse.ArgumentTypeError(f"expected a number of heads (27) or a share such as 0.3, got {text!r}")


def _is_head_count_or_share(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return (isinstance(value, int) and value >= 1) or (isinstance(value, float) and 0 < value < 1)


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
