"""The sweep table: trials.csv (every trial: settings that vary, status, times, error) and results.csv (finished
trials: settings that vary and their numbers), both rewritten atomically whenever a trial changes state."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jola_lens import atomic
from jola_lens.run_folder import flatten
from jola_lens.sweep.folder import SweepFolder
from jola_lens.sweep.spec import Trial
from jola_lens.sweep.worker import TrialReport

STATUSES = ("pending", "running", "done", "failed", "interrupted")
TRAINING_FIELDS = ("best_val_loss", "best_epoch", "epochs", "steps", "stop_reason", "train_seconds",
                   "trainable_parameters")


@dataclass
class TrialRow:
    """One trial in the table."""

    name: str
    settings: dict[str, Any]
    status: str = "pending"
    started: str = ""
    finished: str = ""
    seconds: float | None = None
    worker: str = ""
    resumed: bool | None = None
    reused_model: bool | None = None
    error: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


def result_numbers(metrics: dict[str, Any]) -> dict[str, Any]:
    """The numbers of metrics.json worth a column: training summary, heads kept per kind, test metrics."""
    training = metrics.get("training") or {}
    evaluation = metrics.get("evaluation") or {}
    numbers = {f"train.{k}": training.get(k) for k in TRAINING_FIELDS if k in training}
    numbers |= {f"heads_kept.{kind}": counts["kept"] for kind, counts in (training.get("heads") or {}).items()}
    if evaluation:
        numbers |= {"test.n": evaluation.get("n"), "test.seconds": evaluation.get("seconds")}
        numbers |= flatten(evaluation.get("results") or {}, "metric.")
    return numbers


class SweepTable:
    """The rows of every trial of a sweep, in trial order; :meth:`write` rewrites both CSV files."""

    def __init__(self, folder: SweepFolder, trials: list[Trial], varying: tuple[str, ...]) -> None:
        self.folder = folder
        self.varying = varying
        self.rows = {t.name: TrialRow(t.name, {k: t.settings.get(k) for k in varying}) for t in trials}
        self._keep_earlier_times()

    def _keep_earlier_times(self) -> None:
        """Times and worker of the trials a previous session finished (their run folders hold the rest)."""
        if not self.folder.trials_csv.is_file():
            return
        with open(self.folder.trials_csv, newline="", encoding="utf-8") as handle:
            for saved in csv.DictReader(handle):
                row = self.rows.get(saved.get("trial", ""))
                if row is None or saved.get("status") != "done":
                    continue
                row.started, row.finished, row.worker = saved["started"], saved["finished"], saved["worker"]
                row.seconds = float(saved["seconds"]) if saved.get("seconds") else None
                row.resumed = saved.get("resumed") == "True"
                row.reused_model = saved.get("reused_model") == "True"

    def mark_done_earlier(self, name: str, run_dir: Path) -> None:
        row = self.rows[name]
        row.status = "done"
        path = run_dir / "metrics.json"
        row.metrics = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def start(self, name: str, started: str) -> None:
        row = self.rows[name]
        row.status, row.started, row.finished, row.seconds, row.error = "running", started, "", None, ""

    def finish(self, report: TrialReport) -> None:
        row = self.rows[report.name]
        row.status, row.started, row.finished = report.status, report.started or row.started, report.finished
        row.seconds, row.worker, row.resumed, row.reused_model = (report.seconds, report.worker, report.resumed,
                                                                  report.reused_model)
        row.error, row.metrics = report.error or "", report.metrics

    def interrupt(self, name: str) -> None:
        row = self.rows[name]
        row.status, row.error = "interrupted", "stopped by Ctrl-C; the next run of the sweep resumes it"

    def counts(self) -> dict[str, int]:
        return {status: sum(row.status == status for row in self.rows.values()) for status in STATUSES}

    def trial_records(self) -> list[dict[str, Any]]:
        return [{"trial": r.name, "status": r.status, **r.settings, "started": r.started, "finished": r.finished,
                 "seconds": None if r.seconds is None else round(r.seconds, 2), "worker": r.worker,
                 "resumed": r.resumed, "reused_model": r.reused_model, "error": r.error,
                 "run_dir": os.path.relpath(self.folder.run_dir(r.name), self.folder.root)}
                for r in self.rows.values()]

    def result_records(self) -> list[dict[str, Any]]:
        return [{"trial": r.name, **r.settings, "seconds": None if r.seconds is None else round(r.seconds, 2),
                 **result_numbers(r.metrics)} for r in self.rows.values() if r.status == "done"]

    def write(self) -> None:
        atomic.write_text(self.folder.trials_csv, _csv(self.trial_records()))
        atomic.write_text(self.folder.results_csv, _csv(self.result_records()))


def _csv(records: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(key for record in records for key in record)) or ["trial"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in record.items()} for record in records)
    return out.getvalue()
