"""Sweeps: many ``jola-lens train`` runs (tasks x seeds x settings x models) from one YAML file, on Ray.

``read_sweep`` checks a sweep file and expands its trials (no Ray needed); ``run_sweep`` runs them (Ray: the
optional extra ``pip install "jola_lens[sweep]"``). See :mod:`jola_lens.sweep.spec` for the file format and
:mod:`jola_lens.sweep.folder` for the sweep folder's layout.
"""

from __future__ import annotations

from typing import Any

from jola_lens.sweep.folder import SweepFolder, SweepFolderError, sweep_run_folders
from jola_lens.sweep.spec import SweepFile, SweepFileError, Trial, read_sweep

_EXECUTOR = ("run_sweep", "SweepResult", "SweepInterrupted")
__all__ = ["SweepFile", "SweepFileError", "SweepFolder", "SweepFolderError", "SweepInterrupted", "SweepResult",
           "Trial", "read_sweep", "run_sweep", "sweep_run_folders"]


def __getattr__(name: str) -> Any:
    """The executor's names load on first use (they import the training pipeline)."""
    if name in _EXECUTOR:
        from jola_lens.sweep import executor

        return getattr(executor, name)
    raise AttributeError(f"module 'jola_lens.sweep' has no attribute {name!r}")
