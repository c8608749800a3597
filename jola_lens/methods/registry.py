"""Which adapters a method trains, in which stages, and how a saved adapter folder is loaded back."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jola_lens.methods.base import Adapter, read_method_record
from jola_lens.methods.config import MethodConfig, MethodFlagError
from jola_lens.methods.jola import JoLAAdapter
from jola_lens.methods.lofit import OFFSETS, SCALING, LoFiTOffsets, LoFiTScaling
from jola_lens.methods.peft_adapters import PeftAdapter

if TYPE_CHECKING:
    from jola_lens.backends.route import Route

GATE_TRAIN_FIELDS = ("gate_lr", "gate_scheduler", "gate_lambda", "penalty_scale", "gate_init", "penalty_delay",
                     "penalty_warmup", "target_heads", "target_warmup", "target_lr", "keep_heads", "gate_noise",
                     "gate_noise_seed")
"""TrainConfig fields that act on JoLA's gates (meaningless for a method without them)."""
HEAD_TRAIN_FIELDS = ("heads", "init_std")
"""TrainConfig fields that shape a JoLA edit's heads: its head set, its vectors' initial spread."""


@dataclass(frozen=True)
class Stage:
    """One training run of a method: ``folder`` is its sub-folder of the run folder (None: the run folder itself);
    ``train_overrides`` are TrainConfig fields this stage sets (LoFiT's offsets have their own lr)."""

    name: str
    folder: str | None = None
    train_overrides: dict[str, Any] = field(default_factory=dict)


def stages(config: MethodConfig) -> tuple[Stage, ...]:
    """The stages of ``config.method``, in order; the last one writes the run folder's own edit/."""
    if config.method == "lofit":
        settings = config.settings()
        return (Stage(SCALING, folder=SCALING),
                Stage(OFFSETS, train_overrides={"lr": settings["lofit_offset_lr"]}))
    return (Stage(config.method),)


def build_adapter(config: MethodConfig, backend: Route, *, seed: int | None, stage: str | None = None,
                  previous: Adapter | None = None, **jola_fields: Any) -> Adapter:
    """A fresh adapter for ``stage`` (default: the method's first) of ``config.method`` on ``backend``.

    ``jola_fields`` (JoLAConfig fields such as ``gate_init``, ``heads``) apply to JoLA only; ``previous`` is the
    trained adapter of the stage before (LoFiT's offsets need the scaling stage).
    """
    names = [s.name for s in stages(config)]
    stage = stage or names[0]
    if stage not in names:
        raise ValueError(f"--method {config.method} has stages {names}, not {stage!r}")
    settings = config.settings()
    if config.method == "jola":
        return JoLAAdapter.build(backend, seed=seed, settings=settings, **config.jola_fields, **jola_fields)
    given = [name for name, value in jola_fields.items() if value is not None]
    if given:
        raise MethodFlagError(f"{', '.join(given)} set JoLA edit fields, which --method {config.method} does not use")
    if config.method in ("lora", "ia3"):
        return PeftAdapter.build(backend, config.method, seed=seed, settings=settings)
    if stage == SCALING:
        return LoFiTScaling.build_stage(backend, seed=seed, settings=settings)
    return LoFiTOffsets.build_stage(backend, seed=seed, settings=settings, previous=previous)


def load_adapter(directory: str | os.PathLike, backend: Route) -> Adapter:
    """The adapter saved in ``directory`` (by :meth:`Adapter.save`, or a bare JoLA edit folder), on ``backend``,
    in eval mode."""
    directory = Path(directory)
    record = read_method_record(directory)
    if record is None:
        return JoLAAdapter.load_weights(directory, backend, {"ablation": "none"}).eval()
    method, settings = record["method"], record.get("settings", {})
    if method == "jola":
        adapter: Adapter = JoLAAdapter.load_weights(directory, backend, settings)
    elif method in ("lora", "ia3"):
        adapter = PeftAdapter.load_weights(directory, backend, method, settings)
    elif method == SCALING:
        adapter = LoFiTScaling.load_weights(directory, backend, settings)
    elif method == "lofit":
        adapter = LoFiTOffsets.load_weights(directory, backend, settings)
    else:
        raise ValueError(f"{directory}/method.json names method {method!r}, which this version cannot load")
    return adapter.eval()


def no_head_gates_reason(directory: str | os.PathLike) -> str | None:
    """Why the adapter saved in ``directory`` has no heads to analyse (LoRA, IA3), or None when it has a JoLA edit."""
    record = read_method_record(directory)
    method = record["method"] if record is not None else "jola"
    if method in ("lora", "ia3"):
        return (f"{directory} holds a --method {method} adapter: {method} changes weight matrices, not attention "
                "heads, so it has no head gates to analyse (analyze reads JoLA's gates and LoFiT's selected heads)")
    return None


def check_train_settings(config: MethodConfig, train: Any) -> None:
    """Refuse training settings that belong to JoLA's gates or head sets when ``config``'s method lacks them.

    ``train`` is a TrainConfig; a field counts as set when it differs from its default (``gate_lr``: from ``lr``).
    """
    defaults = {f.name: f.default for f in dataclasses.fields(train)}
    changed = [name for name in GATE_TRAIN_FIELDS + HEAD_TRAIN_FIELDS if name in defaults
               and getattr(train, name) != (train.lr if name == "gate_lr" else defaults[name])]
    if config.method == "jola":
        refused = [name for name in changed if name in GATE_TRAIN_FIELDS] if not config.gated else []
        why = "JoLA's gates, which --ablation no_gates switches off"
    else:
        refused = changed
        why = "JoLA's gates and head sets"
    if refused:
        flags = ", ".join(f"--{name}" for name in refused)
        raise MethodFlagError(f"{flags} belong{'s' if len(refused) == 1 else ''} to --method jola (they act on "
                              f"{why}), not to --method {config.method}{_ablation(config)}: drop "
                              f"{'it' if len(refused) == 1 else 'them'}")


def _ablation(config: MethodConfig) -> str:
    ablation = config.settings().get("ablation")
    return f" --ablation {ablation}" if ablation not in (None, "none") else ""
