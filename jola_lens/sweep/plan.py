"""What one trial runs: the ``jola-lens train`` settings of a grid point, its run folder, and whether it is done."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jola_lens.methods import MethodConfig
from jola_lens.run_folder import RunFolder
from jola_lens.sweep.spec import Trial, trial_args
from jola_lens.training.config import TrainConfig
from jola_lens.training.pipeline import RunSpec


@dataclass(frozen=True)
class TrialPlan:
    """Everything a worker needs to run a trial with ``train_run``, as ``jola-lens train`` would."""

    name: str
    run_dir: Path
    results_file: Path
    spec: RunSpec
    config: TrainConfig
    method: MethodConfig
    run_mode: str
    scoring: str
    limit: int | None

    @classmethod
    def build(cls, trial: Trial, run_dir: Path, results_file: Path) -> TrialPlan:
        from jola_lens.cli import train_settings
        from jola_lens.methods.cli_flags import method_config

        args = trial_args(trial.settings)
        spec, config = train_settings(args)
        return cls(trial.name, run_dir, results_file, spec, config, method_config(args), args.run_mode,
                   args.scoring, args.limit)

    @property
    def model_key(self) -> tuple:
        """Trials with the same key load the same base model (a worker reuses it between them)."""
        return self.spec.model, self.spec.dtype, repr(self.spec.device_map)

    def identity(self) -> dict[str, Any]:
        """The run identity ``train_run`` records in config.json (and compares before resuming)."""
        return self.spec.identity(self.config) | self.method.identity()

    def _saved_metrics(self) -> dict[str, Any] | None:
        """metrics.json of the run folder when it holds this very run, trained; else None."""
        folder = RunFolder(self.run_dir)
        if not folder.config.is_file() or not folder.metrics.is_file():
            return None
        try:
            metrics = json.loads(folder.metrics.read_text(encoding="utf-8"))
            if folder.settings_diff(self.identity()) or "training" not in metrics:
                return None
        except json.JSONDecodeError:
            return None
        return metrics

    def trained(self) -> bool:
        """True when the run folder holds this very run, trained, with its edit kept (it can be scored again)."""
        return self._saved_metrics() is not None and RunFolder(self.run_dir).edit_dir.is_dir()

    def finished(self) -> bool:
        """True when the run folder holds this very run, trained (and scored the same way, for train_eval)."""
        metrics = self._saved_metrics()
        if metrics is None:
            return False
        if self.run_mode != "train_eval":
            return True
        evaluation = metrics.get("evaluation") or {}
        return evaluation.get("scoring") == self.scoring and evaluation.get("limit") == self.limit
