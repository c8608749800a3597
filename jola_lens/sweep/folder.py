"""The sweep folder: its layout, the trials it holds, and what a changed sweep file may do to it.

    <sweep>/sweep.json      the trials (name and settings), where their run folders are, as last run
    <sweep>/sweep.yaml      a copy of that sweep file
    <sweep>/trials.csv      one row per trial: settings that vary, status, times, worker, error
    <sweep>/results.csv     one row per finished trial: settings that vary, training and test numbers
    <sweep>/results.jsonl   the line `jola-lens train` appends per run (--output_file_name)
    <sweep>/runs/<trial>/   each trial's run folder, exactly what `jola-lens train` writes, plus trial.log

``runs_dir`` can put the run folders elsewhere (a study keeps its own layout); sweep.json records where.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jola_lens import atomic
from jola_lens.run_folder import RunFolder
from jola_lens.sweep.spec import SweepFile, Trial, unique_names

logger = logging.getLogger(__name__)

STATE_NAME = "sweep.json"
LOG_NAME = "trial.log"
FORMAT = 1


class SweepFolderError(ValueError):
    """The sweep folder cannot take this sweep (another sweep file, not a sweep folder, ...)."""


@dataclass(frozen=True)
class SweepFolder:
    root: Path
    runs_dir: Path

    def __init__(self, root: str | os.PathLike, runs_dir: str | os.PathLike | None = None) -> None:
        """``runs_dir`` None: the one sweep.json names, else ``<root>/runs``."""
        object.__setattr__(self, "root", Path(root).resolve())
        if runs_dir is None:
            saved = self.read_state() if self.state.is_file() else None
            runs_dir = (saved or {}).get("runs_dir") or self.root / "runs"
        object.__setattr__(self, "runs_dir", Path(runs_dir).resolve())

    state = property(lambda self: self.root / STATE_NAME)
    sweep_copy = property(lambda self: self.root / "sweep.yaml")
    trials_csv = property(lambda self: self.root / "trials.csv")
    results_csv = property(lambda self: self.root / "results.csv")
    results_jsonl = property(lambda self: self.root / "results.jsonl")

    def run_dir(self, name: str) -> Path:
        return self.runs_dir / name

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
                                       "runs_dir": str(self.runs_dir),
                                       "trials": [{"name": t.name, "settings": t.settings, "named": t.named}
                                                  for t in trials]})
        atomic.write_text(self.sweep_copy, sweep.text)

    def clear(self, names: list[str]) -> None:
        """Delete the sweep's own files and what the named trials wrote into their run folders (nothing else)."""
        for path in (self.state, self.sweep_copy, self.trials_csv, self.results_csv, self.results_jsonl):
            path.unlink(missing_ok=True)
        for name in names:
            run = RunFolder(self.run_dir(name))
            run.clear()
            (run.root / LOG_NAME).unlink(missing_ok=True)
            for folder in (run.root, *run.root.parents):
                if folder == self.runs_dir or not folder.is_dir() or any(folder.iterdir()):
                    break
                folder.rmdir()


def _key(settings: dict[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True)


def prepare_sweep_folder(folder: SweepFolder, sweep: SweepFile, *, extend: bool = False, overwrite: bool = False,
                         finished: Callable[[Trial], bool] = lambda trial: False) -> list[Trial]:
    """The trials to hold in ``folder`` for ``sweep``, with their folder names (earlier names kept).

    A new folder takes the sweep. A folder holding the same trials resumes them. A sweep file whose trials
    changed is refused, unless ``extend`` (keep the earlier trials that are in the file or ``finished``, add the
    new ones) or ``overwrite`` (delete the sweep's own files and its trials' run files, start over).
    """
    if extend and overwrite:
        raise SweepFolderError("--extend and --overwrite contradict each other; pass one")
    root = folder.root
    if root.exists() and not root.is_dir():
        raise SweepFolderError(f"sweep folder {root} is a file, not a folder")
    saved = folder.read_state()
    if saved is None and root.is_dir() and any(root.iterdir()) and not overwrite:
        raise SweepFolderError(f"{root} is not empty and holds no sweep ({STATE_NAME} is missing); choose a new or "
                               "empty folder")
    if overwrite:
        logger.warning("--overwrite: deleting the earlier sweep in %s and its trials' run files", root)
        folder.clear(sorted({t.name for t in sweep.trials} | {t["name"] for t in (saved or {}).get("trials", [])}))
        saved = None
    trials = list(sweep.trials)
    if saved is not None:
        earlier = [Trial(t["name"], t["settings"], 0, t.get("named", False)) for t in saved["trials"]]
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
        if extend:
            named = {t.name for t in added if t.named}
            kept_removed = [t for t in removed if finished(t) and t.name not in named]
            if len(kept_removed) < len(removed):
                logger.warning("--extend drops %d unfinished trial(s) no longer in the sweep file",
                               len(removed) - len(kept_removed))
            keep = {_key(t.settings) for t in kept_removed} | now
            kept = [t for t in earlier if _key(t.settings) in keep]
        else:
            kept = [by_key[_key(t.settings)] for t in trials]
        taken = {t.name for t in kept}
        fresh = unique_names([t.name for t in added if not t.named], taken=taken | {t.name for t in added if t.named})
        trials = kept + [t if t.named else Trial(fresh.pop(0), t.settings, t.line) for t in added]
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
    if not (Path(path) / STATE_NAME).is_file():
        return None
    folder = SweepFolder(path)
    runs = [RunFolder(folder.run_dir(t["name"])) for t in folder.read_state()["trials"]]
    return [run.root for run in runs if run.is_run()]
