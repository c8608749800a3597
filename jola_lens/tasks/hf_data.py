"""Reading Hugging Face datasets: copies saved to disk (the embedded data) and the hub (fails fast offline)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}


class HubUnavailableError(ConnectionError):
    """A hub dataset could not be loaded (offline mode, no network, unknown id, ...)."""


@functools.lru_cache(maxsize=32)
def read_saved_split(path: Path) -> tuple[dict, ...]:
    """The rows of a dataset saved with `save_to_disk` (one split folder)."""
    import datasets

    if not (path / "state.json").exists():
        raise FileNotFoundError(f"{path} is not a saved dataset split (no state.json)")
    return tuple(datasets.load_from_disk(str(path)).to_list())


@functools.lru_cache(maxsize=32)
def read_hub_split(dataset_id: str, config: str | None, split: str) -> tuple[dict, ...]:
    """The rows of one split of a hub dataset. Raises HubUnavailableError at once when HF_HUB_OFFLINE or
    HF_DATASETS_OFFLINE is set, and wraps any loading failure into one naming the dataset."""
    advice = ("Use local files instead (source='local' with data_dir=... or $JOLA_DATA_DIR), or "
              "source='embedded' for the tasks that have an embedded copy.")
    label = f"{dataset_id}" + (f" ({config})" if config else "") + f" split {split!r}"
    for var in OFFLINE_ENV:
        if os.environ.get(var, "").strip().lower() in _TRUE:
            raise HubUnavailableError(f"cannot load hub dataset {label}: {var} is set (offline mode). {advice}")
    import datasets

    try:
        return tuple(datasets.load_dataset(dataset_id, config, split=split).to_list())
    except Exception as exc:  # network, auth, missing-id and script errors all surface differently
        raise HubUnavailableError(f"cannot load hub dataset {label}: {type(exc).__name__}: {exc}. {advice}") from exc
