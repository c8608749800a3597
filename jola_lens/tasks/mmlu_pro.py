"""MMLU-Pro (TIGER-Lab): 14 categories, up to ten options A-J, scored by the chosen letter.

Instruction (label formulation; target: the letter):
    "The following is a multiple choice question about <category>. Choose the correct option.\\n\\n"
    "Question: <question>\\n\\nA. <option>\\nB. <option>\\n...\\n\\nAnswer format: A/B/.../J"
The text formulation asks for the option text instead; the cloze formulation shows only
    "The following is a question about <category>.\n\nQuestion: <question>" (see `choice.py`).

Data: `mmlu_pro/mmlu_pro_test_data.json` (12,032 questions) and `mmlu_pro_val_data.json` (5 per category, the
few-shot examples), or the hub (TIGER-Lab/MMLU-Pro, same splits and fields). MMLU-Pro has no training split:
from each category's test questions a fixed seeded pool of min(400, n // 2) (carve seed 0) is carved off as
the training pool ("train") and the remaining questions are the test set; "validation" is the official
5-question split. E.g. math 1351 -> 400 / 951, history 381 -> 190 / 191.
"""

from __future__ import annotations

import functools
import os
import string

from jola_lens.tasks.choice import ChoiceItem, ChoiceTask, check_no_template
from jola_lens.tasks.examples import Example
from jola_lens.tasks.files import Record, check_policy, convert_records, read_records
from jola_lens.tasks.formats import ANSWER_FORMAT
from jola_lens.tasks.hf_data import read_hub_split
from jola_lens.tasks.parsing import parse_letter
from jola_lens.tasks.registry import register_aliases
from jola_lens.tasks.sources import resolve_source
from jola_lens.tasks.splits import capped_half, carve

CATEGORIES = ("biology", "business", "chemistry", "computer science", "economics", "engineering", "health",
              "history", "law", "math", "philosophy", "physics", "psychology", "other")
ALIASES = {"computer science": ("cs", "computer_science", "computerscience"), "math": ("mathematics",)}
POOL_CAP = 400
LETTERS = string.ascii_uppercase[:10]
LOCAL_FILES = {"test": "mmlu_pro/mmlu_pro_test_data.json", "validation": "mmlu_pro/mmlu_pro_val_data.json"}
HUB_ID = "TIGER-Lab/MMLU-Pro"


def mmlu_pro_item(record: dict, item_id: str) -> ChoiceItem:
    options = [str(option) for option in record["options"]]
    if not 2 <= len(options) <= len(LETTERS):
        raise ValueError(f"expected 2-10 options, got {len(options)}")
    labels = tuple(LETTERS[:len(options)])
    answer_index = int(record["answer_index"])
    if not 0 <= answer_index < len(labels):
        raise ValueError(f"answer_index {answer_index} out of range for {len(labels)} options")
    if "answer" in record and record["answer"] != labels[answer_index]:
        raise ValueError(f"answer {record['answer']!r} disagrees with answer_index {answer_index}")
    listing = "\n".join(f"{label}. {text}" for label, text in zip(labels, options))
    instruction = (f"The following is a multiple choice question about {record['category']}. Choose the correct "
                   f"option.\n\nQuestion: {record['question']}\n\n{listing}\n\n{ANSWER_FORMAT}{'/'.join(labels)}")
    question = f"The following is a question about {record['category']}.\n\nQuestion: {record['question']}"
    return ChoiceItem(item_id, instruction, labels, tuple(o.strip() for o in options), answer_index, question)


class MMLUProTask(ChoiceTask):
    """One MMLU-Pro category."""

    family = "mmlu_pro"

    def __init__(self, category: str, *, data_dir: str | os.PathLike | None = None, source: str = "auto",
                 formulation: str = "label", template: str | None = None, on_bad_record: str = "stop") -> None:
        super().__init__(formulation)
        self.name = f"mmlu_pro/{category}"
        check_no_template(self.name, template)
        self.category = category
        self.on_bad_record = check_policy(on_bad_record)
        self._source = resolve_source(self.name, source, data_dir, local=[LOCAL_FILES["test"]], hub=HUB_ID)
        self.source = str(self._source)
        self._carved: tuple[list[ChoiceItem], list[ChoiceItem]] | None = None

    def available_splits(self) -> tuple[str, ...]:
        return ("train", "validation", "test")

    def _items(self, split: str) -> list[ChoiceItem]:
        if split == "validation":
            return self._category_items("validation")
        if self._carved is None:
            items = self._category_items("test")
            self._carved = carve(items, capped_half(len(items), POOL_CAP))
        pool, rest = self._carved
        return pool if split == "train" else rest

    def _category_items(self, split: str) -> list[ChoiceItem]:
        if self._source.kind == "hub":
            rows = read_hub_split(HUB_ID, None, split)
            records, origin = [Record(f"row {i}", row) for i, row in enumerate(rows)], f"{self.source} {split}"
        else:
            path = self._source.path / LOCAL_FILES[split]
            records, origin = read_records(path), str(path)
        ours = [r for r in records if not isinstance(r.data, dict) or r.data.get("category") == self.category]
        prefix = f"{self.name}:{self._source.kind}:{split}"
        return convert_records(ours, lambda i, data: mmlu_pro_item(data, f"{prefix}:{data['question_id']}"),
                               origin=origin, on_bad_record=self.on_bad_record)

    def parse(self, response: str, example: Example) -> str | None:
        """Label formulation: the option letter, read robustly (see `parsing.parse_letter`)."""
        if self.formulation == "label":
            return parse_letter(response, example.choices)
        return super().parse(response, example)


for _category in CATEGORIES:
    register_aliases(f"mmlu_pro/{_category}", functools.partial(MMLUProTask, _category), ALIASES.get(_category, ()))
