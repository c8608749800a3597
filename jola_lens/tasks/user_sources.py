"""Where a user's data comes from, read into one `Table`: a .csv/.tsv/.json/.jsonl/.parquet file, a folder
written by `datasets.save_to_disk`, a hub dataset `hf:NAME[:CONFIG][@SPLIT]`, a `datasets.Dataset` /
`DatasetDict`, or a list of dicts.

Splits of a DatasetDict (and of a hub dataset named without a split) become each row's `split` field; split names
other than train / validation (valid, val, dev) / test are left out, and so is a split whose class labels are
all -1 (the hub's unlabelled test splits). `datasets.ClassLabel` columns keep their names.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jola_lens.tasks.files import RECORD_SUFFIXES, BadRecordError, Record, read_header, read_records
from jola_lens.tasks.hf_data import is_saved_dataset, load_hub_dataset, load_saved_dataset

logger = logging.getLogger(__name__)

HUB_PREFIX = "hf:"
SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
                 "val": "validation", "dev": "validation", "test": "test"}
FORMATS_TEXT = "CSV or TSV with a header line, a JSON array, JSON lines, Parquet, or a save_to_disk folder"

DataLike = str | os.PathLike | Any  # a path, "hf:NAME", a datasets.Dataset / DatasetDict, or a list of dicts


@dataclass(frozen=True)
class Table:
    """Records read from one source: `origin` names it in messages, `columns` are the fields found (in order),
    `class_names` the names of ClassLabel columns."""

    origin: str
    records: tuple[Record, ...]
    columns: tuple[str, ...]
    class_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def parse_hub_reference(text: str) -> tuple[str, str | None, str | None]:
    """("glue", "sst2", "validation") for "hf:glue:sst2@validation"; the config and split are optional."""
    body = text.removeprefix(HUB_PREFIX)
    body, _, split = body.partition("@")
    name, _, config = body.partition(":")
    if not name.strip():
        raise ValueError(f"{text!r}: expected hf:NAME[:CONFIG][@SPLIT], e.g. hf:stanfordnlp/imdb or "
                         "hf:nyu-mll/glue:sst2@validation")
    return name.strip(), config.strip() or None, split.strip() or None


def hub_reference(name: str, config: str | None = None, split: str | None = None) -> str:
    """The inverse of `parse_hub_reference`."""
    return f"{HUB_PREFIX}{name}" + (f":{config}" if config else "") + (f"@{split}" if split else "")


def is_user_data(name: str) -> bool:
    """Whether a task name means user data: hf:..., file:..., a data file name, or a save_to_disk folder."""
    if name.startswith((HUB_PREFIX, "file:")):
        return True
    path = Path(name).expanduser()
    return path.suffix.lower() in RECORD_SUFFIXES or is_saved_dataset(path)


def read_table(data: DataLike) -> Table:
    """All records of `data` (see the module docstring); FileNotFoundError / BadRecordError saying what to do."""
    if isinstance(data, str) and data.startswith(HUB_PREFIX):
        name, config, split = parse_hub_reference(data)
        folder = name.replace("/", "-") + (f"-{config}" if config else "")
        arguments = repr(name) + (f", {config!r}" if config else "")
        advice = (f"Where the hub is reachable, save it once with python -c \"import datasets; "
                  f"datasets.load_dataset({arguments}).save_to_disk('{folder}')\" and pass --task {folder} "
                  "(or export it to a CSV/JSONL file).")
        return _from_dataset(load_hub_dataset(name, config, split, advice), hub_reference(name, config, split))
    if isinstance(data, (str, os.PathLike)):
        text = str(data)
        path = Path(text.removeprefix("file:")).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist. Pass a data file ({FORMATS_TEXT}) or hf:NAME.")
        if path.is_dir():
            return _from_dataset(load_saved_dataset(path), str(path))
        return _from_file(path)
    if isinstance(data, Mapping) or hasattr(data, "features"):
        return _from_dataset(data, type(data).__name__)
    return _table(type(data).__name__, tuple(Record(f"row {i}", row) for i, row in enumerate(data)))


def _from_file(path: Path) -> Table:
    if path.suffix.lower() not in RECORD_SUFFIXES:
        raise ValueError(f"{path}: unsupported file type {path.suffix!r}; use {FORMATS_TEXT} "
                         f"({', '.join(RECORD_SUFFIXES)})")
    records = read_records(path)
    header = read_header(path) if not records else ()
    if header:
        raise BadRecordError(f"{path} has a header (columns: {', '.join(header)}) but no rows")
    return _table(str(path), records)


def _class_names(features: Any) -> dict[str, tuple[str, ...]]:
    if not features:
        return {}
    import datasets

    return {name: tuple(feature.names) for name, feature in features.items()
            if isinstance(feature, datasets.ClassLabel)}


def _from_dataset(data: Any, origin: str) -> Table:
    """A datasets.Dataset, or a DatasetDict / mapping of splits (each row gets its split as a `split` field)."""
    if not isinstance(data, Mapping):
        names = _class_names(getattr(data, "features", None))
        return _table(origin, tuple(Record(f"row {i}", row) for i, row in enumerate(_rows(data))), names)
    records: list[Record] = []
    names: dict[str, tuple[str, ...]] = {}
    columns: dict[str, None] = {}
    for split, rows in data.items():
        alias = SPLIT_ALIASES.get(str(split).lower())
        split_names = _class_names(getattr(rows, "features", None))
        rows = _rows(rows)
        if alias is None:
            logger.info("%s: split %r left out (only train, validation and test are used)", origin, split)
            continue
        unlabelled = [column for column in split_names if rows and all(row.get(column) == -1 for row in rows)]
        if unlabelled:
            logger.info("%s: split %r left out: its %s labels are all -1 (no labels)", origin, split,
                        ", ".join(unlabelled))
            continue
        names |= split_names
        columns.update(dict.fromkeys(key for row in rows for key in row))
        records += [Record(f"{split} row {i}", dict(row, split=alias)) for i, row in enumerate(rows)]
    return _table(origin, tuple(records), names, tuple(columns))


def _rows(data: Any) -> list[dict]:
    return data.to_list() if hasattr(data, "to_list") else [dict(row) for row in data]


def _table(origin: str, records: tuple[Record, ...], class_names: Mapping[str, tuple[str, ...]] | None = None,
           columns: tuple[str, ...] | None = None) -> Table:
    """A Table; `columns` default to every field of the records, in order of appearance."""
    if not records:
        raise BadRecordError(f"{origin} is empty: no records. Expected {FORMATS_TEXT}.")
    if columns is None:
        columns = tuple(dict.fromkeys(key for record in records if isinstance(record.data, Mapping)
                                      for key in record.data))
    return Table(origin, records, columns, dict(class_names or {}))
