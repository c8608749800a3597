"""Task names, aliases, suggestions and registration (no benchmark data needed)."""

from __future__ import annotations

import pytest

from jola_lens.tasks import Example, Task, get_task, list_tasks, register_task
from jola_lens.tasks.registry import resolve_name

COMMONSENSE = ["ARC-c", "ARC-e", "BoolQ", "HellaSwag", "OBQA", "PIQA", "SIQA", "WinoGrande"]
MMLU = ["biology", "business", "chemistry", "computer science", "economics", "engineering", "health", "history",
        "law", "math", "philosophy", "physics", "psychology", "other"]
GEM = ["common_gen", "e2e_nlg", "web_nlg", "xsum"]
EXTRA = ["SST-2", "RTE", "COPA", "SciQ", "CommonsenseQA"]


def test_all_issue_names_are_registered():
    expected = ([f"commonsense/{n}" for n in COMMONSENSE] + [f"mmlu_pro/{n}" for n in MMLU]
                + [f"gem/{n}" for n in GEM] + [f"extra/{n}" for n in EXTRA])
    assert set(expected) <= set(list_tasks())


@pytest.mark.parametrize(("alias", "canonical"), [
    ("arc_challenge", "commonsense/ARC-c"), ("ARC-Challenge", "commonsense/ARC-c"),
    ("commonsense/arc-c", "commonsense/ARC-c"), ("ARC-Easy", "commonsense/ARC-e"), ("boolq", "commonsense/BoolQ"),
    ("social_i_qa", "commonsense/SIQA"), ("openbookqa", "commonsense/OBQA"), ("winogrande", "commonsense/WinoGrande"),
    ("mmlu_pro/computer_science", "mmlu_pro/computer science"),
    ("MMLU-Pro/Computer Science", "mmlu_pro/computer science"),
    ("mmlu/cs", "mmlu_pro/computer science"), ("history", "mmlu_pro/history"), ("gem/E2E", "gem/e2e_nlg"),
    ("webnlg", "gem/web_nlg"), ("extra/sst2", "extra/SST-2"), ("csqa", "extra/CommonsenseQA"),
])
def test_aliases_resolve(alias, canonical):
    assert resolve_name(alias) == canonical


def test_task_and_subtask_equal_full_name(data_dir):
    a = get_task("commonsense", subtask="ARC-c", data_dir=data_dir)
    b = get_task("commonsense/ARC-c", data_dir=data_dir)
    assert (a.name, a.source, a.family, a.kind) == (b.name, b.source, "commonsense", "classification")
    assert a.max_new_tokens == 16


@pytest.mark.parametrize(("typo", "suggestion"), [
    ("boolqq", "commonsense/BoolQ"), ("comonsense/ARC-c", "commonsense/ARC-c"), ("hellaswg", "commonsense/HellaSwag"),
    ("mmlu_pro/biologi", "mmlu_pro/biology"),
])
def test_unknown_name_lists_close_matches(typo, suggestion):
    with pytest.raises(ValueError, match="unknown task") as info:
        get_task(typo)
    assert suggestion in str(info.value)


class _Constant(Task):
    name, family, kind, formulation, source, max_new_tokens = "mine/constant", "custom", "generation", "text", "x", 8

    def available_splits(self):
        return ("train", "test")

    def _load(self, split):
        return [Example(f"{split}:{i}", f"say {i}", str(i), references=(str(i),)) for i in range(3)]

    def parse(self, response, example):
        return response.strip() or None

    def score(self, responses, examples):
        return {"n": float(len(responses))}, []


def test_register_task_passes_only_accepted_kwargs():
    register_task("mine/constant", lambda formulation="label": _Constant())
    task = get_task("mine", subtask="constant", formulation="text")
    assert task.load_split("test")[1].target == "1"
    with pytest.raises(ValueError, match="template"):
        get_task("mine/constant", template="other")
    with pytest.raises(ValueError, match="no 'validation' split"):
        task.load_split("validation")
