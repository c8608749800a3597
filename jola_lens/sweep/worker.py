"""What runs inside a sweep worker: trials one after another through ``train_run``, each logging to its run
folder's trial.log, the base model kept loaded for the next trial that uses it."""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jola_lens.models import reusing_models
from jola_lens.run_folder import RunFolder
from jola_lens.sweep.folder import LOG_NAME
from jola_lens.sweep.model_cache import ModelCache
from jola_lens.sweep.plan import TrialPlan
from jola_lens.training.checkpoint import has_checkpoint

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass
class TrialReport:
    """How a trial ended: ``status`` 'done' (with metrics.json's sections) or 'failed' (with the error)."""

    name: str
    status: str
    started: str
    finished: str
    seconds: float
    worker: str
    resumed: bool = False
    reused_model: bool = False
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class TrialLog(logging.Handler):
    """Writes a trial's log records to ``<run>/trial.log``.

    ``train_run`` refuses a folder that holds files but no run yet, so records wait in memory until the run's
    config.json exists; :meth:`close` writes what is still waiting (a trial that failed before that point). A
    trial.log left alone by such a failure is read back and removed before the trial runs again.
    """

    def __init__(self, run_dir: Path) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter(LOG_FORMAT))
        self.run = RunFolder(run_dir)
        self.path = run_dir / LOG_NAME
        self._waiting: list[str] = []
        if self.path.is_file() and not self.run.config.is_file():
            self._waiting.append(self.path.read_text(encoding="utf-8").rstrip("\n"))
            self.path.unlink()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._waiting.append(self.format(record))
            if self.run.config.is_file():
                self._flush()
        except Exception:  # logging must never break the trial
            self.handleError(record)

    def _flush(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in self._waiting))
        self._waiting.clear()

    def close(self) -> None:
        if self._waiting:
            self._flush()
        super().close()


class TrialRunner:
    """One sweep worker (a Ray actor): ``threads`` torch threads, and the last base model it loaded."""

    def __init__(self, threads: int | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
            os.environ["OMP_NUM_THREADS"] = str(threads)
        self.cache = ModelCache()
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def ready(self) -> str:
        """Answers once the worker has started (its imports done)."""
        return self.name

    def run(self, plan: TrialPlan) -> TrialReport:
        """Train (and score) one trial into its run folder; failures come back as a report, not an exception."""
        from jola_lens.training.pipeline import train_run

        started, start, hits = now(), time.monotonic(), self.cache.hits
        log = TrialLog(plan.run_dir)
        package = logging.getLogger("jola_lens")
        package.addHandler(log)
        level = package.level
        package.setLevel(logging.INFO)
        try:
            logger.info("trial %s on worker %s: %s", plan.name, self.name, plan.identity())
            # a trained run whose test scoring changed (--limit, --scoring) is scored again, not retrained
            run_mode = "eval" if plan.run_mode == "train_eval" and plan.trained() else plan.run_mode
            with reusing_models(self.cache):
                outcome = train_run(plan.spec, plan.config, plan.run_dir, run_mode=run_mode,
                                    scoring=plan.scoring, limit=plan.limit, results_file=plan.results_file,
                                    overwrite=needs_fresh_start(plan), progress=False, method=plan.method)
            logger.info("trial %s done in %.1f s", plan.name, time.monotonic() - start)
            return TrialReport(plan.name, "done", started, now(), time.monotonic() - start, self.name,
                               resumed=outcome.resumed, reused_model=self.cache.hits > hits, metrics=outcome.metrics)
        except Exception as error:  # a failing trial must not stop the sweep
            logger.error("trial %s failed:\n%s", plan.name, traceback.format_exc())
            return TrialReport(plan.name, "failed", started, now(), time.monotonic() - start, self.name,
                               reused_model=self.cache.hits > hits, error=f"{type(error).__name__}: {error}")
        finally:
            package.removeHandler(log)
            package.setLevel(level)
            log.close()


def needs_fresh_start(plan: TrialPlan) -> bool:
    """True when the folder holds this trial's run, unfinished and unable to resume (no checkpoint: it failed
    early, or kept none); ``train_run`` then starts it over. A run with other settings is never deleted here:
    ``train_run`` refuses it, naming the settings that differ."""
    folder = RunFolder(plan.run_dir)
    if not folder.config.is_file() or folder.settings_diff(plan.identity()):
        return False
    return not any(has_checkpoint(f.checkpoint_dir) for f in (folder, *folder.stage_folders()))
