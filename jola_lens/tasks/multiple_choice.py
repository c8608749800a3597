"""`SpecTask`: a multiple-choice benchmark described by a `ChoiceSpec` (files, embedded folder, hub id).

Splits per source:
* local: the files named in the spec; when "train" and "test" name the same file (HellaSwag), a fixed
  seeded pool of `capped_half(n, pool_cap)` items is carved off as "train" and the rest is "test";
* embedded: the copy's single (validation) split is carved the same way;
* hub: the hub splits named in `hub_splits`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jola_lens.tasks.choice import ChoiceItem, ChoiceTask, check_no_template
from jola_lens.tasks.files import Record, check_policy, convert_records, read_records
from jola_lens.tasks.hf_data import read_hub_split, read_saved_split
from jola_lens.tasks.hf_records import Converter
from jola_lens.tasks.sources import resolve_source
from jola_lens.tasks.splits import capped_half, carve

EMBEDDED_SPLIT = "validation"
DEFAULT_POOL_CAP = 400


@dataclass(frozen=True)
class LocalFile:
    """One local file: its path under the data folder, how to read it, and how to convert a record."""

    path: str
    convert: Converter
    origin: str
    read: Callable[[Path], tuple[Record, ...]] = read_records


@dataclass(frozen=True)
class ChoiceSpec:
    name: str
    aliases: tuple[str, ...] = ()
    convert: Converter | None = None
    local: Mapping[str, LocalFile] = field(default_factory=dict)
    embedded: str | None = None
    hub: str | None = None
    hub_config: str | None = None
    hub_splits: Mapping[str, str] = field(default_factory=lambda: {"train": "train", "test": "validation"})
    pool_cap: int = DEFAULT_POOL_CAP


class SpecTask(ChoiceTask):
    """A classification task read from the source resolved for its spec."""

    def __init__(self, spec: ChoiceSpec, *, data_dir: str | os.PathLike | None = None, source: str = "auto",
                 formulation: str = "label", template: str | None = None, on_bad_record: str = "stop") -> None:
        super().__init__(formulation)
        check_no_template(spec.name, template)
        self.spec = spec
        self.name = spec.name
        self.family = spec.name.partition("/")[0]
        self.on_bad_record = check_policy(on_bad_record)
        self._source = resolve_source(spec.name, source, data_dir, local=[f.path for f in spec.local.values()],
                                      embedded=spec.embedded, hub=spec.hub)
        self.source = str(self._source)
        self._carved: tuple[list[ChoiceItem], list[ChoiceItem]] | None = None

    def available_splits(self) -> tuple[str, ...]:
        if self._source.kind == "local":
            return tuple(self.spec.local)
        if self._source.kind == "embedded":
            return ("train", "test")
        return tuple(self.spec.hub_splits)

    def _items(self, split: str) -> list[ChoiceItem]:
        if self._source.kind == "hub":
            hub_split = self.spec.hub_splits[split]
            rows = read_hub_split(self.spec.hub, self.spec.hub_config, hub_split)
            return self._convert(_row_records(rows), self.spec.convert, hub_split, f"{self.source} {hub_split}")
        if self._source.kind == "local" and self.spec.local["train"] != self.spec.local["test"]:
            return self._read_local(self.spec.local[split])
        if self._carved is None:
            embedded = self._source.kind == "embedded"
            items = self._read_embedded() if embedded else self._read_local(self.spec.local["test"])
            self._carved = carve(items, capped_half(len(items), self.spec.pool_cap))
        return self._carved[0] if split == "train" else self._carved[1]

    def _read_local(self, local: LocalFile) -> list[ChoiceItem]:
        path = self._source.path / local.path
        return self._convert(local.read(path), local.convert, local.origin, str(path))

    def _read_embedded(self) -> list[ChoiceItem]:
        path = self._source.path / EMBEDDED_SPLIT
        return self._convert(_row_records(read_saved_split(path)), self.spec.convert, EMBEDDED_SPLIT, str(path))

    def _convert(self, records, convert: Converter, origin: str, where: str) -> list[ChoiceItem]:
        prefix = f"{self.name}:{self._source.kind}:{origin}"
        return convert_records(records, lambda i, data: ChoiceItem(f"{prefix}:{i}", *convert(data)),
                               origin=where, on_bad_record=self.on_bad_record)


def _row_records(rows: tuple[dict, ...]) -> list[Record]:
    return [Record(f"row {i}", row) for i, row in enumerate(rows)]
