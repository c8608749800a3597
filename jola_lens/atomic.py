"""Atomic file writes (a reader sees the old file or the whole new one, never half of one) and JSONL logs that
grow by fsynced appends (a reader sees whole lines only)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

_TAIL_CHUNK = 1 << 16
"""Bytes read per step when looking back for the last newline of a torn file."""


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_versioned_json(path: str | os.PathLike, version: int, *, damaged: str,
                        error: type[ValueError] = ValueError) -> dict[str, Any]:
    """A JSON record written with a ``format_version``; a damaged file raises ``error`` ending in ``damaged`` (what to
    do), another version a ValueError naming both versions."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as caught:
        raise error(f"{path} is not valid JSON ({caught}); {damaged}") from caught
    if record.get("format_version") != version:
        raise ValueError(f"{path}: format_version {record.get('format_version')!r} is not supported "
                         f"(expected {version})")
    return record


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one JSON line in place (O(1) per line, not a rewrite) and fsync it.

    The line goes out in one ``write`` under an exclusive lock, so concurrent appenders (runs of a sweep sharing a
    results file) never interleave. A torn last line left by a crash (no closing newline) is cut off first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode("utf-8")
    with open(path, "ab+") as handle:
        _lock(handle)
        _drop_torn_tail(handle)
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every whole line of a JSONL file written by :func:`append_jsonl` ([] when it is missing); a torn last line
    (a crash mid-append: no closing newline) is left out."""
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _drop_torn_tail(handle: BinaryIO) -> None:
    """Truncate an append-mode file after its last newline when it does not end with one."""
    end = handle.seek(0, os.SEEK_END)
    if end == 0:
        return
    handle.seek(end - 1)
    if handle.read(1) == b"\n":
        return
    position = end
    while position > 0:
        start = max(0, position - _TAIL_CHUNK)
        handle.seek(start)
        newline = handle.read(position - start).rfind(b"\n")
        if newline >= 0:
            handle.truncate(start + newline + 1)
            return
        position = start
    handle.truncate(0)



def _lock(handle: BinaryIO) -> None:
    """An exclusive advisory lock on ``handle``, released when it is closed (no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
