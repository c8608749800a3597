"""Train a method stage by stage: one Trainer per stage, each resumable on its own.

Single-stage methods (jola, lora, ia3) train straight into the run folder. LoFiT trains its scaling stage into the
sub-folder ``<run>/lofit_scaling/`` (a run folder of its own: edit/, train_log.jsonl, checkpoint/), then its
offsets stage into the run folder itself; a resumed run skips a finished stage and continues the unfinished one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from jola_lens.backends.route import Route
from jola_lens.methods import Adapter, MethodConfig, build_adapter, stages
from jola_lens.run_folder import RunFolder
from jola_lens.tasks.encoding import EncodedExample
from jola_lens.training.config import TrainConfig
from jola_lens.training.trainer import Trainer, TrainResult


def train_method(method: MethodConfig, backend: Route, train: Sequence[EncodedExample],
                 validation: Sequence[EncodedExample], config: TrainConfig, *, pad_token_id: int,
                 run: RunFolder | None = None, fingerprint: dict[str, Any] | None = None, progress: bool = True,
                 first: Adapter | None = None, **jola_fields: Any) -> tuple[TrainResult, dict[str, TrainResult]]:
    """Train every stage of ``method``; returns the last stage's result and the earlier stages' by name.

    ``first`` is the first stage's adapter when the caller has built it already (see :func:`first_adapter`);
    ``jola_fields`` (JoLAConfig fields such as ``gate_init``, ``heads``) go to JoLA's edit; None values are dropped.
    """
    plan = stages(method)
    jola_fields = {k: v for k, v in jola_fields.items() if v is not None}
    earlier: dict[str, TrainResult] = {}
    previous = None
    for index, stage in enumerate(plan):
        last = index == len(plan) - 1
        stage_run = run if last or run is None else run.stage(stage.folder)
        stage_fingerprint = dict(fingerprint or {}) | ({} if last else {"stage": stage.name})
        adapter = (first if index == 0 and first is not None else
                   build_adapter(method, backend, seed=config.seed, stage=stage.name, previous=previous,
                                 **jola_fields))
        result = Trainer(adapter, None, train, validation, dataclasses.replace(config, **stage.train_overrides),
                         pad_token_id=pad_token_id, device=backend.device, run=stage_run,
                         fingerprint=stage_fingerprint, progress=progress).fit()
        if not last:
            earlier[stage.name] = result
        previous = result.adapter
    return result, earlier
