"""Labels of a user's classification data: raw values to the words the model scores, the rule that infers
classification, the class balance and the majority-class rate.

A raw label becomes a label word in this order: a bool is "true"/"false"; an integer (or integer text, or an
integral float) with names (a `datasets.ClassLabel`, or `label_names`) is its name; then `label_words` maps the
value (or its name) to a word. Label -1 with names (the hub's "no label") is refused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from jola_lens.tasks.examples import Example
from jola_lens.tasks.files import BadRecordError

MAX_CLASSES = 20
MIN_PER_CLASS = 2
RULE = f"at most {MAX_CLASSES} distinct values, each seen at least {MIN_PER_CLASS} times"


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def label_word(value: Any, field: str, names: Sequence[str] = (), words: Mapping[str, str] | None = None) -> str:
    """The label word of one raw value (see the module docstring); BadRecordError saying what is wrong."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    else:
        number = _as_int(value)
        if number == -1 and names:
            raise BadRecordError(f"{field!r} is -1 (no label: hub test splits have none)")
        if names and number is not None:
            if not 0 <= number < len(names):
                raise BadRecordError(f"{field!r} is {value!r}, not an index of the {len(names)} label names "
                                 f"({', '.join(names)}); fix --label_names")
            text = names[number]
        elif number is not None and not isinstance(value, str):
            text = str(number)
        elif isinstance(value, str):
            text = value.strip()
        else:
            raise BadRecordError(f"{field!r} is {value!r} ({type(value).__name__}); expected text, a number or a bool")
    if not text:
        raise BadRecordError(f"no {field!r} value")
    if words:
        for key in (text, str(value).strip()):
            if key in words:
                return words[key]
        pairs = ", ".join(f"{k}={w}" for k, w in words.items())
        raise BadRecordError(f"{field!r} is {value!r}, which --label_words ({pairs}) gives no word")
    return text


def looks_like_classes(counts: Counter) -> bool:
    """Whether targets with these counts satisfy the classification rule (`RULE`)."""
    return 0 < len(counts) <= MAX_CLASSES and min(counts.values()) >= MIN_PER_CLASS


def ordered_labels(counts: Counter) -> tuple[str, ...]:
    """Labels found in the data, in numeric order when all are integers, else alphabetical."""
    labels = list(counts)
    if all(_as_int(label) is not None for label in labels):
        return tuple(sorted(labels, key=int))
    return tuple(sorted(labels))


def balance(labels: Sequence[str], counts: Counter) -> str:
    """"classification, 2 labels: negative 1,234, positive 1,221"."""
    return (f"classification, {len(labels)} labels: "
            + ", ".join(f"{label} {counts.get(label, 0):,}" for label in labels))


def majority_rate(examples: Sequence[Example]) -> float:
    """Accuracy (percent) of always giving the most frequent gold answer position of `examples`."""
    if not examples:
        raise ValueError("majority_rate needs at least one example")
    counts = Counter(example.answer_index for example in examples)
    return 100.0 * max(counts.values()) / len(examples)
