"""Rows in the Hugging Face schema of each multiple-choice dataset -> LLM-Adapters-format fields.

Used for the embedded copies, the hub and WinoGrande's local JSONL (all share the HF schema). Rendering the
embedded BoolQ, PIQA, SIQA and WinoGrande rows this way reproduces the LLM-Adapters test files exactly.
Extra tasks (not in LLM-Adapters) use the same format:
* SST-2: "Please choose the sentiment of the following sentence: <s>\\n\\nAnswer format: negative/positive"
* RTE: "Please answer the following question with yes or no, question: does the premise "<s1>" entail the
  hypothesis "<s2>"?\\n\\nAnswer format: yes/no"
* COPA: ARC format, question "<premise> What was the cause?" (or effect), answer1/answer2
* SciQ: ARC format; the correct answer and the 3 distractors in a seeded order (per question); no support text
* CommonsenseQA: ARC format with answer1..answer5
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from jola_lens.tasks.formats import (
    ANSWER_LAYOUT,
    BLANK_LAYOUT,
    ENDING_LAYOUT,
    SOLUTION_LAYOUT,
    TRUE_FALSE_LAYOUT,
    Layout,
    numbered_labels,
    render,
)

Fields = tuple[str, tuple[str, ...], tuple[str, ...], int]
Converter = Callable[[dict], Fields]

SENTIMENT_LAYOUT = Layout("Please choose the sentiment of the following sentence: ")
YES_NO_LAYOUT = Layout("Please answer the following question with yes or no, question: ")


def _numbered(layout: Layout, prefix: str, body: str, texts: Sequence[str], answer_index: int) -> Fields:
    labels = numbered_labels(prefix, len(texts))
    return render(layout, body, labels, texts), labels, tuple(text.strip() for text in texts), answer_index


def _keyed_answer(choices: dict, key: str) -> tuple[tuple[str, ...], int]:
    keys = list(choices["label"])
    return tuple(choices["text"]), keys.index(key)


def arc(row: dict) -> Fields:
    texts, index = _keyed_answer(row["choices"], row["answerKey"])
    return _numbered(ANSWER_LAYOUT, "answer", row["question"], texts, index)


def openbookqa(row: dict) -> Fields:
    texts, index = _keyed_answer(row["choices"], row["answerKey"])
    return _numbered(ANSWER_LAYOUT, "answer", row["question_stem"], texts, index)


def commonsense_qa(row: dict) -> Fields:
    return arc(row)


def boolq(row: dict) -> Fields:
    labels = ("true", "false")
    answer = row["answer"]
    if not isinstance(answer, bool):
        raise TypeError(f"BoolQ answer must be a bool, got {answer!r}")
    return render(TRUE_FALSE_LAYOUT, f"{row['question']}?", labels), labels, labels, 0 if answer else 1


def piqa(row: dict) -> Fields:
    return _numbered(SOLUTION_LAYOUT, "solution", row["goal"], (row["sol1"], row["sol2"]), int(row["label"]))


def social_i_qa(row: dict) -> Fields:
    texts = (row["answerA"], row["answerB"], row["answerC"])
    return _numbered(ANSWER_LAYOUT, "answer", f"{row['context']} {row['question']}", texts, int(row["label"]) - 1)


def winogrande(row: dict) -> Fields:
    texts = (row["option1"], row["option2"])
    return _numbered(BLANK_LAYOUT, "option", row["sentence"], texts, int(row["answer"]) - 1)


def hellaswag(row: dict) -> Fields:
    endings = tuple(row["endings"])
    if len(endings) != 4:
        raise ValueError(f"HellaSwag needs 4 endings, got {len(endings)}")
    return _numbered(ENDING_LAYOUT, "ending", f"{row['activity_label']}: {row['ctx']}", endings, int(row["label"]))


def sst2(row: dict) -> Fields:
    labels = ("negative", "positive")
    return render(SENTIMENT_LAYOUT, row["sentence"].strip(), labels), labels, labels, _binary(row["label"])


def rte(row: dict) -> Fields:
    labels = ("yes", "no")  # label 0 = entailment
    body = f'does the premise "{row["sentence1"]}" entail the hypothesis "{row["sentence2"]}"?'
    return render(YES_NO_LAYOUT, body, labels), labels, labels, _binary(row["label"])


def copa(row: dict) -> Fields:
    relation = {"cause": "cause", "effect": "effect"}[row["question"]]
    body = f"{row['premise']} What was the {relation}?"
    return _numbered(ANSWER_LAYOUT, "answer", body, (row["choice1"], row["choice2"]), _binary(row["label"]))


def sciq(row: dict) -> Fields:
    options = [row["correct_answer"], row["distractor1"], row["distractor2"], row["distractor3"]]
    order = list(range(4))
    random.Random(f"sciq:{row['question']}").shuffle(order)
    texts = tuple(options[i] for i in order)
    return _numbered(ANSWER_LAYOUT, "answer", row["question"], texts, order.index(0))


def _binary(label) -> int:
    value = int(label)
    if value not in (0, 1):
        raise ValueError(f"label must be 0 or 1, got {label!r}")
    return value
