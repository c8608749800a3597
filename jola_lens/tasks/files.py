"""Reading record files (CSV, TSV, JSON array or lines, JSONL, Parquet) with record locations, and the
bad-record policy.

Text files must be UTF-8 (a byte-order mark is allowed). Reads are cached per process, keyed by the file's path,
size and modification time, so an edited file is read again.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

BAD_RECORD_POLICIES = ("error", "skip")
POLICY_ALIASES = {"stop": "error"}  # the former name of "error"
RECORD_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet")
SKIP_HINT = "To skip bad records, pass --on_bad_record skip (on_bad_record='skip' in Python)."
SHOWN_SKIPS = 5  # skipped records named one by one; the rest only counted
T = TypeVar("T")


class BadRecordError(ValueError):
    """A record or file that cannot be turned into examples; the message names the file and the record."""


@dataclass(frozen=True)
class Record:
    """One raw record, where it sits in its file ("line 12", "record 3"), and a parse error if any."""

    where: str
    data: Any
    error: str | None = None


def check_policy(on_bad_record: str) -> str:
    """The policy `on_bad_record` names ("error" or "skip"; "stop" is an old name of "error")."""
    policy = POLICY_ALIASES.get(on_bad_record, on_bad_record)
    if policy not in BAD_RECORD_POLICIES:
        raise ValueError(f"on_bad_record must be one of {BAD_RECORD_POLICIES}, got {on_bad_record!r}")
    return policy


def require_file(path: Path, hint: str) -> Path:
    """`path` if it exists, else FileNotFoundError naming it and how to fix it."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist. {hint}")
    return path


def read_records(path: Path) -> tuple[Record, ...]:
    """All records of a .csv, .tsv, .json (array, or JSON lines), .jsonl or .parquet file; cached per process
    by path, size and modification time."""
    stat = Path(path).stat()
    return _read_cached(Path(path).resolve(), stat.st_size, stat.st_mtime_ns)


def read_header(path: Path) -> tuple[str, ...]:
    """The column names of a .csv or .tsv file (empty for other types or an empty file)."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".tsv"):
        return ()
    first = next(csv.reader(io.StringIO(read_text(path)), delimiter=_DELIMITERS[suffix]), [])
    return tuple(first)


def read_text(path: Path) -> str:
    """The UTF-8 text of `path`; BadRecordError naming the first undecodable byte and how to convert."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        converted = path.with_name(f"{path.stem}-utf8{path.suffix}")
        raise BadRecordError(
            f"{path} is not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} (offset {exc.start}) cannot be "
            f"decoded. Save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path} > {converted}`") from exc


_DELIMITERS = {".csv": ",", ".tsv": "\t"}


@functools.lru_cache(maxsize=16)
def _read_cached(path: Path, size: int, mtime_ns: int) -> tuple[Record, ...]:
    suffix = path.suffix.lower()
    if suffix in _DELIMITERS:
        return _read_delimited(path, _DELIMITERS[suffix])
    if suffix == ".parquet":
        return _read_parquet(path)
    if suffix == ".jsonl":
        return _read_jsonl(path)
    if suffix == ".json":
        text = read_text(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg == "Extra data":  # several JSON documents: JSON lines under a .json name
                return _read_jsonl(path)
            if not text.strip():
                return ()
            raise BadRecordError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
        if not isinstance(data, list):
            raise BadRecordError(f"{path}: expected a JSON array of records, got {type(data).__name__}")
        return tuple(Record(f"record {i}", item) for i, item in enumerate(data))
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(RECORD_SUFFIXES)}")


def _read_jsonl(path: Path) -> tuple[Record, ...]:
    records = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(Record(f"line {number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            records.append(Record(f"line {number}", None, f"invalid JSON: {exc.msg}"))
    return tuple(records)


def _read_delimited(path: Path, delimiter: str) -> tuple[Record, ...]:
    reader = csv.reader(io.StringIO(read_text(path), newline=""), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        return ()
    what = "a comma" if delimiter == "," else "a tab"
    records = []
    for values in reader:
        where = f"line {reader.line_num}"
        if not values:  # a blank line
            continue
        if len(values) != len(header):
            records.append(Record(where, dict(zip(header, values)),
                                  f"{len(values)} values for {len(header)} columns (columns: {', '.join(header)}); "
                                  f'quote values that contain {what} ("like, this")'))
        else:
            records.append(Record(where, dict(zip(header, values))))
    return tuple(records)


def _read_parquet(path: Path) -> tuple[Record, ...]:
    import pyarrow.parquet

    rows = pyarrow.parquet.read_table(path).to_pylist()
    return tuple(Record(f"row {i}", row) for i, row in enumerate(rows))


def convert_records(records: Iterable[Record], convert: Callable[[int, Any], T], *, origin: str,
                    on_bad_record: str) -> list[T]:
    """`convert(position, record.data)` for every record (position: its index among `records`). A record that
    fails to parse, or makes `convert` raise KeyError, ValueError, TypeError or IndexError, is bad: "error"
    raises BadRecordError naming `origin` and the record, "skip" leaves it out, logs the first few and then
    how many of how many records it skipped."""
    policy = check_policy(on_bad_record)
    out = []
    skipped = total = 0
    for position, record in enumerate(records):
        total += 1
        reason = record.error
        if reason is None:
            try:
                out.append(convert(position, record.data))
                continue
            except (KeyError, ValueError, TypeError, IndexError) as exc:
                reason = str(exc) if isinstance(exc, BadRecordError) else f"{type(exc).__name__}: {exc}"
        message = f"{origin}: bad {record.where}: {reason}"
        if policy == "error":
            raise BadRecordError(f"{message.rstrip('.')}. {SKIP_HINT}")
        skipped += 1
        if skipped <= SHOWN_SKIPS:
            logger.warning("skipping %s", message)
    if skipped:
        logger.warning("%s: skipped %d of %d records (on_bad_record='skip')", origin, skipped, total)
    return out
