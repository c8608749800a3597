"""Which columns of a user's data play which part: the dataset shapes recognised without code, and explicit
mappings (`DataOptions`) for everything else.

Recognised shapes, tried in this order on the columns found:
    messages                                        chat turns; the last assistant turn is the target
    question + choices|options + answer|answerKey|label   multiple choice, each record with its own options
    instruction [+ input] + answer|output           LLM-Adapters / Alpaca records
    prompt + completion
    input + output
    premise + hypothesis + label|answer             sentence pairs (also sentence1 + sentence2, question + passage)
    text|sentence|review|content + label|answer     text classification
Columns `id`/`idx` (unique record ids) and `split` are read when present. Explicit fields win over
recognition: `text_field` (with `label_field`, or the recognised target) shows those columns; `label_field` alone
changes the target of a recognised shape; `template` builds the instruction from any columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from jola_lens.tasks.data_options import DataOptions, template_fields

TEXT_FIELDS = ("text", "sentence", "review", "content")
PAIR_FIELDS = (("premise", "hypothesis"), ("sentence1", "sentence2"), ("question", "passage"))
LABEL_FIELDS = ("label", "answer")
CHOICE_FIELDS = ("choices", "options")
CHOICE_ANSWER_FIELDS = ("answer", "answerKey", "label")
TARGET_FIELDS = ("label", "answer", "output", "completion")  # the target of a template or prompt_fn, if unnamed
ID_FIELDS = ("id", "idx")
SPLIT_FIELD = "split"
BUILDS = ("fields", "choice", "instruction", "prompt", "chat", "template", "prompt_fn")
ACCEPTED_SHAPES = (
    "text|sentence|review|content + label",
    "premise + hypothesis + label (or sentence1 + sentence2, question + passage)",
    "question + choices + answer",
    "instruction [+ input] + output",
    "input + output",
    "prompt + completion",
    "messages (chat turns)",
)
FIELD_FLAGS = ("--text_field COLUMN[,COLUMN] --label_field COLUMN "
               "(or --template '...{COLUMN}...' --label_field COLUMN)")


@dataclass(frozen=True)
class Shape:
    """How records become items: `build` names the instruction builder, `inputs` the fields it reads,
    `target` the answer's field, `options` the field of per-record answer options ("choice" build)."""

    name: str
    build: str
    inputs: tuple[str, ...]
    target: str
    options: str | None = None
    optional: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.build not in BUILDS:
            raise ValueError(f"unknown build {self.build!r}; expected one of {BUILDS}")

    @property
    def required(self) -> tuple[str, ...]:
        """The fields every record must have (non-empty)."""
        named = (*self.inputs, self.target, *((self.options,) if self.options else ()))
        return tuple(dict.fromkeys(f for f in named if f not in self.optional))


def columns_text(columns: Sequence[str]) -> str:
    return ", ".join(columns) if columns else "none"


def recognise(columns: Sequence[str], options: DataOptions, origin: str, *, prompt_fn: bool = False) -> Shape:
    """The shape of records with these columns under `options`; ValueError naming the columns found, the
    accepted shapes and the flags that fix it."""
    found = set(columns)
    where = f"{origin} (columns: {columns_text(columns)})"

    def check(flag: str, names: Sequence[str]) -> None:
        for name in names:
            if name not in found:
                raise ValueError(f"{origin}: {flag} names {name!r}, which is not a column (columns: "
                                 f"{columns_text(columns)}). Pass one of the columns.")

    check("--label_field", [options.label_field] if options.label_field else [])
    check("--text_field", options.text_field)
    if options.template is not None:
        check("--template", template_fields(options.template))
    base = _match(found)
    if prompt_fn or options.template is not None:
        build = "prompt_fn" if prompt_fn else "template"
        target = options.label_field or (base.target if base else next((f for f in TARGET_FIELDS if f in found), None))
        if target is None:
            raise ValueError(f"{where}: which column holds the answer? Pass --label_field COLUMN.")
        inputs = template_fields(options.template) if options.template is not None else ()
        return Shape(f"{build} + {target}", build, inputs, target,
                     base.options if base and base.build == "choice" else None)
    if options.text_field:
        target = options.label_field or next((f for f in LABEL_FIELDS if f in found and f not in options.text_field),
                                             None)
        if target is None:
            raise ValueError(f"{where}: --text_field {','.join(options.text_field)} names the input; which column "
                             "holds the answer? Pass --label_field COLUMN.")
        return Shape(" + ".join((*options.text_field, target)), "fields", options.text_field, target)
    if base is None:
        if options.label_field:
            raise ValueError(f"{where}: --label_field {options.label_field} names the answer; which column holds "
                             "the text? Pass --text_field COLUMN[,COLUMN].")
        raise ValueError(f"{where}: no known data shape in these columns. Accepted shapes: "
                         f"{'; '.join(ACCEPTED_SHAPES)}. Name your columns with {FIELD_FLAGS}.")
    if options.label_field and options.label_field != base.target:
        name = base.name.rsplit(" + ", 1)[0] + f" + {options.label_field}"
        return replace(base, name=name, target=options.label_field)
    return base


def _first(found: set[str], names: Sequence[str]) -> str | None:
    return next((name for name in names if name in found), None)


def _match(found: set[str]) -> Shape | None:
    """The first recognised shape whose fields are all among the columns `found`."""
    if "messages" in found:
        return Shape("messages", "chat", ("messages",), "messages")
    options, answer = _first(found, CHOICE_FIELDS), _first(found, CHOICE_ANSWER_FIELDS)
    if "question" in found and options and answer:
        return Shape(f"question + {options} + {answer}", "choice", ("question",), answer, options)
    target = _first(found, ("answer", "output"))
    if "instruction" in found and target:
        inputs = ("instruction", "input") if "input" in found else ("instruction",)
        return Shape(" + ".join((*inputs, target)), "instruction", inputs, target, optional=("input",))
    if {"prompt", "completion"} <= found:
        return Shape("prompt + completion", "prompt", ("prompt",), "completion")
    if {"input", "output"} <= found:
        return Shape("input + output", "prompt", ("input",), "output")
    label = _first(found, LABEL_FIELDS)
    if label is None:
        return None
    for pair in PAIR_FIELDS:
        if set(pair) <= found:
            return Shape(" + ".join((*pair, label)), "fields", pair, label)
    text = _first(found, TEXT_FIELDS)
    return Shape(f"{text} + {label}", "fields", (text,), label) if text else None
