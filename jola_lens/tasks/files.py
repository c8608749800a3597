"""Reading record files (JSON array, JSON lines, CSV) with record locations, and the bad-record policy."""

from __future__ import annotations

import csv
import functools
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

BAD_RECORD_POLICIES = ("stop", "skip")
T = TypeVar("T")


class BadRecordError(ValueError):
    """A record that cannot be turned into an example; the message names the file and the record."""


@dataclass(frozen=True)
class Record:
    """One raw record, where it sits in its file ("line 12", "record 3"), and a parse error if any."""

    where: str
    data: Any
    error: str | None = None


def check_policy(on_bad_record: str) -> str:
    if on_bad_record not in BAD_RECORD_POLICIES:
        raise ValueError(f"on_bad_record must be one of {BAD_RECORD_POLICIES}, got {on_bad_record!r}")
    return on_bad_record


def require_file(path: Path, hint: str) -> Path:
    """`path` if it exists, else FileNotFoundError naming it and how to fix it."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist. {hint}")
    return path


@functools.lru_cache(maxsize=16)
def read_records(path: Path) -> tuple[Record, ...]:
    """All records of a .json (array, or JSON lines), .jsonl or .csv file; cached per process."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".jsonl":
        return _read_jsonl(path)
    if suffix == ".json":
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg == "Extra data":  # several JSON documents: JSON lines under a .json name
                return _read_jsonl(path)
            raise BadRecordError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
        if not isinstance(data, list):
            raise BadRecordError(f"{path}: expected a JSON array of records, got {type(data).__name__}")
        return tuple(Record(f"record {i}", item) for i, item in enumerate(data))
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use .json, .jsonl or .csv")


def _read_jsonl(path: Path) -> tuple[Record, ...]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(Record(f"line {number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                records.append(Record(f"line {number}", None, f"invalid JSON: {exc.msg}"))
    return tuple(records)


def _read_csv(path: Path) -> tuple[Record, ...]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        records = []
        for row in reader:
            where = f"line {reader.line_num}"
            if None in row or any(value is None for value in row.values()):
                records.append(Record(where, None, f"expected {len(reader.fieldnames or [])} columns"))
            else:
                records.append(Record(where, row))
    return tuple(records)


def convert_records(records: Iterable[Record], convert: Callable[[int, Any], T], *, origin: str,
                    on_bad_record: str) -> list[T]:
    """`convert(position, record.data)` for every record (position: its index among `records`). A record that
    fails to parse, or makes `convert` raise KeyError, ValueError, TypeError or IndexError, is bad: "stop"
    raises BadRecordError naming `origin` and the record, "skip" logs a warning and leaves it out."""
    check_policy(on_bad_record)
    out = []
    for position, record in enumerate(records):
        reason = record.error
        if reason is None:
            try:
                out.append(convert(position, record.data))
                continue
            except (KeyError, ValueError, TypeError, IndexError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
        message = f"{origin}: bad {record.where}: {reason}"
        if on_bad_record == "stop":
            raise BadRecordError(message + " (pass on_bad_record='skip' to skip bad records)")
        logger.warning("skipping %s", message)
    return out
