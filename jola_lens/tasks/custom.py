"""User data as tasks, without code: `task_from_file` on a data file, a `save_to_disk` folder, a hub dataset
(`hf:NAME[:CONFIG][@SPLIT]`), a `datasets.Dataset` / `DatasetDict` or a list of dicts (sources: `user_sources`).

Shapes are recognised from the columns (`shapes.py`), or named with the keywords of `DataOptions` (the same
names as the command-line flags: text_field, label_field, choices, label_words, label_names, template,
on_bad_record). The recognised shape and, for classification, the class balance are logged once (INFO).

Instructions, by shape:
* text + label: "Please choose the label of the following <column>: <text>\\n\\nAnswer format: a/b"; sentence
  pairs: "Please choose the label of the following premise and hypothesis:\\n\\nPremise: ...\\nHypothesis: ...
  \\n\\nAnswer format: a/b". As a generation task, the text (or the "Column: value" lines) alone.
* question + choices + answer: the LLM-Adapters ARC format (labels answer1..answerN; the text and cloze
  formulations use the choice texts). `answer` is a choice text, a letter ("A" = first), a 0-based index, or
  the key of HF-style choices ({"label": [...], "text": [...]}); in CSV, choices are a JSON list or "a|b|c".
* instruction [+ input] + answer|output: the instruction, then the input after a blank line. Classification
  with each record's own labels when every instruction ends with an LLM-Adapters "Answer format: a/b" line
  that contains the answer.
* prompt + completion, input + output: the prompt as it is. messages: the turns before the last assistant
  turn (a single user turn, after any system text, as it is; more turns as "User: ..." / "Assistant: ..."
  paragraphs); the last assistant turn is the target.
* template: the format string filled from the record, as it is (list the options in it yourself if the
  model should see them).
Kind: classification when the answer options are given (`choices`, `label_words`, `label_names`, a
`datasets.ClassLabel`, per-record choices, "Answer format" lines), or when the targets meet `labels.RULE`
(at most 20 distinct values, each seen at least twice); generation otherwise. `kind=` forces either; a
classification task needs at least 2 classes.
Splits: the rows' split (a `split` field, or the splits of a DatasetDict / hub dataset; without a test split
the validation split is the test set), else separate files via `train=`, `validation=`, `test=`, else one
source carved with the fixed carve seed 0 into 70% train, 10% validation and 20% test (at least one test item).
Records with an `id` (or `idx`) field keep it in their example ids; it must be unique within its split.
Custom behaviour: `prompt_fn(record) -> instruction`, `parse_fn(response, example) -> answer | None`,
`score_fn(responses, examples) -> (metrics, records)`; or subclass `Task` and `register_task` it.
"""

from __future__ import annotations

import json
import logging
import os
import string
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jola_lens.tasks.base import CLASSIFICATION_MAX_NEW_TOKENS, GENERATION_MAX_NEW_TOKENS, Task
from jola_lens.tasks.choice import ChoiceItem, check_formulation
from jola_lens.tasks.data_options import FROM_DATA, DataOptions
from jola_lens.tasks.examples import Example
from jola_lens.tasks.files import BadRecordError, convert_records
from jola_lens.tasks.formats import ANSWER_LAYOUT, Layout, numbered_labels, parse_instruction, render
from jola_lens.tasks.labels import RULE, balance, label_word, looks_like_classes, majority_rate, ordered_labels
from jola_lens.tasks.parsing import first_line, parse_label, parse_option_text
from jola_lens.tasks.scoring import score_choices, score_generation
from jola_lens.tasks.shapes import ACCEPTED_SHAPES, ID_FIELDS, SPLIT_FIELD, Shape, columns_text, recognise
from jola_lens.tasks.splits import carve
from jola_lens.tasks.user_sources import HUB_PREFIX, SPLIT_ALIASES, DataLike, Table, read_table

logger = logging.getLogger(__name__)

KINDS = ("classification", "generation")
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
LABEL_LEAD = "Please choose the label of the following "

ScoreFn = Callable[[list[str], list[Example]], tuple[dict[str, float], list[dict]]]


@dataclass(frozen=True)
class _Item:
    """One record reduced to its instruction body and answer; `options`/`answer_index` for per-record choices,
    `adapters` for LLM-Adapters instructions (labels, texts, answer index)."""

    split: str | None
    id: str | None
    body: str
    target: str
    options: tuple[str, ...] | None = None
    answer_index: int | None = None
    adapters: tuple[tuple[str, ...], tuple[str, ...], int] | None = None


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, (list, tuple, dict)) and not value)


def _answer_index(answer: Any, texts: tuple[str, ...], keys: tuple[str, ...] = ()) -> int:
    if isinstance(answer, bool):
        raise BadRecordError("the answer must be an index, a letter or a choice text, not a bool")
    text = answer.strip() if isinstance(answer, str) else None
    if text is not None and text in keys:
        index = keys.index(text)
    elif isinstance(answer, int):
        index = answer
    elif text is not None and text in texts:
        index = texts.index(text)
    elif text is not None and len(text) == 1 and text in string.ascii_uppercase:
        index = string.ascii_uppercase.index(text)
    elif text is not None and text.isdigit():
        index = int(text)
    else:
        raise BadRecordError(f"answer {answer!r} is neither an index, a letter nor one of the choices")
    if not 0 <= index < len(texts):
        raise BadRecordError(f"answer index {index} out of range for {len(texts)} choices")
    return index


def _options(value: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(option texts, option keys) of a choices field: a list, HF-style {"label", "text"}, a JSON list or a|b|c."""
    if isinstance(value, Mapping):
        return tuple(str(t).strip() for t in value["text"]), tuple(str(k).strip() for k in value.get("label", ()))
    if isinstance(value, str):
        value = json.loads(value) if value.lstrip().startswith("[") else value.split("|")
    return tuple(str(option).strip() for option in value), ()


def _turns(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, list) or not all(isinstance(m, Mapping) and "role" in m and "content" in m
                                              for m in value):
        raise BadRecordError("messages must be a list of {\"role\": ..., \"content\": ...} turns")
    return [(str(m["role"]), str(m["content"])) for m in value]


def _chat(value: Any) -> tuple[str, str]:
    """(the instruction from the turns before the last assistant turn, that turn's content)."""
    turns = _turns(value)
    last = max((i for i, (role, _) in enumerate(turns) if role == "assistant"), default=None)
    if last is None:
        raise BadRecordError("messages have no assistant turn (the target is the last assistant turn)")
    before = turns[:last]
    if not any(role == "user" for role, _ in before):
        raise BadRecordError("messages have no user turn before the last assistant turn")
    system = [content for role, content in before if role == "system"]
    others = [(role, content) for role, content in before if role != "system"]
    if len(others) == 1:
        return "\n\n".join([*system, others[0][1]]), turns[last][1]
    return "\n\n".join(f"{role.capitalize()}: {content}" for role, content in before), turns[last][1]


def _text(value: Any) -> str:
    """A prompt value: text, or chat turns rendered as in `_chat`."""
    if isinstance(value, list):
        turns = _turns(value)
        if len(turns) == 1:
            return turns[0][1]
        return "\n\n".join(f"{role.capitalize()}: {content}" for role, content in turns)
    return str(value)


def _completion(value: Any) -> str:
    if isinstance(value, list):  # conversational completion: its (last) assistant turn
        turns = [content for role, content in _turns(value) if role == "assistant"]
        if not turns:
            raise BadRecordError("the completion has no assistant turn")
        return turns[-1]
    return str(value)


def _title(field: str) -> str:
    name = field.replace("_", " ")
    return name[:1].upper() + name[1:]


class _Converter:
    """Turns the records of one table into `_Item`s under a shape (raising BadRecordError for bad ones)."""

    def __init__(self, table: Table, shape: Shape, options: DataOptions, prompt_fn: Callable[[dict], str] | None):
        self.table, self.shape, self.options, self.prompt_fn = table, shape, options, prompt_fn
        self.names = options.label_names or table.class_names.get(shape.target, ())
        self.id_field = next((f for f in ID_FIELDS if f in table.columns and f not in shape.required), None)
        self.seen: dict[tuple[str | None, str], str] = {}

    def __call__(self, position: int, data: Any) -> _Item:
        shape = self.shape
        if not isinstance(data, Mapping):
            raise BadRecordError(f"expected an object with fields, got {type(data).__name__}")
        for field in shape.required:
            if _empty(data.get(field)):
                raise BadRecordError(
                    f"no {field!r} value (fields: {columns_text(list(data))}); shape '{shape.name}' needs "
                    f"{', '.join(shape.required)}. Fix the record, or pick the columns with --text_field and "
                    f"--label_field. Accepted shapes: {'; '.join(ACCEPTED_SHAPES)}")
        split = self._split(data.get(SPLIT_FIELD))
        record_id = self._id(data, split, self.table.records[position].where)
        target = data[shape.target]
        if shape.options is not None:
            texts, keys = _options(data[shape.options])
            body = self._prompt(data) if shape.build != "choice" else str(data["question"]).strip()
            index = _answer_index(target, texts, keys)
            return _Item(split, record_id, body, texts[index], texts, index)
        if shape.build == "chat":
            body, answer = _chat(target)
            return _Item(split, record_id, body, answer.strip())
        body = self._prompt(data)
        if shape.build == "prompt":
            return _Item(split, record_id, body, _completion(target).strip())
        answer = label_word(target, shape.target, self.names, self.options.word_map)
        if isinstance(self.options.choices, tuple) and answer not in self.options.choices:
            raise BadRecordError(f"{shape.target!r} is {answer!r}, not one of --choices "
                                 f"{','.join(self.options.choices)}")
        adapters = None
        if shape.build == "instruction":
            try:
                adapters = parse_instruction(body, answer)
            except ValueError:
                pass
        return _Item(split, record_id, body, answer, adapters=adapters)

    def _prompt(self, data: Mapping) -> str:
        shape = self.shape
        if self.prompt_fn is not None:
            return self.prompt_fn(dict(data))
        if shape.build == "template":
            return self.options.template.format_map(dict(data))
        if shape.build == "instruction":
            extra = data.get("input")
            return str(data["instruction"]) + (f"\n\n{extra}" if not _empty(extra) else "")
        if shape.build == "prompt":
            return _text(data[shape.inputs[0]])
        values = [str(data[f]).strip() for f in shape.inputs]
        if len(values) == 1:
            return values[0]
        return "\n".join(f"{_title(f)}: {v}" for f, v in zip(shape.inputs, values))

    def _split(self, value: Any) -> str | None:
        if value is None:
            return None
        if str(value).lower() not in SPLIT_ALIASES:
            raise BadRecordError(f"unknown split {value!r}; expected one of {sorted(SPLIT_ALIASES)}")
        return SPLIT_ALIASES[str(value).lower()]

    def _id(self, data: Mapping, split: str | None, where: str) -> str | None:
        if self.id_field is None or _empty(data.get(self.id_field)):
            return None
        record_id = str(data[self.id_field]).strip()
        first = self.seen.setdefault((split, record_id), where)
        if first != where:
            raise BadRecordError(f"duplicate id {record_id!r} (also at {first}); ids must be unique: fix the "
                                 f"{self.id_field!r} column, or drop it to number the records in order")
        return record_id


class CustomTask(Task):
    """A task over user records (see the module docstring). `shape` names the shape read, `labels` the
    shared class labels (classification of text + label data), `skipped` the bad records left out."""

    family = "custom"

    def __init__(self, name: str, source: str, examples: dict[str, list[Example]], kind: str, formulation: str,
                 parse_fn: Callable[[str, Example], str | None] | None = None, score_fn: ScoreFn | None = None, *,
                 shape: str = "", labels: tuple[str, ...] = (), skipped: int = 0):
        super().__init__()
        self.name, self.source, self.kind, self.formulation = name, source, kind, formulation
        self.max_new_tokens = CLASSIFICATION_MAX_NEW_TOKENS if kind == "classification" else GENERATION_MAX_NEW_TOKENS
        self.shape, self.labels, self.skipped = shape, labels, skipped
        self._examples = examples
        self._parse_fn, self._score_fn = parse_fn, score_fn

    def available_splits(self) -> tuple[str, ...]:
        return tuple(split for split in ("train", "validation", "test") if split in self._examples)

    def _load(self, split: str) -> list[Example]:
        return self._examples[split]

    def parse(self, response: str, example: Example) -> str | None:
        """`parse_fn` if given; else the first choice label/text (classification) or the first line."""
        if self._parse_fn is not None:
            return self._parse_fn(response, example)
        if self.kind == "generation":
            return first_line(response) or None
        if self.formulation == "label":
            return parse_label(response, example.choices)
        return parse_option_text(response, example.choices)

    def score(self, responses: list[str], examples: list[Example]) -> tuple[dict[str, float], list[dict]]:
        """`score_fn` if given; else accuracy (classification) or BLEU/chrF/ROUGE (generation), in percent."""
        if self._score_fn is not None:
            return self._score_fn(responses, examples)
        if self.kind == "classification":
            return score_choices(self.parse, responses, examples)
        return score_generation(self.parse, responses, examples)

    def majority_rate(self, examples: list[Example]) -> float | None:
        """Accuracy (percent) of always giving the most frequent answer of `examples` (classification; the
        evaluation reports it beside accuracy); None for generation."""
        return majority_rate(examples) if self.kind == "classification" else None


def task_from_file(path: DataLike | None = None, *, name: str | None = None, train: DataLike | None = None,
                   validation: DataLike | None = None, test: DataLike | None = None, kind: str | None = None,
                   formulation: str = "label", text_field: str | list[str] | None = None,
                   label_field: str | None = None, choices: str | list[str] | None = None,
                   label_words: str | Mapping[Any, str] | None = None, label_names: str | list[str] | None = None,
                   template: str | None = None, prompt_fn: Callable[[dict], str] | None = None,
                   parse_fn: Callable[[str, Example], str | None] | None = None, score_fn: ScoreFn | None = None,
                   on_bad_record: str = "error") -> Task:
    """A task from one data source (`path`: a file, a save_to_disk folder, "hf:NAME[:CONFIG][@SPLIT]", a
    Dataset/DatasetDict or a list of dicts) or from separate `train`/`validation`/`test` ones; the reading
    options are those of `DataOptions` (see the module docstring)."""
    check_formulation(formulation)
    options = DataOptions.parse(text_field=text_field, label_field=label_field, choices=choices,
                                label_words=label_words, label_names=label_names, template=template,
                                on_bad_record=on_bad_record)
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    separate = {s: d for s, d in (("train", train), ("validation", validation), ("test", test)) if d is not None}
    if (path is None) == (not separate):
        raise ValueError("pass either one data file (path) or separate train=/validation=/test= files")
    if separate and not {"train", "test"} <= separate.keys():
        raise ValueError("separate files need at least train= and test=")
    sources = {"all": path} if path is not None else separate
    items: dict[str, list[_Item]] = {}
    tables, shapes, skipped = [], [], 0
    for split, data in sources.items():
        table = read_table(data)
        shape = recognise(table.columns, options, table.origin, prompt_fn=prompt_fn is not None)
        logger.info("%s: read as %s (columns: %s)", table.origin, shape.name, columns_text(table.columns))
        items[split] = convert_records(table.records, _Converter(table, shape, options, prompt_fn),
                                       origin=table.origin, on_bad_record=options.on_bad_record)
        skipped += len(table.records) - len(items[split])
        tables.append(table)
        shapes.append(shape)
    origins = [table.origin for table in tables]
    name = name or _default_name(path if path is not None else train)
    every = [item for group in items.values() for item in group]
    if not every:
        raise BadRecordError(f"{name}: no usable records in {', '.join(origins)}")
    shape = shapes[0]
    kind, labels = _kind_and_labels(name, every, shape, tables[0], options, kind)
    examples = _to_examples(name, items, shape, kind, labels, formulation)
    source = ";".join(origins) if all(o.startswith(HUB_PREFIX) for o in origins) else f"local:{';'.join(origins)}"
    return CustomTask(name, source, examples, kind, formulation, parse_fn, score_fn, shape=shape.name, labels=labels,
                      skipped=skipped)


def _default_name(data: DataLike) -> str:
    if isinstance(data, str) and data.startswith(HUB_PREFIX):
        return f"custom/{data[len(HUB_PREFIX):]}"
    return f"custom/{Path(data).stem}" if isinstance(data, (str, os.PathLike)) else "custom/dataset"


def _kind_and_labels(name: str, items: list[_Item], shape: Shape, table: Table, options: DataOptions,
                     kind: str | None) -> tuple[str, tuple[str, ...]]:
    """The task kind and, for classification over shared labels, those labels (logs the decision)."""
    counts = Counter(item.target for item in items)
    if shape.options is not None and kind == "generation":
        raise ValueError(f"{name}: records with their own answer options ({shape.name}) cannot form a "
                         "generation task")
    if shape.options is not None or (kind != "generation" and all(item.adapters is not None for item in items)):
        answers = Counter(item.target if item.options is None else f"answer{item.answer_index + 1}"
                          for item in items)
        logger.info("%s: %s (each record lists its own options)", name, balance(ordered_labels(answers), answers))
        return "classification", ()
    if kind is None and any(item.adapters is not None for item in items):
        shaped = sum(item.adapters is not None for item in items)
        raise ValueError(f"{name}: {shaped} of {len(items)} records end with an 'Answer format:' line and the "
                         "others do not; pass kind='classification' or kind='generation'")
    names = options.label_names or table.class_names.get(shape.target, ())
    given = options.choices is not None or options.label_words or names
    if kind == "generation" or (kind is None and not given and not looks_like_classes(counts)):
        if kind is None:
            logger.info("%s: generation: %r takes %d distinct values (classification needs %s; pass --choices "
                        "data to force it)", name, shape.target, len(counts), RULE)
        return "generation", ()
    if isinstance(options.choices, tuple):
        labels, why = options.choices, "from --choices"
    elif options.label_words:
        labels, why = tuple(dict.fromkeys(w for _, w in options.label_words)), "from --label_words"
    elif names:
        labels = names
        why = "from --label_names" if options.label_names else f"the names of the ClassLabel {shape.target!r}"
    else:
        labels = ordered_labels(counts)
        why = ("from the data (--choices data)" if options.choices == FROM_DATA or kind else
               f"inferred: {shape.target!r} takes {len(counts)} distinct values; the rule: {RULE}")
    if len(labels) < 2:
        only = next(iter(counts))
        raise ValueError(f"{name}: every record has the label {only!r} (1 class, {counts[only]:,} records); "
                         f"classification needs at least 2 classes (columns: {columns_text(table.columns)}). Add "
                         "records of the other classes, or name all classes with --choices A,B")
    logger.info("%s: %s (%s)", name, balance(labels, counts), why)
    if len(counts) < 2:
        logger.warning("%s: only the label %r occurs in the data", name, next(iter(counts)))
    if not options.label_words and not names and all(label.lstrip("-").isdigit() for label in labels):
        logger.info("%s: the labels are numbers, so the model scores digits; name them with --label_names "
                    "(e.g. negative,positive for 0,1) or --label_words (e.g. 0=negative,1=positive)", name)
    return "classification", labels


def _fields_layout(shape: Shape) -> Layout:
    if len(shape.inputs) == 1:
        return Layout(f"{LABEL_LEAD}{shape.inputs[0].replace('_', ' ')}: ")
    return Layout(f"{LABEL_LEAD}{' and '.join(f.replace('_', ' ') for f in shape.inputs)}:\n\n")


def _example(item_id: str, item: _Item, shape: Shape, kind: str, labels: tuple[str, ...],
             formulation: str) -> Example:
    if kind == "generation":
        return Example(item_id, item.body, item.target, references=(item.target,))
    if item.options is not None:
        numbered = numbered_labels("answer", len(item.options))
        instruction = render(ANSWER_LAYOUT, item.body, numbered, item.options) if shape.build == "choice" else item.body
        return ChoiceItem(item_id, instruction, numbered, item.options, item.answer_index).to_example(formulation)
    if item.adapters is not None:
        return ChoiceItem(item_id, item.body, *item.adapters).to_example(formulation)
    if item.target not in labels:
        raise ValueError(f"{item_id}: label {item.target!r} is not one of {', '.join(labels)}")
    instruction = render(_fields_layout(shape), item.body, labels) if shape.build == "fields" else item.body
    return ChoiceItem(item_id, instruction, labels, labels, labels.index(item.target)).to_example(formulation)


def _to_examples(name: str, items: dict[str, list[_Item]], shape: Shape, kind: str, labels: tuple[str, ...],
                 formulation: str) -> dict[str, list[Example]]:
    by_split: dict[str, list[Example]] = {}
    for group, members in items.items():
        for n, item in enumerate(members):
            split = group if group != "all" else item.split or "all"
            item_id = f"{name}:{split}:{item.id if item.id is not None else n}"
            by_split.setdefault(split, []).append(_example(item_id, item, shape, kind, labels, formulation))
    if "all" in by_split:
        if len(by_split) > 1:
            raise ValueError(f"{name}: some records have a 'split' field and others do not")
        return _carve_all(name, by_split["all"])
    if "test" not in by_split and "validation" in by_split:
        logger.info("%s: no test split; the validation split is the test set", name)
        by_split["test"] = by_split.pop("validation")
    return by_split


def _carve_all(name: str, examples: list[Example]) -> dict[str, list[Example]]:
    n = len(examples)
    if n < 3:
        raise ValueError(f"{name}: {n} records are too few to carve train/validation/test splits")
    n_test = max(1, round(TEST_FRACTION * n))
    n_validation = round(VALIDATION_FRACTION * n)
    pool, test = carve(examples, n - n_test)
    train, validation = carve(pool, len(pool) - n_validation)
    return {"train": train, "validation": validation, "test": test}
