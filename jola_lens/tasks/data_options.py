"""How to read a user's data when its shape is not recognised as it is: the `task_from_file` keywords and the
matching command-line flags (same names), parsed, validated and written back as JSON for a run's config.json.

* text_field:    the column(s) shown to the model, "review" or "title,body" (or a list)
* label_field:   the column holding the answer
* choices:       the answer options: a list ("negative,positive"), or "data" (the distinct answers found in
                 the data); either forces classification
* label_words:   the words the model scores for each label value, "1=positive,0=negative" (or a dict)
* label_names:   names of integer labels 0, 1, ...: "negative,positive" (or a list)
* template:      the instruction as a format string over record fields, "Review: {text}\\nSentiment:"
* on_bad_record: "error" (stop at the first bad record) or "skip" (leave bad records out and count them)
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from jola_lens.tasks.files import check_policy

FROM_DATA = "data"


def _items(name: str, value: str | Sequence[str]) -> tuple[str, ...]:
    """A comma-separated string or a list, as stripped non-empty strings."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    items = tuple(str(part).strip() for part in parts)
    if not items or not all(items):
        raise ValueError(f"--{name}: expected comma-separated names (e.g. a,b), got {value!r}")
    if len(set(items)) != len(items):
        raise ValueError(f"--{name}: {value!r} names the same value twice")
    return items


def _names(value: str | Sequence[str]) -> tuple[str, ...]:
    names = _items("label_names", value)
    if len(names) < 2:
        raise ValueError(f"--label_names: expected the names of labels 0, 1, ... (e.g. negative,positive), got "
                         f"{value!r}")
    return names


def _label_words(value: str | Mapping[Any, str]) -> tuple[tuple[str, str], ...]:
    if isinstance(value, Mapping):
        pairs = [(str(k).strip(), str(v).strip()) for k, v in value.items()]
    else:
        pairs = []
        for part in value.split(","):
            key, sep, word = part.partition("=")
            if not sep:
                raise ValueError(f"--label_words: expected VALUE=WORD pairs separated by commas (e.g. "
                                 f"1=positive,0=negative), got {value!r}")
            pairs.append((key.strip(), word.strip()))
    if not all(k and w for k, w in pairs):
        raise ValueError(f"--label_words: every pair needs a value and a word (e.g. 1=positive), got {value!r}")
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"--label_words: {value!r} gives a word to the same value twice")
    if len({w for _, w in pairs}) < 2:
        raise ValueError(f"--label_words: at least 2 different words are needed, got {value!r}")
    return tuple(pairs)


def template_fields(template: str) -> tuple[str, ...]:
    """The record fields a format string names, in order ("{text} {label}" -> ("text", "label"))."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"--template {template!r} is not a valid format string: {exc} (write literal braces "
                         "as {{ and }})") from exc
    if not names or not all(names):
        raise ValueError(f"--template {template!r} must name record fields in braces, e.g. 'Review: {{text}}'")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class DataOptions:
    """Validated reading options (see the module docstring); `parse` accepts the flags' strings."""

    text_field: tuple[str, ...] = ()
    label_field: str | None = None
    choices: tuple[str, ...] | str | None = None
    label_words: tuple[tuple[str, str], ...] = ()
    label_names: tuple[str, ...] = ()
    template: str | None = None
    on_bad_record: str = "error"

    @classmethod
    def parse(cls, **values: Any) -> DataOptions:
        """Options from keyword values (None = not given); ValueError naming the flag for a bad value."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown data option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        given = {k: v for k, v in values.items() if v is not None}
        choices = given.get("choices")
        if choices is not None and not (isinstance(choices, str) and choices.strip() == FROM_DATA):
            choices = _items("choices", choices)
            if len(choices) < 2:
                raise ValueError(f"--choices: expected at least 2 options (e.g. negative,positive) or "
                                 f"'{FROM_DATA}', got {','.join(choices)!r}")
        label_field = given.get("label_field")
        if label_field is not None and not str(label_field).strip():
            raise ValueError("--label_field: expected a column name, got an empty string")
        template = given.get("template")
        if template is not None:
            template_fields(template)
        return cls(text_field=_items("text_field", given["text_field"]) if "text_field" in given else (),
                   label_field=str(label_field).strip() if label_field is not None else None,
                   choices=choices.strip() if isinstance(choices, str) else choices,
                   label_words=_label_words(given["label_words"]) if "label_words" in given else (),
                   label_names=_names(given["label_names"]) if "label_names" in given else (),
                   template=template, on_bad_record=check_policy(given.get("on_bad_record", "error")))

    def to_dict(self) -> dict[str, Any]:
        """The options that differ from the defaults, as JSON values (parse(**to_dict()) == self)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            if f.name == "label_words":
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @property
    def word_map(self) -> dict[str, str]:
        return dict(self.label_words)
