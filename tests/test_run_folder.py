"""RunFolder owns a run's layout and identity; JSONL logs grow by fsynced appends; one settings diff for all."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
from conftest import REPO

from jola_lens import atomic
from jola_lens.methods import METHODS, MethodConfig, stages
from jola_lens.run_folder import OWNED_DIRS, OWNED_FILES, STAGE_DIRS, RunFolder, flatten, settings_diff
from jola_lens.tasks.examples import Example
from jola_lens.training.checkpoint import CheckpointMismatchError, check_fingerprint
from jola_lens.training.output_dir import OutputDirError, prepare_output_dir

sys.path.insert(0, str(REPO / "analysis"))
import studies

SAVED = {"task": "extra/SST-2", "backend": "hf", "train": {"lr": 0.05, "seed": 42, "gate_lr": 0.05}}
NOW = {"task": "extra/SST-2", "backend": "tl", "train": {"lr": 0.01, "seed": 42, "gate_lr": 0.05}}
DIFF = ["backend: 'hf' -> 'tl'", "train.lr: 0.05 -> 0.01"]


# ---- JSONL appends -------------------------------------------------------------------------------------
def test_append_jsonl_appends_in_place_and_fsyncs_every_line(tmp_path, monkeypatch):
    path = tmp_path / "log.jsonl"
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    atomic.append_jsonl(path, {"step": 1})
    inode = path.stat().st_ino

    def no_rewrite(*args):
        raise AssertionError("append_jsonl rewrote the file")

    monkeypatch.setattr(os, "replace", no_rewrite)
    for step in (2, 3):
        atomic.append_jsonl(path, {"step": step, "loss": 0.5})
    assert path.stat().st_ino == inode and len(synced) == 3
    assert path.read_text() == '{"step": 1}\n{"loss": 0.5, "step": 2}\n{"loss": 0.5, "step": 3}\n'


def test_append_jsonl_cuts_a_line_torn_by_a_crash(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3, "lo')
    assert atomic.read_jsonl(path) == [{"step": 1}, {"step": 2}]
    atomic.append_jsonl(path, {"step": 3})
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n{"step": 3}\n'
    path.write_text('{"step": 1, "no newline at all"')
    atomic.append_jsonl(path, {"step": 1})
    assert atomic.read_jsonl(path) == [{"step": 1}]
    assert atomic.read_jsonl(tmp_path / "missing.jsonl") == []


def test_train_log_appends_and_truncates_to_a_step(tmp_path):
    run = RunFolder(tmp_path / "run")
    for step in range(1, 6):
        run.append_train_log({"step": step, "loss": 1.0 / step})
    run.truncate_train_log(3)
    assert [r["step"] for r in run.read_train_log()] == [1, 2, 3]


# ---- layout --------------------------------------------------------------------------------------------
def test_the_layout_is_the_one_on_disk(tmp_path):
    run = RunFolder(tmp_path / "runs" / "a")
    assert [p.relative_to(run.root).as_posix() for p in (run.config, run.edit_dir, run.train_items, run.train_log,
                                                         run.gates_dir, run.predictions, run.metrics,
                                                         run.checkpoint_dir, run.gate_snapshot(3))] == [
        "config.json", "edit", "train_items.jsonl", "train_log.jsonl", "gates", "predictions.jsonl", "metrics.json",
        "checkpoint", "gates/epoch-0003.safetensors"]
    assert run.default_results_file == tmp_path / "runs" / "results.jsonl"


def test_clear_deletes_exactly_the_files_a_run_owns(tmp_path):
    run = RunFolder(tmp_path / "run")
    for name in OWNED_FILES:
        (run.root / name).parent.mkdir(parents=True, exist_ok=True)
        (run.root / name).write_text("{}")
    for name in (*OWNED_DIRS, *STAGE_DIRS):
        (run.root / name).mkdir()
        (run.root / name / "inside.bin").write_bytes(b"x")
    (run.root / "notes.txt").write_text("mine")
    (run.root / "mine").mkdir()
    assert len(run.owned_paths()) == len(OWNED_FILES) + len(OWNED_DIRS) + len(STAGE_DIRS)
    assert run.stage_folders() == [run.stage(name) for name in STAGE_DIRS]
    run.clear()
    assert sorted(p.name for p in run.root.iterdir()) == ["mine", "notes.txt"] and run.owned_paths() == []


def test_every_methods_stage_folder_is_one_a_run_owns(tmp_path):
    folders = {stage.folder for method in METHODS for stage in stages(MethodConfig(method)) if stage.folder}
    assert folders and folders <= set(STAGE_DIRS)
    with pytest.raises(ValueError, match=r"unknown stage folder 'notes'; a run folder holds \('lofit_scaling',\)"):
        RunFolder(tmp_path).stage("notes")


def test_train_items_round_trip(tmp_path):
    run = RunFolder(tmp_path / "run")
    items = {"train": [Example(id="a", instruction="x y", target="t")],
             "validation": [Example(id="b", instruction="z", target="u")]}
    run.write_train_items(items)
    lines = [json.loads(line) for line in run.train_items.read_text().splitlines()]
    assert lines == [{"split": "train", "id": "a", "instruction": "x y"},
                     {"split": "validation", "id": "b", "instruction": "z"}]
    assert [(e.id, e.instruction) for e in run.read_train_items()] == [("a", "x y"), ("b", "z")]
    run.train_items.unlink()
    with pytest.raises(FileNotFoundError, match=r"train_items.jsonl is missing: cannot check that .*--edit RUN/edit"):
        run.read_train_items()


def test_a_damaged_config_json_is_named(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.edit_dir.mkdir(parents=True)
    run.config.write_text("{not json")
    with pytest.raises(ValueError, match=r"config.json is not valid JSON .*train the run again with --overwrite"):
        run.read_config()


# ---- identity: one settings diff -----------------------------------------------------------------------
def test_settings_diff_compares_flattened_settings():
    assert settings_diff(SAVED, NOW) == DIFF
    assert settings_diff(flatten(SAVED), flatten(NOW)) == DIFF  # flat or nested, the same answer
    assert settings_diff(SAVED, SAVED) == []
    assert settings_diff({"a": 1}, {"a": 1, "b": 2}) == ["b: None -> 2"]


def test_resume_and_the_output_folder_name_differences_with_the_same_diff(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.write_config(SAVED, {"task_name": "SST-2", "library_version": "0"})
    run.edit_dir.mkdir()
    assert run.settings_diff(NOW) == DIFF and run.settings_diff(SAVED) == []  # descriptive entries not compared
    listed = re.escape("; ".join(DIFF))
    with pytest.raises(CheckpointMismatchError, match=rf"belongs to another run \(checkpoint -> now: {listed}\)"):
        check_fingerprint(flatten(SAVED), flatten(NOW), run.checkpoint_dir)
    with pytest.raises(OutputDirError, match=rf"holds a run with other settings \({listed}\)"):
        prepare_output_dir(run, NOW)


def test_overwrite_clears_only_the_run(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.write_config(SAVED, {})
    run.append_train_log({"step": 1})
    (run.root / "notes.txt").write_text("mine")
    assert prepare_output_dir(run, NOW, overwrite=True) is False
    assert sorted(p.name for p in run.root.iterdir()) == ["notes.txt"]


def test_studies_prune_the_checkpoint_and_predictions_only(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.checkpoint_dir.mkdir(parents=True)
    run.predictions.write_text("{}\n")
    run.metrics.write_text("{}")
    studies.prune(run.root)
    assert [p.name for p in Path(run.root).iterdir()] == ["metrics.json"]


def test_versioned_json_records_name_damage_and_other_versions(tmp_path):
    path = tmp_path / "state.json"
    atomic.write_json(path, {"format_version": 1, "x": 2})
    assert atomic.read_versioned_json(path, 1, damaged="unused") == {"format_version": 1, "x": 2}
    with pytest.raises(ValueError, match=r"state\.json: format_version 1 is not supported \(expected 2\)$"):
        atomic.read_versioned_json(path, 2, damaged="unused")
    path.write_text("{not json", encoding="utf-8")

    class Damaged(ValueError):
        pass

    with pytest.raises(Damaged, match=r"state\.json is not valid JSON \(.*\); start again with --overwrite"):
        atomic.read_versioned_json(path, 1, damaged="start again with --overwrite", error=Damaged)


def test_a_training_setting_added_after_a_run_was_saved_counts_as_its_default(tmp_path):
    from jola_lens.training.config import TrainConfig

    now = {"task": "SST-2", "train": TrainConfig(seed=1).to_dict()}
    older = {"task": "SST-2", "train": {k: v for k, v in now["train"].items() if k != "group_by_length"}}
    run = RunFolder(tmp_path / "run")
    run.write_config(older, {})
    assert run.settings_diff(now) == []  # saved before the setting existed: it behaved as the default does
    grouped = {"task": "SST-2", "train": TrainConfig(seed=1, group_by_length=True).to_dict()}
    assert run.settings_diff(grouped) == ["train.group_by_length: False -> True"]
