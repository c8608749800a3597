"""User datasets as tasks, without code: `task_from_file` on JSON (array or lines), JSONL, CSV or a
`datasets.Dataset`/`DatasetDict`.

Accepted record shapes (fields matched exactly):
* {"question", "choices" (or "options"), "answer"}: classification. `answer` is the text of a choice, a letter
  ("A" = first choice) or a 0-based index (int or digits). In CSV, choices are a JSON list or "a|b|c". The
  instruction is rendered in the LLM-Adapters ARC format (answer1..answerN labels; the text and cloze
  formulations use the choice texts).
* {"instruction", "answer" or "output"} (optional "input", appended after a blank line) or {"input", "output"}:
  classification when every instruction ends with an LLM-Adapters "Answer format: a/b" line that contains the
  answer (labels from that line, option texts parsed back when listed), generation otherwise. Pass
  `kind="classification"` to force it (records without that line then share the set of all answers as
  labels) or `kind="generation"`.
Splits: a "split" field (train / validation|valid|val|dev / test) if every record has one; else separate files
via `train=`, `validation=`, `test=`; else one file carved with the fixed carve seed 0 into 70% train, 10%
validation and 20% test (at least one test item).
Custom behaviour: `prompt_fn(record) -> instruction`, `parse_fn(response, example) -> answer | None`,
`score_fn(responses, examples) -> (metrics, records)`; or subclass `Task` and `register_task` it.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jola_lens.tasks.base import CLASSIFICATION_MAX_NEW_TOKENS, GENERATION_MAX_NEW_TOKENS, Task
from jola_lens.tasks.choice import ChoiceItem, check_formulation
from jola_lens.tasks.examples import Example
from jola_lens.tasks.files import Record, check_policy, convert_records, read_records, require_file
from jola_lens.tasks.formats import ANSWER_LAYOUT, numbered_labels, parse_instruction, render
from jola_lens.tasks.parsing import first_line, parse_label, parse_option_text
from jola_lens.tasks.scoring import score_choices, score_generation
from jola_lens.tasks.splits import carve

KINDS = ("classification", "generation")
SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
                 "val": "validation", "dev": "validation", "test": "test"}
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
FILE_HINT = "Check the path passed to task_from_file."

DataLike = str | os.PathLike | Any  # a path, a datasets.Dataset / DatasetDict, or a list of dicts


@dataclass(frozen=True)
class _Raw:
    """A record reduced to an instruction and its answer; `choice` is set for choice-shaped records."""

    instruction: str
    answer: str
    split: str | None
    choice: tuple[tuple[str, ...], tuple[str, ...], int] | None = None


def _read(data: DataLike) -> tuple[list[Record], str]:
    """Records and a description of where they came from."""
    if isinstance(data, (str, os.PathLike)):
        path = require_file(Path(data).expanduser(), FILE_HINT)
        return list(read_records(path)), str(path)
    if isinstance(data, Mapping):  # DatasetDict: keep each row's split
        return [Record(f"{split} row {i}", dict(row, split=split)) for split, rows in data.items()
                for i, row in enumerate(rows)], type(data).__name__
    return [Record(f"row {i}", dict(row)) for i, row in enumerate(data)], type(data).__name__


def _answer_index(answer: Any, choices: tuple[str, ...]) -> int:
    if isinstance(answer, bool):
        raise TypeError("answer must be an index, a letter or a choice text, not a bool")
    if isinstance(answer, int):
        index = answer
    elif isinstance(answer, str) and answer.strip() in choices:
        index = choices.index(answer.strip())
    elif isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip() in string.ascii_uppercase:
        index = string.ascii_uppercase.index(answer.strip())
    elif isinstance(answer, str) and answer.strip().isdigit():
        index = int(answer)
    else:
        raise ValueError(f"answer {answer!r} is neither an index, a letter nor one of the choices")
    if not 0 <= index < len(choices):
        raise ValueError(f"answer index {index} out of range for {len(choices)} choices")
    return index


def _raw(record: Any, prompt_fn: Callable[[dict], str] | None) -> _Raw:
    if not isinstance(record, Mapping):
        raise TypeError(f"expected an object with fields, got {type(record).__name__}")
    split = record.get("split")
    if split is not None:
        if str(split).lower() not in SPLIT_ALIASES:
            raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_ALIASES)}")
        split = SPLIT_ALIASES[str(split).lower()]
    options = record.get("choices", record.get("options"))
    if "question" in record and options is not None:
        if isinstance(options, Mapping):  # HF style {"label": [...], "text": [...]}
            options = options["text"]
        elif isinstance(options, str):  # CSV cell: a JSON list or "a|b|c"
            options = json.loads(options) if options.lstrip().startswith("[") else options.split("|")
        texts = tuple(str(option).strip() for option in options)
        index = _answer_index(record["answer"], texts)
        labels = numbered_labels("answer", len(texts))
        instruction = prompt_fn(dict(record)) if prompt_fn else render(ANSWER_LAYOUT, str(record["question"]),
                                                                         labels, texts)
        return _Raw(instruction, labels[index], split, (labels, texts, index))
    if prompt_fn:
        instruction = prompt_fn(dict(record))
    elif "instruction" in record:
        instruction = str(record["instruction"])
        if record.get("input"):
            instruction += f"\n\n{record['input']}"
    else:
        instruction = str(record["input"])
    answer = record["answer"] if "answer" in record else record["output"]
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)
    if not isinstance(answer, str) or not answer.strip() or not instruction.strip():
        raise ValueError("instruction and answer must be non-empty text")
    return _Raw(instruction, answer.strip(), split)


def _choice_fields(raw: _Raw) -> tuple[tuple[str, ...], tuple[str, ...], int] | None:
    if raw.choice is not None:
        return raw.choice
    try:
        return parse_instruction(raw.instruction, raw.answer)
    except ValueError:
        return None


class CustomTask(Task):
    """A task over user records (see the module docstring)."""

    family = "custom"

    def __init__(self, name: str, source: str, examples: dict[str, list[Example]], kind: str, formulation: str,
                 parse_fn: Callable[[str, Example], str | None] | None = None,
                 score_fn: Callable[[list[str], list[Example]], tuple[dict[str, float], list[dict]]] | None = None):
        super().__init__()
        self.name, self.source, self.kind, self.formulation = name, source, kind, formulation
        self.max_new_tokens = CLASSIFICATION_MAX_NEW_TOKENS if kind == "classification" else GENERATION_MAX_NEW_TOKENS
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


def task_from_file(path: DataLike | None = None, *, name: str | None = None, train: DataLike | None = None,
                   validation: DataLike | None = None, test: DataLike | None = None, kind: str | None = None,
                   formulation: str = "label", prompt_fn: Callable[[dict], str] | None = None,
                   parse_fn: Callable[[str, Example], str | None] | None = None,
                   score_fn: Callable[[list[str], list[Example]], tuple[dict[str, float], list[dict]]] | None = None,
                   on_bad_record: str = "stop") -> Task:
    """A task from one data file/dataset (`path`) or from separate `train`/`validation`/`test` ones."""
    check_formulation(formulation)
    check_policy(on_bad_record)
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    separate = {s: d for s, d in (("train", train), ("validation", validation), ("test", test)) if d is not None}
    if (path is None) == (not separate):
        raise ValueError("pass either one data file (path) or separate train=/validation=/test= files")
    if separate and not {"train", "test"} <= separate.keys():
        raise ValueError("separate files need at least train= and test=")
    sources = {"all": path} if path is not None else separate
    raws: dict[str, list[_Raw]] = {}
    origins = []
    for split, data in sources.items():
        records, origin = _read(data)
        origins.append(origin)
        raws[split] = convert_records(records, lambda _, record: _raw(record, prompt_fn), origin=origin,
                                      on_bad_record=on_bad_record)
    name = name or _default_name(path if path is not None else train)
    every = [raw for group in raws.values() for raw in group]
    if not every:
        raise ValueError(f"{name}: no usable records in {', '.join(origins)}")
    kind = kind or _infer_kind(name, every)
    examples = _to_examples(name, raws, kind, formulation)
    return CustomTask(name, f"local:{';'.join(origins)}", examples, kind, formulation, parse_fn, score_fn)


def _default_name(data: DataLike) -> str:
    return f"custom/{Path(data).stem}" if isinstance(data, (str, os.PathLike)) else "custom/dataset"


def _infer_kind(name: str, raws: list[_Raw]) -> str:
    shaped = [_choice_fields(raw) is not None for raw in raws]
    if all(shaped):
        return "classification"
    if not any(shaped):
        return "generation"
    raise ValueError(f"{name}: {sum(shaped)} of {len(raws)} records are multiple-choice shaped and the others "
                     "are not; pass kind='classification' or kind='generation'")


def _to_examples(name: str, raws: dict[str, list[_Raw]], kind: str, formulation: str) -> dict[str, list[Example]]:
    all_answers = tuple(sorted({raw.answer for group in raws.values() for raw in group}))
    by_split: dict[str, list[Example]] = {}
    for group, items in raws.items():
        for n, raw in enumerate(items):
            item_id = f"{name}:{group}:{n}"
            if kind == "generation":
                if raw.choice is not None:
                    raise ValueError(f"{name}: question/choices records cannot form a generation task")
                example = Example(item_id, raw.instruction, raw.answer, references=(raw.answer,))
            else:
                fields = _choice_fields(raw) or (all_answers, all_answers, all_answers.index(raw.answer))
                example = ChoiceItem(item_id, raw.instruction, *fields).to_example(formulation)
            by_split.setdefault(group if group != "all" else raw.split or "all", []).append(example)
    if "all" in by_split:
        if len(by_split) > 1:
            raise ValueError(f"{name}: some records have a 'split' field and others do not")
        by_split = _carve_all(name, by_split["all"])
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
