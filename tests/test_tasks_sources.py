"""Source selection and failure modes: missing files, offline hub, malformed local records."""

from __future__ import annotations

import json
import time

import pytest

from jola_lens.tasks import BadRecordError, HubUnavailableError, get_task


def test_hub_fails_fast_and_clearly_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    task = get_task("commonsense/BoolQ", source="hub")
    assert task.source == "hub:google/boolq"
    with pytest.raises(HubUnavailableError, match=r"google/boolq.*HF_HUB_OFFLINE.*source='local'"):
        task.load_split("test")
    monkeypatch.delenv("JOLA_DATA_DIR", raising=False)
    with pytest.raises(HubUnavailableError, match="TIGER-Lab/MMLU-Pro"):
        get_task("mmlu_pro/law").load_split("test")  # auto: no local files, no embedded copy -> hub
    assert time.monotonic() - start < 5


def test_missing_local_files(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"commonsense/ARC-Challenge/train.json does not exist.*JOLA_DATA_DIR"):
        get_task("commonsense/ARC-c", data_dir=tmp_path, source="local")
    monkeypatch.delenv("JOLA_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="no local data folder"):
        get_task("gem/xsum", source="local")
    with pytest.raises(FileNotFoundError, match="PromptSource templates not found"):
        get_task("gem/xsum", source="hub")
    with pytest.raises(ValueError, match="no 'embedded' source"):
        get_task("mmlu_pro/law", source="embedded")
    with pytest.raises(ValueError, match="source must be one of"):
        get_task("commonsense/ARC-c", source="web")


def test_env_var_selects_local_data(data_dir, monkeypatch):
    monkeypatch.setenv("JOLA_DATA_DIR", str(data_dir))
    assert get_task("commonsense/OBQA").source == f"local:{data_dir}"


def test_malformed_local_record(tmp_path, caplog):
    folder = tmp_path / "commonsense" / "boolq"
    folder.mkdir(parents=True)
    good = {"instruction": "Please answer the following question with true or false, question: is it?\n\n"
                           "Answer format: true/false", "input": "",
            "output": "the correct answer is true", "answer": "true"}
    (folder / "train.json").write_text(json.dumps([good, dict(good, answer="maybe"), good]))
    (folder / "test.json").write_text(json.dumps([good]))
    task = get_task("commonsense/BoolQ", data_dir=tmp_path)
    with pytest.raises(BadRecordError, match=r"boolq/train.json: bad record 1: ValueError: answer 'maybe'"):
        task.load_split("train")
    skipping = get_task("commonsense/BoolQ", data_dir=tmp_path, on_bad_record="skip")
    assert len(skipping.load_split("train")) == 2 and "bad record 1" in caplog.text
