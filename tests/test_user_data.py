"""Bring your own data as it comes: recognised shapes, explicit mappings, label words, inferred classification,
every source (the hub through a local stand-in), and errors that say what to do."""

from __future__ import annotations

import csv
import json
import logging
import os
import time

import pytest
from test_training_helpers import tiny_model_dir  # noqa: F401  (fixture)

from jola_lens.tasks import BadRecordError, HubUnavailableError, get_task, hf_data, task_from_file
from jola_lens.tasks.data_options import DataOptions
from jola_lens.tasks.files import read_records
from jola_lens.tasks.labels import majority_rate
from jola_lens.tasks.shapes import ACCEPTED_SHAPES
from jola_lens.tasks.user_sources import parse_hub_reference

datasets = pytest.importorskip("datasets")

ACCEPTED = "; ".join(ACCEPTED_SHAPES)
SKIP = "To skip bad records, pass --on_bad_record skip (on_bad_record='skip' in Python)."
REVIEWS = [(f"review number {i} was {'great' if i % 3 else 'awful'}", "positive" if i % 3 else "negative")
           for i in range(30)]  # 20 positive, 10 negative


def _csv(path, header, rows, delimiter=","):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _all(task):
    return [e for split in task.available_splits() for e in task.load_split(split)]


# ---- shapes ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("column", ["text", "sentence", "review", "content"])
def test_text_and_label_csv_is_classification(tmp_path, caplog, column):
    path = _csv(tmp_path / "reviews.csv", [column, "label"], REVIEWS)
    with caplog.at_level(logging.INFO, logger="jola_lens"):
        task = get_task(str(path))
    assert (task.kind, task.labels, task.shape) == ("classification", ("negative", "positive"), f"{column} + label")
    assert f"{path}: read as {column} + label (columns: {column}, label)" in caplog.text
    assert caplog.text.count("read as") == 1
    assert ("custom/reviews: classification, 2 labels: negative 10, positive 20 (inferred: 'label' takes 2 "
            "distinct values; the rule: at most 20 distinct values, each seen at least 2 times)") in caplog.text
    example = next(e for e in _all(task) if e.id.endswith(":all:1"))
    assert example.instruction == (f"Please choose the label of the following {column}: review number 1 was great"
                                   "\n\nAnswer format: negative/positive")
    assert (example.target, example.choices, example.answer_index) == ("positive", ("negative", "positive"), 1)
    assert sum(len(task.load_split(s)) for s in ("train", "validation", "test")) == 30


def test_class_label_ints_take_their_names(caplog):
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    data = datasets.Dataset.from_dict({"sentence": [t for t, _ in REVIEWS],
                                       "label": [int(l == "positive") for _, l in REVIEWS]}, features=features)
    with caplog.at_level(logging.INFO, logger="jola_lens"):
        task = task_from_file(data)
    assert task.labels == ("negative", "positive")
    assert "classification, 2 labels: negative 10, positive 20 (the names of the ClassLabel 'label')" in caplog.text
    assert {e.target for e in _all(task)} == {"negative", "positive"}


def test_int_labels_with_label_names_and_label_words(tmp_path, caplog):
    path = _csv(tmp_path / "ints.csv", ["text", "label"], [(t, int(l == "positive")) for t, l in REVIEWS])
    with caplog.at_level(logging.INFO, logger="jola_lens"):
        digits = task_from_file(path)
    assert digits.labels == ("0", "1") and "the labels are numbers, so the model scores digits" in caplog.text
    named = task_from_file(path, label_names="negative,positive")
    words = task_from_file(path, label_words="1=positive,0=negative")
    assert named.labels == ("negative", "positive") and words.labels == ("positive", "negative")
    by_id = {e.id: e for e in _all(words)}
    for example in _all(named):  # the same items, the same gold word, options in the order the flag gives
        assert by_id[example.id].target == example.target
        assert by_id[example.id].instruction.endswith("Answer format: positive/negative")
    assert _all(named)[0].instruction.endswith("Answer format: negative/positive")
    with pytest.raises(BadRecordError, match=r"ints\.csv: bad line 2: 'label' is '0', which --label_words "
                                             r"\(1=positive, 3=x\) gives no word\."):
        task_from_file(path, label_words="1=positive,3=x")


@pytest.mark.parametrize(("first", "second"), [("premise", "hypothesis"), ("sentence1", "sentence2"),
                                               ("question", "passage")])
def test_sentence_pairs(tmp_path, first, second):
    records = [{first: f"a {i}", second: f"b {i}", "label": ["yes", "no"][i % 2]} for i in range(10)]
    task = task_from_file(_jsonl(tmp_path / "pairs.jsonl", records))
    assert task.shape == f"{first} + {second} + label" and task.labels == ("no", "yes")
    example = next(e for e in _all(task) if e.id.endswith(":all:3"))
    assert example.instruction == (f"Please choose the label of the following {first} and {second}:\n\n"
                                   f"{first.capitalize()}: a 3\n{second.capitalize()}: b 3\n\nAnswer format: no/yes")
    assert example.target == "no"


def test_prompt_completion_and_chat_messages(tmp_path):
    pc = [{"prompt": f"Translate {i}", "completion": f"number {i}"} for i in range(10)]
    task = task_from_file(_jsonl(tmp_path / "pc.jsonl", pc))
    assert task.kind == "generation" and task.shape == "prompt + completion"
    assert {(e.instruction, e.target) for e in _all(task)} == {(r["prompt"], r["completion"]) for r in pc}
    chats = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Hi {i}"},
                           {"role": "assistant", "content": f"Hello {i}"}]} for i in range(6)]
    chats.append({"messages": [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"},
                               {"role": "user", "content": "three"}, {"role": "assistant", "content": "four"},
                               {"role": "user", "content": "unanswered"}]})
    chat = task_from_file(_jsonl(tmp_path / "chat.jsonl", chats))
    pairs = {(e.instruction, e.target) for e in _all(chat)}
    assert ("Be brief.\n\nHi 3", "Hello 3") in pairs
    assert ("User: one\n\nAssistant: two\n\nUser: three", "four") in pairs  # the last assistant turn is the target
    assert chat.kind == "generation" and chat.shape == "messages"


def test_instruction_records_and_question_choices_answer(tmp_path):
    alpaca = [{"instruction": f"Add {i} and 1", "input": "" if i % 2 else "show work", "output": str(i + 1)}
              for i in range(10)]
    task = task_from_file(_jsonl(tmp_path / "alpaca.jsonl", alpaca))
    assert task.kind == "generation" and task.shape == "instruction + input + output"
    assert {e.instruction for e in _all(task)} >= {"Add 1 and 1", "Add 0 and 1\n\nshow work"}
    mc = [{"question": f"{i} + 1?", "choices": {"label": ["1", "2"], "text": [str(i), str(i + 1)]},
           "answerKey": "2"} for i in range(6)]
    choice = task_from_file(mc)
    assert choice.shape == "question + choices + answerKey"
    assert all(e.answer_index == 1 and e.choices == ("answer1", "answer2") for e in _all(choice))


def test_explicit_fields_template_and_choices(tmp_path):
    rows = [(f"title {i}", f"body {i}", ["1", "5"][i % 2]) for i in range(12)]
    path = _csv(tmp_path / "stars.csv", ["title", "body", "stars"], rows)
    with pytest.raises(ValueError, match=r"no known data shape"):
        task_from_file(path)
    mapped = task_from_file(path, text_field="title,body", label_field="stars", label_words="1=bad,5=good")
    example = next(e for e in _all(mapped) if e.id.endswith(":all:1"))
    assert example.instruction == ("Please choose the label of the following title and body:\n\nTitle: title 1\n"
                                   "Body: body 1\n\nAnswer format: bad/good") and example.target == "good"
    templated = task_from_file(path, template="{title}: {body}\nStars:", label_field="stars")
    example = next(e for e in _all(templated) if e.id.endswith(":all:1"))
    assert (example.instruction, example.target, templated.labels) == ("title 1: body 1\nStars:", "5", ("1", "5"))
    fixed = task_from_file(path, text_field="body", label_field="stars", choices="5,1,3")
    assert fixed.labels == ("5", "1", "3") and fixed.kind == "classification"
    assert _all(fixed)[0].instruction.endswith("Answer format: 5/1/3")


def test_inferred_classification_rule(tmp_path, caplog):
    def task(values):
        records = [{"input": f"item {i}", "output": value} for i, value in enumerate(values)]
        return task_from_file(_jsonl(tmp_path / "rule.jsonl", records))

    assert task([f"class {i % 20}" for i in range(40)]).kind == "classification"  # 20 values, each twice
    with caplog.at_level(logging.INFO, logger="jola_lens"):
        assert task([f"class {i % 21}" for i in range(42)]).kind == "generation"  # 21 values
    assert ("generation: 'output' takes 21 distinct values (classification needs at most 20 distinct values, each "
            "seen at least 2 times; pass --choices data to force it)") in caplog.text
    assert task(["yes"] * 5 + ["no"] * 4 + ["maybe"]).kind == "generation"  # "maybe" only once
    forced = task_from_file(tmp_path / "rule.jsonl", choices="data")
    assert forced.kind == "classification" and forced.labels == ("maybe", "no", "yes")


def test_majority_rate_beside_accuracy(tmp_path):
    task = task_from_file(_csv(tmp_path / "reviews.csv", ["text", "label"], REVIEWS))
    test = task.load_split("test")
    positives = sum(e.target == "positive" for e in test)
    assert task.majority_rate(test) == pytest.approx(100.0 * max(positives, len(test) - positives) / len(test))
    assert majority_rate(test) == task.majority_rate(test)
    generation = task_from_file(_jsonl(tmp_path / "g.jsonl", [{"input": str(i), "output": f"o{i}"}
                                                              for i in range(5)]))
    assert generation.majority_rate(generation.load_split("test")) is None


# ---- sources ---------------------------------------------------------------------------------------------
def _reference_pairs(task):
    return sorted((e.instruction.split(": ", 1)[1], e.target) for e in _all(task))


def test_every_file_format_reads_the_same_records(tmp_path):
    records = [{"text": t, "label": l} for t, l in REVIEWS]
    reference = _reference_pairs(task_from_file(_csv(tmp_path / "r.csv", ["text", "label"], REVIEWS)))
    paths = [_csv(tmp_path / "r.tsv", ["text", "label"], REVIEWS, delimiter="\t"),
             _jsonl(tmp_path / "r.jsonl", records), _jsonl(tmp_path / "lines.json", records)]
    (tmp_path / "r.json").write_text(json.dumps(records), encoding="utf-8")
    paths.append(tmp_path / "r.json")
    datasets.Dataset.from_list(records).to_parquet(str(tmp_path / "r.parquet"))
    paths.append(tmp_path / "r.parquet")
    datasets.Dataset.from_list(records).save_to_disk(str(tmp_path / "saved"))
    paths.append(tmp_path / "saved")
    for path in paths:
        task = get_task(str(path))
        assert _reference_pairs(task) == reference, path
        assert task.source == f"local:{path}"


def test_dataset_dict_folder_keeps_its_splits(tmp_path, caplog):
    names = datasets.ClassLabel(names=["negative", "positive"])
    features = datasets.Features({"sentence": datasets.Value("string"), "label": names,
                                  "idx": datasets.Value("int32")})

    def split(n, labelled=True):
        return datasets.Dataset.from_dict({"sentence": [f"s{i}" for i in range(n)],
                                           "label": [i % 2 if labelled else -1 for i in range(n)],
                                           "idx": list(range(n))}, features=features)

    folder = tmp_path / "glue"
    datasets.DatasetDict({"train": split(20), "validation": split(8), "test": split(6, labelled=False),
                          "unsupervised": split(3)}).save_to_disk(str(folder))
    with caplog.at_level(logging.INFO, logger="jola_lens"):
        task = get_task(str(folder))
    assert task.available_splits() == ("train", "test")
    assert [len(task.load_split(s)) for s in ("train", "test")] == [20, 8]
    assert task.load_split("test")[3].id == "custom/glue:validation:3"
    assert "split 'test' left out: its label labels are all -1 (no labels)" in caplog.text
    assert "split 'unsupervised' left out" in caplog.text
    assert "no test split; the validation split is the test set" in caplog.text


def test_hub_dataset_through_a_local_stand_in(monkeypatch):
    calls = []
    rows = [{"sentence": t, "label": l} for t, l in REVIEWS]

    def load_dataset(name, config=None, split=None):
        calls.append((name, config, split))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(hf_data, "hub_offline_reason", lambda: None)
    for var in hf_data.OFFLINE_ENV:
        monkeypatch.delenv(var, raising=False)
    task = get_task("hf:someone/reviews:default@train")
    assert calls == [("someone/reviews", "default", "train")]
    assert (task.name, task.source, task.labels) == ("custom/someone/reviews:default@train",
                                                     "hf:someone/reviews:default@train", ("negative", "positive"))
    assert len(_all(task)) == 30
    assert parse_hub_reference("hf:nyu-mll/glue:sst2@validation") == ("nyu-mll/glue", "sst2", "validation")
    assert parse_hub_reference("hf:stanfordnlp/imdb") == ("stanfordnlp/imdb", None, None)


def test_hub_offline_fails_at_once_saying_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(HubUnavailableError, match=(
            r"cannot load hub dataset nyu-mll/glue \(sst2\): HF_HUB_OFFLINE is set \(offline mode\)\. Where the "
            r"hub is reachable, save it once with python -c \"import datasets; datasets\.load_dataset\('nyu-mll/glue',"
            r" 'sst2'\)\.save_to_disk\('nyu-mll-glue-sst2'\)\" and pass --task nyu-mll-glue-sst2")):
        get_task("hf:nyu-mll/glue:sst2")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv(hf_data.HUB_ENDPOINT_ENV, "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(HubUnavailableError, match=r"the hub \(127\.0\.0\.1\) cannot be reached"):
        get_task("hf:someone/data")
    assert time.monotonic() - start < 10


def test_read_records_sees_an_edited_file(tmp_path):
    path = _jsonl(tmp_path / "edited.jsonl", [{"input": "a", "output": "b"}])
    assert [r.data for r in read_records(path)] == [{"input": "a", "output": "b"}]
    _jsonl(path, [{"input": "a", "output": "b"}, {"input": "c", "output": "d"}])
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # a later mtime even on coarse clocks
    assert [r.data["input"] for r in read_records(path)] == ["a", "c"]


# ---- errors that say what to do --------------------------------------------------------------------------
def test_error_missing_field(tmp_path):
    records = [{"text": "fine", "label": "a"}, {"text": "fine", "label": "b"}, {"text": "no label here"}]
    path = _jsonl(tmp_path / "gaps.jsonl", records)
    message = (f"{path}: bad line 3: no 'label' value (fields: text); shape 'text + label' needs text, label. Fix "
               "the record, or pick the columns with --text_field and --label_field. Accepted shapes: "
               f"{ACCEPTED}. {SKIP}")
    with pytest.raises(BadRecordError) as error:
        task_from_file(path)
    assert str(error.value) == message


def test_error_no_known_shape(tmp_path):
    path = _csv(tmp_path / "odd.csv", ["title", "stars"], [("a", "1")] * 4)
    with pytest.raises(ValueError) as error:
        task_from_file(path)
    assert str(error.value) == (
        f"{path} (columns: title, stars): no known data shape in these columns. Accepted shapes: {ACCEPTED}. Name "
        "your columns with --text_field COLUMN[,COLUMN] --label_field COLUMN (or --template '...{COLUMN}...' "
        "--label_field COLUMN).")


@pytest.mark.parametrize(("option", "value", "flag"), [("label_field", "stars", "--label_field"),
                                                        ("text_field", "body", "--text_field"),
                                                        ("template", "Stars: {stars}", "--template")])
def test_error_flag_names_a_missing_column(tmp_path, option, value, flag):
    path = _csv(tmp_path / "reviews.csv", ["text", "label"], REVIEWS)
    missing = value.split("{")[-1].rstrip("}") if option == "template" else value
    with pytest.raises(ValueError) as error:
        task_from_file(path, **{option: value})
    assert str(error.value) == (f"{path}: {flag} names {missing!r}, which is not a column (columns: text, label). "
                                "Pass one of the columns.")


def test_error_empty_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(BadRecordError) as error:
        task_from_file(empty)
    assert str(error.value) == (f"{empty} is empty: no records. Expected CSV or TSV with a header line, a JSON "
                                "array, JSON lines, Parquet, or a save_to_disk folder.")
    header = tmp_path / "header.csv"
    header.write_text("text,label\n")
    with pytest.raises(BadRecordError) as error:
        task_from_file(header)
    assert str(error.value) == f"{header} has a header (columns: text, label) but no rows"


def test_error_one_class_only(tmp_path):
    path = _csv(tmp_path / "happy.csv", ["text", "label"], [(f"good {i}", "positive") for i in range(25)])
    with pytest.raises(ValueError) as error:
        task_from_file(path)
    assert str(error.value) == (
        "custom/happy: every record has the label 'positive' (1 class, 25 records); classification needs at least 2 "
        "classes (columns: text, label). Add records of the other classes, or name all classes with --choices A,B")
    assert task_from_file(path, choices="positive,negative").labels == ("positive", "negative")


def test_error_ragged_csv_row(tmp_path, caplog):
    path = tmp_path / "ragged.csv"
    path.write_text("text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(8))
                    + "great, really,b\n", encoding="utf-8")
    with pytest.raises(BadRecordError) as error:
        task_from_file(path)
    assert str(error.value) == (f'{path}: bad line 10: 3 values for 2 columns (columns: text, label); quote values '
                                f'that contain a comma ("like, this"). {SKIP}')
    with caplog.at_level(logging.WARNING, logger="jola_lens"):
        task = task_from_file(path, on_bad_record="skip")
    assert task.skipped == 1 and len(_all(task)) == 8
    assert f"{path}: skipped 1 of 9 records (on_bad_record='skip')" in caplog.text


def test_error_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncaf\u00e9 ok,a\n".encode("latin-1"))
    with pytest.raises(BadRecordError) as error:
        task_from_file(path)
    assert str(error.value) == (
        f"{path} is not UTF-8 text: byte 0xe9 at line 2 (offset 14) cannot be decoded. Save the file as UTF-8, e.g. "
        f"`iconv -f latin1 -t utf-8 {path} > {tmp_path / 'latin-utf8.csv'}`")


def test_error_duplicate_ids(tmp_path, caplog):
    records = [{"id": i if i != 4 else 1, "text": f"t{i}", "label": "ab"[i % 2]} for i in range(10)]
    path = _jsonl(tmp_path / "ids.jsonl", records)
    with pytest.raises(BadRecordError) as error:
        task_from_file(path)
    assert str(error.value) == (f"{path}: bad line 5: duplicate id '1' (also at line 2); ids must be unique: fix the "
                                f"'id' column, or drop it to number the records in order. {SKIP}")
    with caplog.at_level(logging.WARNING, logger="jola_lens"):
        task = task_from_file(path, on_bad_record="skip")
    assert task.skipped == 1 and sorted(e.id.rsplit(":", 1)[1] for e in _all(task)) == [
        "0", "1", "2", "3", "5", "6", "7", "8", "9"]
    assert f"{path}: skipped 1 of 10 records (on_bad_record='skip')" in caplog.text


def test_skip_counts_and_names_the_first_few(tmp_path, caplog):
    records = [{"text": f"t{i}", "label": "ab"[i % 2]} for i in range(20)] + [{"text": f"x{i}"} for i in range(7)]
    path = _jsonl(tmp_path / "holes.jsonl", records)
    with caplog.at_level(logging.WARNING, logger="jola_lens"):
        task = task_from_file(path, on_bad_record="skip")
    assert task.skipped == 7 and len(_all(task)) == 20
    assert caplog.text.count("skipping ") == 5 and f"{path}: skipped 7 of 27 records" in caplog.text


def test_data_options_are_checked_and_round_trip():
    options = DataOptions.parse(text_field="title, body", label_words="1=positive,0=negative", choices="data",
                                on_bad_record="skip")
    assert options.to_dict() == {"text_field": ["title", "body"], "choices": "data",
                                 "label_words": {"1": "positive", "0": "negative"}, "on_bad_record": "skip"}
    assert DataOptions.parse(**options.to_dict()) == options and DataOptions.parse().to_dict() == {}
    for kwargs, message in (({"label_words": "1:positive"}, r"--label_words: expected VALUE=WORD pairs"),
                            ({"label_words": "1=a,1=b"}, r"gives a word to the same value twice"),
                            ({"choices": "yes"}, r"--choices: expected at least 2 options"),
                            ({"label_names": "only"}, r"--label_names: expected the names of labels 0, 1"),
                            ({"template": "no fields"}, r"--template 'no fields' must name record fields"),
                            ({"on_bad_record": "ignore"}, r"on_bad_record must be one of \('error', 'skip'\)"),
                            ({"colour": "red"}, r"unknown data option\(s\) colour")):
        with pytest.raises(ValueError, match=message):
            DataOptions.parse(**kwargs)


def test_registered_tasks_refuse_field_options():
    with pytest.raises(ValueError, match=r"--label_field: for your own data \(a file, a save_to_disk folder or "
                                         r"hf:NAME\); extra/SST-2 is a registered task that reads its own fields"):
        get_task("extra/SST-2", data_options={"label_field": "x"})
    with pytest.raises(FileNotFoundError, match=r"missing\.csv does not exist\. Pass a data file"):
        get_task("missing.csv")


# ---- command line ----------------------------------------------------------------------------------------
def test_data_flags_reach_the_run_spec(tmp_path):
    from jola_lens.cli import build_parser, train_settings

    parser = build_parser()
    spec, _ = train_settings(parser.parse_args(["train", "--task", "x.csv", "--text-field", "title,body",
                                                "--label_field", "stars", "--label_words", "1=bad,5=good",
                                                "--on_bad_record", "skip"]))
    assert (spec.task, spec.data_options) == ("x.csv", {"text_field": ["title", "body"], "label_field": "stars",
                                                        "label_words": {"1": "bad", "5": "good"},
                                                        "on_bad_record": "skip"})
    spec, _ = train_settings(parser.parse_args(["train", "--hf_dataset", "nyu-mll/glue", "--hf_config", "sst2",
                                                "--hf_split", "validation"]))
    assert (spec.task, spec.data_options) == ("hf:nyu-mll/glue:sst2@validation", {})
    with pytest.raises(ValueError, match=r"--hf_config need --hf_dataset NAME"):
        train_settings(parser.parse_args(["train", "--hf_config", "sst2"]))
    with pytest.raises(ValueError, match=r"--label_words: expected VALUE=WORD pairs"):
        train_settings(parser.parse_args(["train", "--task", "x.csv", "--label_words", "bad"]))


def test_a_trained_run_reads_its_file_the_same_way_at_evaluation(tmp_path, tiny_model_dir, capsys):  # noqa: F811
    from jola_lens.cli import main

    rows = [(f"w{i % 40} w{(i * 7) % 40}", "w50" if i % 3 else "w51") for i in range(90)]
    data = _csv(tmp_path / "words.csv", ["title", "stars"], rows)
    run = tmp_path / "run"
    common = ["--base_model_name", str(tiny_model_dir), "--prompt_style", "plain", "--max_length", "64",
              "--eval_batch", "8", "--quiet"]
    assert main(["train", "--task", str(data), "--text_field", "title", "--label_field", "stars", *common,
                 "--train_size", "16", "--val_size", "8", "--num_epoch", "1", "--output_dir", str(run)]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["data_options"] == {"text_field": ["title"], "label_field": "stars"}
    assert main(["eval", "--edit", str(run), "--scoring", "likelihood", "--limit", "12", "--quiet"]) == 0
    evaluation = json.loads((run / "metrics.json").read_text())["evaluation"]
    test = get_task(str(data), data_options=saved["data_options"]).load_split("test")[:12]
    assert evaluation["results"]["likelihood"]["majority_rate"] == pytest.approx(majority_rate(test))
    assert "majority_rate" in capsys.readouterr().out
    assert main(["eval", "--task", str(data), *common, "--scoring", "likelihood"]) == 2  # no fields: no shape
    assert "no known data shape" in capsys.readouterr().err
