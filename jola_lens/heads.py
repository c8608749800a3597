"""Head sets: which (layer, head) pairs an edit may change, written as ``L12H3,L20H0``, pairs, masks or files.

A head set restricts an edit (``JoLAConfig.heads``); heads outside it stay bit-exactly unedited on every route,
in merge and through save/load. A head file is JSON naming the model shape it was made for, so a set chosen on one
model is not applied to another by mistake::

    {"n_layers": 30, "n_heads": 9, "base_model": "...", "heads": {"multiplicative": ["L12H3", ...]}}
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from jola_lens import atomic

Head = tuple[int, int]
HeadSet = tuple[Head, ...]
_HEAD = re.compile(r"^\s*L(\d+)\s*H(\d+)\s*$", re.IGNORECASE)


class HeadSpecError(ValueError):
    """A head set that cannot be read, is empty, or does not fit the model."""


def head_name(head: Head) -> str:
    return f"L{head[0]}H{head[1]}"


def parse_heads(spec: Any, n_layers: int, n_heads: int) -> HeadSet:
    """A sorted tuple of (layer, head) from ``"L12H3,L20H0"``, an iterable of pairs or names, or a [layer, head]
    boolean / 0-1 mask; checked against the model's ``n_layers`` x ``n_heads``."""
    if isinstance(spec, str):
        parts = [part for part in spec.split(",") if part.strip()]
        heads = []
        for part in parts:
            match = _HEAD.match(part)
            if match is None:
                raise HeadSpecError(f"cannot read head {part.strip()!r}: write heads as L<layer>H<head>, "
                                    "comma-separated, e.g. 'L12H3,L20H0'")
            heads.append((int(match.group(1)), int(match.group(2))))
    elif isinstance(spec, torch.Tensor) or _is_nested_mask(spec):
        mask = torch.as_tensor(spec)
        if mask.shape != (n_layers, n_heads):
            raise HeadSpecError(f"a head mask must have shape [layers, heads] = [{n_layers}, {n_heads}], "
                                f"got {list(mask.shape)}")
        heads = [(int(layer), int(head)) for layer, head in mask.bool().nonzero().tolist()]
    elif isinstance(spec, Iterable):
        heads = [_pair(item) for item in spec]
    else:
        raise HeadSpecError(f"cannot read a head set from {type(spec).__name__}: pass 'L12H3,L20H0', a list of "
                            "(layer, head) pairs or a [layer, head] mask")
    if not heads:
        raise HeadSpecError("the head set is empty: name at least one head (e.g. 'L12H3'), or pass heads=None to "
                            "edit every head")
    for layer, head in heads:
        if not 0 <= layer < n_layers:
            raise HeadSpecError(f"{head_name((layer, head))}, but the model has {n_layers} layers (0-{n_layers - 1})")
        if not 0 <= head < n_heads:
            raise HeadSpecError(f"{head_name((layer, head))}, but the model has {n_heads} heads per layer "
                                f"(0-{n_heads - 1})")
    return tuple(sorted(set(heads)))


def _is_nested_mask(spec: Any) -> bool:
    return (isinstance(spec, (list, tuple)) and bool(spec) and all(isinstance(row, (list, tuple)) for row in spec)
            and not all(len(row) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in row)
                        for row in spec))


def _pair(item: Any) -> Head:
    if isinstance(item, str):
        match = _HEAD.match(item)
        if match is None:
            raise HeadSpecError(f"cannot read head {item!r}: write heads as L<layer>H<head>, e.g. 'L12H3'")
        return int(match.group(1)), int(match.group(2))
    try:
        layer, head = item
        return int(layer), int(head)
    except (TypeError, ValueError) as error:
        raise HeadSpecError(f"cannot read head {item!r}: give (layer, head) pairs or names like 'L12H3'") from error


def head_count(value: int | float, n_heads: int, what: str) -> int:
    """A number of heads (an integer in [1, ``n_heads``]) or a share of ``n_heads`` in (0, 1) as a number of heads
    (rounded, at least 1); ``what`` names the setting in the error."""
    if isinstance(value, float) and 0 < value < 1:
        value = max(1, round(value * n_heads))
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= n_heads:
        raise ValueError(f"{what} must be a number of heads in [1, {n_heads}] (the edited heads) or a share of them "
                         f"in (0, 1), got {value!r}")
    return value


def head_mask(heads: HeadSet, layers: Iterable[int], n_heads: int) -> torch.Tensor:
    """Boolean [edited layers, heads] mask of ``heads``, rows in the order of ``layers``."""
    rows = {layer: row for row, layer in enumerate(layers)}
    mask = torch.zeros(len(rows), n_heads, dtype=torch.bool)
    for layer, head in heads:
        mask[rows[layer], head] = True
    return mask


def write_head_file(path: str | os.PathLike, heads: Mapping[str, HeadSet], *, n_layers: int, n_heads: int,
                    base_model: str | None = None) -> None:
    """Save a head set per edit kind, with the model shape it belongs to (atomically)."""
    atomic.write_json(path, {"n_layers": n_layers, "n_heads": n_heads, "base_model": base_model,
                             "heads": {kind: [head_name(h) for h in hs] for kind, hs in heads.items()}})


def read_head_file(path: str | os.PathLike, *, n_layers: int, n_heads: int) -> dict[str, list[str]] | list[str]:
    """The ``heads`` entry of a head file, refused when the file was made for a model of another shape."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise HeadSpecError(f"cannot read the head file {path}: {error}") from error
    if not isinstance(record, dict) or "heads" not in record:
        raise HeadSpecError(f"{path} is not a head file: expected JSON with 'n_layers', 'n_heads' and 'heads'")
    shape = (record.get("n_layers"), record.get("n_heads"))
    if shape != (n_layers, n_heads):
        raise HeadSpecError(
            f"{path} was made for a model with (layers, heads) = {shape} (base model {record.get('base_model')!r}), "
            f"but this model has ({n_layers}, {n_heads}); choose the heads on this model")
    return record["heads"]


def resolve_heads_argument(value: str, *, n_layers: int, n_heads: int) -> Any:
    """``--heads SPEC|FILE``: a path to a head file, else an inline spec: ``L12H3,L20H0`` (every edit kind) or one
    set per kind, ``additive:L0H1,L2H3;multiplicative:L12H3`` (a kind left out edits every head)."""
    if value.endswith(".json") or _is_file(value):
        return read_head_file(value, n_layers=n_layers, n_heads=n_heads)
    if ":" not in value:
        return value
    by_kind = {}
    for part in (part for part in value.split(";") if part.strip()):
        kind, colon, spec = part.partition(":")
        if not colon or not kind.strip():
            raise HeadSpecError(f"cannot read {part.strip()!r}: write one head set per edit kind as "
                                "'additive:L0H1,L2H3;multiplicative:L12H3'")
        if kind.strip() in by_kind:
            raise HeadSpecError(f"the head spec names {kind.strip()!r} twice: give each edit kind one set")
        by_kind[kind.strip()] = spec
    return by_kind


def heads_spec(sets: Mapping[str, Iterable[Head]]) -> str:
    """The inline spec of one head set per edit kind: ``L12H3,L20H0`` when every kind has the same set, else
    ``additive:...;multiplicative:...`` (read back by :func:`resolve_heads_argument`)."""
    named = {kind: ",".join(head_name(h) for h in heads) for kind, heads in sets.items()}
    if len(set(named.values())) == 1:
        return next(iter(named.values()))
    return ";".join(f"{kind}:{spec}" for kind, spec in named.items())


def _is_file(value: str) -> bool:
    """Whether ``value`` names an existing file; a spec too long to be a file name (81 heads) is not one."""
    try:
        return Path(value).is_file()
    except OSError:
        return False
