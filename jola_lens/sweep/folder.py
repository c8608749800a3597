"""The sweep folder: its layout, the trials it holds, and what a changed sweep file may do to it.

    <sweep>/sweep.json      the trials (name and settings) and the sweep file's text, as last run
    <sweep>/sweep.yaml      a copy of that sweep file
    <sweep>/trials.csv      one row per trial: settings that vary, status, times, worker, error
    <sweep>/results.csv     one row per finished trial: settings that vary, training and test numbers
    <sweep>/results.jsonl   the line `jola-lens train` appends per run (--output_file_name)
    <sweep>/runs/<trial>/   each trial's run folder, exactly what `jola-lens train` writes, plus trial.log
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jola_lens import atomic
from jola_lens.sweep.spec import SweepFile, Trial, unique_names

logger = logging.getLogger(__name__)

STATE_NAME = "sweep.json"
FORMAT = 1


class SweepFolderError(ValueError):
    """The sweep folder cannot take this sweep (another sweep file, not a sweep folder, ...)."""


@dataclass(frozen=True)
class SweepFolder:
    root: Path

    def __init__(self, root: str | os.PathLike) -> None:
        object.__setattr__(self, "root", Path(root).resolve())

    state = property(lambda self: self.root / STATE_NAME)
    sweep_copy = property(lambda self: self.root / "sweep.yaml")
    trials_csv = property(lambda self: self.root / "trials.csv")
    results_csv = property(lambda self: self.root / "results.csv")
    results_jsonl = property(lambda self: self.root / "results.jsonl")
    runs_dir = property(lambda self: self.root / "runs")

    def run_dir(self, name: str) -> Path:
        return self.runs_dir / name

    def own_paths(self) -> list[Path]:
        return [self.state, self.sweep_copy, self.trials_csv, self.results_csv, self.results_jsonl, self.runs_dir]

    def read_state(self) -> dict[str, Any] | None:
        if not self.state.is_file():
            return None
        try:
            return json.loads(self.state.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise SweepFolderError(f"{self.state} is damaged ({error}); pass --overwrite to start the sweep over") \
                from error

    def write_state(self, sweep: SweepFile, trials: list[Trial]) -> None:
        atomic.write_json(self.state, {"format": FORMAT, "sweep_file": str(sweep.path.resolve()),
                                       "trials": [{"name": t.name, "settings": t.settings} for t in trials]})
        atomic.write_text(self.sweep_copy, sweep.text)


def _key(settings: dict[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True)


def prepare_sweep_folder(folder: SweepFolder, sweep: SweepFile, *, extend: bool = False,
                         overwrite: bool = False) -> list[Trial]:
    """The trials to hold in ``folder`` for ``sweep``, with their folder names (earlier names kept).

    A new folder takes the sweep. A folder holding the same trials resumes them. A sweep file whose trials
    changed is refused, unless ``extend`` (keep every earlier trial, add the new ones) or ``overwrite`` (delete
    the sweep's own files and start over).
    """
    if extend and overwrite:
        raise SweepFolderError("--extend and --overwrite contradict each other; pass one")
    root = folder.root
    if root.exists() and not root.is_dir():
        raise SweepFolderError(f"sweep folder {root} is a file, not a folder")
    saved = folder.read_state()
    if saved is None and root.is_dir() and any(root.iterdir()):
        raise SweepFolderError(f"{root} is not empty and holds no sweep ({STATE_NAME} is missing); choose a new or "
                               "empty folder")
    if overwrite and saved is not None:
        logger.warning("--overwrite: deleting the earlier sweep in %s", root)
        for path in folder.own_paths():
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        saved = None
    trials = list(sweep.trials)
    if saved is not None:
        earlier = [Trial(t["name"], t["settings"], 0) for t in saved["trials"]]
        by_key = {_key(t.settings): t for t in earlier}
        now = {_key(t.settings) for t in trials}
        added = [t for t in trials if _key(t.settings) not in by_key]
        removed = [t for t in earlier if _key(t.settings) not in now]
        if (added or removed) and not extend:
            raise SweepFolderError(
                f"{root} holds a sweep with other trials than {sweep.path}: " + "; ".join(
                    part for part in (_listed("new", added), _listed("no longer in the file", removed)) if part)
                + ". Pass --extend to keep the finished trials and add the new ones, --overwrite to start over, or "
                  "another --output_dir.")
        if extend and removed:
            logger.warning("--extend keeps %d trial(s) no longer in the sweep file: %s", len(removed),
                           ", ".join(t.name for t in removed))
        kept = earlier if extend else [by_key[_key(t.settings)] for t in trials]
        names = unique_names([t.name for t in added], taken={t.name for t in kept})
        trials = kept + [Trial(name, t.settings, t.line) for name, t in zip(names, added)]
    root.mkdir(parents=True, exist_ok=True)
    folder.write_state(sweep, trials)
    return trials


def _listed(what: str, trials: list[Trial]) -> str:
    if not trials:
        return ""
    names = ", ".join(t.name for t in trials[:5]) + (", ..." if len(trials) > 5 else "")
    return f"{len(trials)} trial(s) {what} ({names})"


def sweep_run_folders(path: str | os.PathLike) -> list[Path] | None:
    """The run folders of a sweep folder's trials that hold an edit, in trial order; None when ``path`` is not a
    sweep folder (so `jola-lens analyze SWEEP_DIR` can expand it)."""
    folder = SweepFolder(path)
    state = folder.read_state() if folder.root.is_dir() else None
    if state is None:
        return None
    runs = [folder.run_dir(t["name"]) for t in state["trials"]]
    return [run for run in runs if (run / "config.json").is_file() and (run / "edit").is_dir()]
