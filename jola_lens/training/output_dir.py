"""Decide what to do with ``--output_dir``: start a run, resume it, or refuse (and say why)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from jola_lens.run_folder import RunFolder
from jola_lens.training.checkpoint import has_checkpoint

logger = logging.getLogger(__name__)


class OutputDirError(ValueError):
    """The output folder cannot be used for this run."""


def prepare_output_dir(folder: RunFolder, identity: dict[str, Any], *, overwrite: bool = False,
                       resume: bool = False) -> bool:
    """Make ``folder`` ready for a training run with settings ``identity``; True when it resumes one.

    An empty or missing folder starts a new run. A run folder with a resume checkpoint whose saved settings
    equal ``identity`` resumes (automatically, or as ``resume`` demands). Anything else is refused, naming the
    differing settings, unless ``overwrite`` (which deletes only a run folder's own files).
    """
    root = folder.root
    if root.exists() and not root.is_dir():
        raise OutputDirError(f"--output_dir {root} is a file, not a folder")
    is_run = folder.config.is_file()
    if root.is_dir() and any(root.iterdir()):
        if not is_run:
            raise OutputDirError(f"--output_dir {root} is not empty and holds no jola_lens run (no config.json); "
                                 "choose a new or empty folder")
        if overwrite:
            clear_run(folder)
        else:
            differences = folder.settings_diff(identity)
            if differences:
                raise OutputDirError(
                    f"--output_dir {root} holds a run with other settings ({'; '.join(differences)}). Repeat its "
                    "command to resume it, or pass --overwrite (or another --output_dir) to start a new run.")
            if not any(has_checkpoint(f.checkpoint_dir) for f in (folder, *folder.stage_folders())):
                raise OutputDirError(
                    f"--output_dir {root} holds a run without a resume checkpoint (trained with --save_strategy no, "
                    "or its checkpoint was removed). Pass --overwrite to train again, or evaluate it with "
                    f"`jola-lens eval --edit {root}`.")
            logger.info("resuming the run in %s", root)
            _check_writable(root)
            return True
    if resume:
        raise OutputDirError(f"--resume: there is no run to resume in {root}")
    _check_writable(root)
    return False


def _check_writable(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as error:
        raise OutputDirError(f"cannot write to --output_dir {root}: {error}") from error


def clear_run(folder: RunFolder) -> None:
    """Delete a run folder's own files, its stage folders included (and nothing else that may sit beside them)."""
    logger.warning("--overwrite: deleting the previous run in %s", folder.root)
    folder.clear()
