"""Reading Hugging Face datasets: copies saved to disk (the embedded data, a user's `save_to_disk` folder) and
the hub, which fails at once when offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE set, or the hub unreachable)."""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
HUB_ENDPOINT_ENV = "HF_ENDPOINT"
DEFAULT_ENDPOINT = "https://huggingface.co"
CONNECT_TIMEOUT = 3.0
TASK_ADVICE = ("Use local files instead (source='local' with data_dir=... or $JOLA_DATA_DIR), or "
               "source='embedded' for the tasks that have an embedded copy.")
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


def is_saved_dataset(path: Path) -> bool:
    """Whether `path` is a folder written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`."""
    return path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file())


def load_saved_dataset(path: Path) -> Any:
    """The `datasets.Dataset` or `DatasetDict` saved in `path`."""
    import datasets

    if not is_saved_dataset(path):
        raise FileNotFoundError(f"{path} is a folder but not one written by datasets' save_to_disk (no state.json "
                                "or dataset_dict.json in it); pass a data file or such a folder")
    return datasets.load_from_disk(str(path))


def hub_offline_reason() -> str | None:
    """Why the hub cannot be reached now (an offline variable set, or no connection within a few seconds), or
    None."""
    for var in OFFLINE_ENV:
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return f"{var} is set (offline mode)"
    endpoint = urlparse(os.environ.get(HUB_ENDPOINT_ENV, DEFAULT_ENDPOINT))
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        return f"the hub ({host}) cannot be reached: {exc}"
    return None


def load_hub_dataset(dataset_id: str, config: str | None, split: str | None, advice: str) -> Any:
    """`datasets.load_dataset(dataset_id, config, split=split)` (a DatasetDict when `split` is None). Raises
    HubUnavailableError at once when offline, and wraps any loading failure into one naming the dataset and
    ending with `advice`."""
    label = f"{dataset_id}" + (f" ({config})" if config else "") + (f" split {split!r}" if split else "")
    reason = hub_offline_reason()
    if reason is not None:
        raise HubUnavailableError(f"cannot load hub dataset {label}: {reason}. {advice}")
    import datasets

    try:
        return datasets.load_dataset(dataset_id, config, split=split)
    except Exception as exc:  # network, auth, missing-id and script errors all surface differently
        raise HubUnavailableError(f"cannot load hub dataset {label}: {type(exc).__name__}: {exc}. {advice}") from exc


@functools.lru_cache(maxsize=32)
def read_hub_split(dataset_id: str, config: str | None, split: str) -> tuple[dict, ...]:
    """The rows of one split of a hub dataset (see `load_hub_dataset`)."""
    return tuple(load_hub_dataset(dataset_id, config, split, TASK_ADVICE).to_list())
