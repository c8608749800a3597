"""User data as tasks: JSON/JSONL/CSV files, datasets.Dataset, custom prompt/scorer, bad records."""

from __future__ import annotations

import json
import logging

import pytest

from jola_lens.tasks import BadRecordError, get_task, task_from_file

MC_RECORDS = [{"question": f"What is {i} + 1?", "choices": [str(i), str(i + 1), str(i + 2)], "answer": 1}
              for i in range(20)]


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_multiple_choice_jsonl(tmp_path):
    path = _jsonl(tmp_path / "sums.jsonl", MC_RECORDS)
    task = task_from_file(path)
    assert (task.name, task.family, task.kind, task.max_new_tokens) == ("custom/sums", "custom", "classification", 16)
    splits = task.splits(train_size=10, val_size=4)
    assert [len(task.load_split(s)) for s in ("train", "validation", "test")] == [14, 2, 4]  # 70/10/20
    example = task.load_split("test")[0]
    assert example.choices == ("answer1", "answer2", "answer3") and example.target == "answer2"
    assert example.instruction.startswith("Please choose the correct answer to the question: What is")
    assert len(splits.train) == 10 and len(splits.test) == 4
    metrics, records = task.score(["the correct answer is answer2", "answer1", "", "answer2"], splits.test)
    assert metrics["accuracy"] == 50.0 and records[2]["prediction"] is None
    text = task_from_file(path, formulation="text").load_split("test")[0]
    assert text.target == text.choices[1] and text.choices[0].isdigit()
    cloze = task_from_file(path, formulation="cloze").load_split("test")[0]
    assert cloze.instruction == text.instruction.split("\n\nAnswer1: ")[0] and cloze.choices == text.choices
    assert "Answer" not in cloze.instruction.split("question: ", 1)[1]
    assert task.parse("I think answer3", example) == "answer3"


def test_answers_as_letter_or_text(tmp_path):
    records = [{"question": "Sky?", "options": ["red", "blue"], "answer": "B", "split": "train"},
               {"question": "Grass?", "options": ["green", "pink"], "answer": "green", "split": "test"}]
    task = task_from_file(_jsonl(tmp_path / "colours.jsonl", records))
    assert task.load_split("train")[0].answer_index == 1 and task.load_split("test")[0].answer_index == 0


def test_csv_generation_and_get_task_by_path(tmp_path):
    path = tmp_path / "echo.csv"
    path.write_text("input,output\n" + "".join(f"say {i},the number {i} is written as {i}\n" for i in range(10)))
    task = get_task(f"file:{path}")
    assert task.kind == "generation" and task.max_new_tokens == 64
    assert get_task(str(path)).load_split("test") == task.load_split("test")
    test = task.load_split("test")
    metrics, records = task.score([e.target for e in test], test)
    assert metrics["bleu"] == pytest.approx(100.0) and records[0]["references"] == [test[0].target]


def test_llm_adapters_style_records_are_classification(tmp_path):
    records = [{"instruction": f"Is {i} even?\n\nAnswer format: true/false", "input": "", "output": "...",
                "answer": "true" if i % 2 == 0 else "false"} for i in range(10)]
    task = task_from_file(train=_jsonl(tmp_path / "train.json", records[:8]),
                          test=_jsonl(tmp_path / "t.json", records[8:]))
    assert task.kind == "classification" and task.available_splits() == ("train", "test")
    assert task.load_split("test")[1].choices == ("true", "false")


def test_dataset_object_and_custom_callables():
    datasets = pytest.importorskip("datasets")
    data = datasets.Dataset.from_list([{"word": w, "label": w.upper()} for w in "abcdefghij"])
    task = task_from_file(
        [{"word": r["word"], "answer": r["label"]} for r in data], name="custom/upper",
        prompt_fn=lambda r: f"Uppercase: {r['word']}", kind="generation",
        parse_fn=lambda response, example: response.strip().upper(),
        score_fn=lambda responses, examples: ({"n": float(len(examples))}, []))
    example = task.load_split("test")[0]
    assert example.instruction == f"Uppercase: {example.target.lower()}"
    assert task.parse(" x ", example) == "X" and task.score(["x"], [example]) == ({"n": 1.0}, [])
    from_dataset = task_from_file(data.rename_columns({"word": "input", "label": "output"}))
    assert from_dataset.name == "custom/dataset" and len(from_dataset.load_split("train")) == 7


def test_malformed_record_names_file_and_line(tmp_path, caplog):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"input": "a", "output": "b"}\n{"input": "c", "output": "d"}\n{"input": "e"}\n'
                    '{not json\n' + "".join(f'{{"input": "x{i}", "output": "y"}}\n' for i in range(6)))
    with pytest.raises(BadRecordError, match=r"broken\.jsonl: bad line 3: no 'output' value \(fields: input\); "
                                             r"shape 'input \+ output' needs input, output\."):
        task_from_file(path)
    with caplog.at_level(logging.WARNING):
        task = task_from_file(path, on_bad_record="skip")
    assert "bad line 3" in caplog.text and "bad line 4: invalid JSON" in caplog.text
    assert "skipped 2 of 10 records" in caplog.text and task.skipped == 2
    assert sum(len(task.load_split(s)) for s in task.available_splits()) == 8


def test_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        task_from_file(tmp_path / "missing.jsonl")
    path = _jsonl(tmp_path / "x.jsonl", MC_RECORDS)
    with pytest.raises(ValueError, match="either one data file"):
        task_from_file(path, train=path, test=path)
    with pytest.raises(ValueError, match="on_bad_record"):
        task_from_file(path, on_bad_record="ignore")
    with pytest.raises(ValueError, match="formulation"):
        task_from_file(path, formulation="letters")
