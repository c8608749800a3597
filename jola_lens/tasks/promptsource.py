"""PromptSource templates (`templates.yaml`): loading, choosing one by name, rendering its prompt part.

A template's Jinja text is "<prompt> ||| <target>". It is rendered as a whole with jinja2 and the part before
the first "|||" is the prompt, as PromptSource does. PromptSource's `choice` filter (a random pick) is made
deterministic here: the pick is seeded by the list's contents. Only templates marked `original_task: true`
(those that solve the dataset's own task) are offered.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    jinja: str


@functools.lru_cache(maxsize=8)
def load_templates(path: Path) -> dict[str, PromptTemplate]:
    """The original-task templates of a PromptSource YAML file, by name."""
    import yaml

    class _Loader(yaml.SafeLoader):
        """Reads PromptSource's !Template / !TemplateMetadata tags as plain mappings."""

    _Loader.add_multi_constructor("!", lambda loader, _suffix, node: loader.construct_mapping(node, deep=True))
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_Loader)
    templates = {}
    for entry in document["templates"].values():
        if (entry.get("metadata") or {}).get("original_task"):
            templates[entry["name"]] = PromptTemplate(entry["name"], entry["jinja"])
    return templates


def select_template(path: Path, name: str) -> PromptTemplate:
    """The template called `name` in `path`; ValueError listing the available names otherwise."""
    templates = load_templates(path)
    if name not in templates:
        raise ValueError(f"unknown template {name!r} in {path}; available: {', '.join(sorted(templates))}")
    return templates[name]


def _seeded_choice(items: Sequence):
    items = list(items)
    return random.Random("|".join(map(str, items))).choice(items)


@functools.lru_cache(maxsize=1)
def _environment():
    import jinja2

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    environment.filters["choice"] = _seeded_choice
    return environment


@functools.lru_cache(maxsize=32)
def _compiled(jinja: str):
    return _environment().from_string(jinja)


def render_prompt_part(template: PromptTemplate, context: Mapping[str, object]) -> str:
    """The template's prompt (the text before "|||"), stripped."""
    return _compiled(template.jinja).render(**context).split("|||")[0].strip()
