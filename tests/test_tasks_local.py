"""Local benchmark files (shared/data): counts as in MANIFEST.md, templates, prompts for every task."""

from __future__ import annotations

import json

import pytest

from jola_lens.tasks import get_task, hf_records, list_tasks, render_prompt
from jola_lens.tasks.files import read_records

COMMONSENSE_COUNTS = {  # name: (train pool, test)
    "ARC-c": (1119, 1172), "ARC-e": (2251, 2376), "BoolQ": (9427, 3270), "OBQA": (4957, 500),
    "PIQA": (16113, 1838), "SIQA": (33410, 1954), "WinoGrande": (40398, 1267), "HellaSwag": (1000, 9042),
}
MMLU_COUNTS = {"math": 1351, "physics": 1299, "chemistry": 1132, "law": 1101, "engineering": 969, "other": 924,
               "economics": 844, "health": 818, "psychology": 798, "business": 789, "biology": 717,
               "philosophy": 499, "computer science": 410, "history": 381}
LABELS = {"ARC-c": "answer", "ARC-e": "answer", "OBQA": "answer", "SIQA": "answer", "PIQA": "solution",
          "WinoGrande": "option", "HellaSwag": "ending"}


@pytest.mark.parametrize(("name", "counts"), COMMONSENSE_COUNTS.items())
def test_commonsense_counts_and_labels(data_dir, name, counts):
    task = get_task(f"commonsense/{name}", data_dir=data_dir)
    assert task.source == f"local:{data_dir}"
    train, test = task.load_split("train"), task.load_split("test")
    assert (len(train), len(test)) == counts
    for example in train[:50] + test[:50]:
        assert example.choices[example.answer_index] == example.target
        assert example.instruction.endswith("Answer format: " + "/".join(example.choices))
        prefix = LABELS.get(name)
        assert all(c.startswith(prefix) for c in example.choices) if prefix else example.choices == ("true", "false")


def test_text_formulation_targets_option_texts(data_dir):
    label = get_task("commonsense/PIQA", data_dir=data_dir).load_split("test")[0]
    text = get_task("commonsense/PIQA", data_dir=data_dir, formulation="text").load_split("test")[0]
    assert label.target == "solution1" and label.choices == ("solution1", "solution2")
    assert text.target == text.choices[0] and text.target.startswith("Provide the guinea pig with a cage")
    assert text.instruction.endswith("Answer format: the text of the correct option")
    assert (text.id, text.answer_index) == (label.id, label.answer_index)


def test_cloze_formulation_is_lm_evals_prompt_and_continuation(data_dir):
    label = get_task("commonsense/HellaSwag", data_dir=data_dir).load_split("test")
    cloze = get_task("commonsense/HellaSwag", data_dir=data_dir, formulation="cloze").load_split("test")
    first = next(e for e in cloze if e.id.endswith(":0"))
    assert first.instruction == "Roof shingle removal: A man is sitting on a roof. He"
    assert first.target == " starts pulling up roofing on a roof." == first.choices[first.answer_index]
    assert [(e.id, e.answer_index) for e in cloze] == [(e.id, e.answer_index) for e in label]
    boolq_label = get_task("commonsense/BoolQ", data_dir=data_dir).load_split("test")[0]
    boolq_cloze = get_task("commonsense/BoolQ", data_dir=data_dir, formulation="cloze").load_split("test")[0]
    assert boolq_cloze.instruction == "Question: does ethanol take more energy make that produces?\nAnswer:"
    assert boolq_cloze.choices == (" yes", " no") and boolq_cloze.answer_index == boolq_label.answer_index == 1


def test_mmlu_pro_cloze_drops_the_lettered_options(data_dir):
    label = get_task("mmlu_pro/history", data_dir=data_dir).load_split("test")[0]
    cloze = get_task("mmlu_pro/history", data_dir=data_dir, formulation="cloze").load_split("test")[0]
    question = label.instruction.split("Question: ", 1)[1].split("\n\nA. ", 1)[0]
    assert cloze.instruction == f"The following is a question about history.\n\nQuestion: {question}"
    assert "\nA. " in label.instruction and cloze.target == cloze.choices[label.answer_index]


def test_winogrande_train_uses_the_test_file_template(data_dir):
    source = data_dir / "commonsense/winogrande/source/winogrande_xl-validation.jsonl"
    test = json.loads((data_dir / "commonsense/winogrande/test.json").read_text())
    rendered = [hf_records.winogrande(record.data) for record in read_records(source)]
    assert [(r[0], r[1][r[3]]) for r in rendered] == [(t["instruction"], t["answer"]) for t in test]


def test_hellaswag_template_and_carving(data_dir):
    task = get_task("commonsense/HellaSwag", data_dir=data_dir)
    first = next(e for e in task.load_split("test") if e.id.endswith(":0"))
    assert first.instruction == (
        "Please choose the correct ending to complete the given sentence: Roof shingle removal: A man is sitting on "
        "a roof. he\n\nEnding1: is using wrap to wrap a pair of skis. Ending2: is ripping level tiles off. Ending3: "
        "is holding a rubik's cube. Ending4: starts pulling up roofing on a roof.\n\nAnswer format: "
        "ending1/ending2/ending3/ending4")
    assert first.target == "ending4"
    ids = [e.id for e in task.load_split("train") + task.load_split("test")]
    assert len(set(ids)) == 10042


@pytest.mark.parametrize(("category", "total"), MMLU_COUNTS.items())
def test_mmlu_pro_counts(data_dir, category, total):
    task = get_task(f"mmlu_pro/{category}", data_dir=data_dir)
    train, val, test = (task.load_split(s) for s in ("train", "validation", "test"))
    assert len(train) == min(400, total // 2) and len(train) + len(test) == total and len(val) == 5
    assert not {e.id for e in train} & {e.id for e in test}
    assert train[0].choices == tuple("ABCDEFGHIJ"[:len(train[0].choices)])


def test_mmlu_pro_prompt_lists_options(data_dir):
    example = get_task("mmlu_pro/history", data_dir=data_dir).load_split("validation")[0]
    assert "\n\nA. " in example.instruction and "\nJ. " in example.instruction
    assert example.instruction.endswith("Answer format: A/B/C/D/E/F/G/H/I/J")


@pytest.mark.parametrize(("name", "counts"), [  # split: (examples, references)
    ("gem/e2e_nlg", {"train": (42061, None), "validation": (1484, 4299), "test": (1847, 4693)}),
    ("gem/web_nlg", {"train": (35426, None), "validation": (1667, 4464), "test": (1779, 5150)}),
    ("gem/common_gen", {"train": (39069, None), "validation": (993, 4018), "test": (1497, 6042)}),
    ("gem/xsum", {"train": (400, 400), "test": (601, 601)}),
])
def test_gem_counts(data_dir, name, counts):
    task = get_task(name, data_dir=data_dir)
    assert (task.kind, task.max_new_tokens) == ("generation", 64)
    for split, (n_examples, n_references) in counts.items():
        examples = task.load_split(split)
        assert len(examples) == n_examples
        if n_references is not None:
            assert sum(len(e.references) for e in examples) == n_references
        assert all(e.target == e.references[0] for e in examples[:100])


def test_web_nlg_triples_and_template_choice(data_dir):
    example = get_task("gem/web_nlg", data_dir=data_dir).load_split("test")[1]
    assert example.instruction.startswith("Nie_Haisheng | birthDate | 1964-10-13; Nie_Haisheng | occupation | ")
    assert len(example.references) == 3
    other = get_task("gem/web_nlg", data_dir=data_dir, template="PALM_prompt").load_split("test")[1]
    assert other.instruction.startswith("I will verbalize") and other.references == example.references
    with pytest.raises(ValueError, match="available: .*implicit-graph-description"):
        get_task("gem/web_nlg", data_dir=data_dir, template="no such template")


def test_prompts_render_for_every_task(data_dir):
    for name in list_tasks():
        if name.split("/")[0] not in ("commonsense", "mmlu_pro", "gem", "extra"):
            continue
        task = get_task(name, data_dir=data_dir)
        example = task.load_split("test")[0]
        prompt = render_prompt(example.instruction)
        assert prompt.startswith("Below is an instruction that describes a task.")
        assert prompt.endswith(f"{example.instruction}\n\n### Response:\n") and example.target.strip(), name
        if task.kind == "classification":
            assert example.choices[example.answer_index] == example.target, name
