"""Sweeps: sweep files checked before any trial starts, the sweep folder, and trials run on a local Ray (2 CPUs)."""

from __future__ import annotations

import csv
import json
import random
import sys
import time
from pathlib import Path

import pytest
from conftest import build_tiny_model

from jola_lens.sweep import SweepFileError, SweepFolder, SweepFolderError, read_sweep, sweep_run_folders
from jola_lens.sweep.executor import check_reachable, import_ray
from jola_lens.sweep.folder import prepare_sweep_folder

SETTINGS = """\
settings:
  task: task.jsonl
  base_model_name: model
  train_size: 8
  val_size: 4
  num_epoch: 2
  train_batch: 4
  warmup_steps: 1
  max_length: 64
  eval_batch: 4
  run_mode: train_eval
  scoring: likelihood
"""
GRID = SETTINGS + """\
grid:
  seed: [1, 2]
  lr: [0.01, 0.05]
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> Path:
    """A folder with a tiny random Llama (model/) and a tiny multiple-choice task (task.jsonl: 32 train, 8 test)."""
    root = tmp_path_factory.mktemp("sweep")
    build_tiny_model("llama").save_pretrained(root / "model")
    tiny_tokenizer.save_pretrained(root / "model")
    rng = random.Random(0)
    records = []
    for i in range(40):
        a, b = rng.sample(range(20, 60), 2)
        records.append({"question": f"w{a} w{b} w{a}", "choices": [f"w{a}", f"w{b}"], "answer": rng.randrange(2),
                        "split": "test" if i >= 32 else "train"})
    (root / "task.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return root


def write_sweep(workspace: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = workspace / name
    path.write_text(text, encoding="utf-8")
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# ---- the sweep file ------------------------------------------------------------------------------------
def test_grid_expands_with_names_from_the_settings_that_vary(workspace):
    sweep = read_sweep(write_sweep(workspace, GRID + "trials:\n  - {seed: 3, lr: 0.01, num_epoch: 1}\n"))
    assert [t.name for t in sweep.trials] == ["seed=1,lr=0.01", "seed=1,lr=0.05", "seed=2,lr=0.01", "seed=2,lr=0.05",
                                              "seed=3,lr=0.01"]  # seed 3 alone has num_epoch 1: no need to say
    assert sweep.varying == ("seed", "lr", "num_epoch")
    assert sweep.trials[-1].line == 17
    first = sweep.trials[0].settings
    assert first["task"] == str(workspace / "task.jsonl") and first["base_model_name"] == str(workspace / "model")
    assert first["seed"] == 1 and first["lr"] == 0.01 and first["num_epoch"] == 2


def test_names_leave_out_settings_the_others_already_tell_apart(workspace):
    sweep = read_sweep(write_sweep(workspace, SETTINGS + """\
trials:
  - {seed: 1, formulation: text, lr: 0.01}
  - {seed: 1, formulation: cloze, gate_lr: 0.1}
  - {seed: 2, formulation: text, lr: 0.01}
"""))
    assert sweep.varying == ("seed", "formulation", "lr", "gate_lr")
    assert [t.name for t in sweep.trials] == ["seed=1,formulation=text", "seed=1,formulation=cloze",
                                              "seed=2,formulation=text"]


def test_the_committed_sweep_files_are_valid():
    folder = Path(__file__).resolve().parents[1] / "analysis" / "sweeps"
    sweeps = {path.name: read_sweep(path) for path in sorted(folder.glob("*.yaml"))}
    paper = sweeps["paper_protocol.yaml"]
    assert len(paper.trials) == 26 * 3 and paper.varying == ("task", "seed")
    assert len({t.name for t in paper.trials}) == 78


def test_trials_can_name_their_run_folders(workspace):
    sweep = read_sweep(write_sweep(workspace, SETTINGS + """\
trials:
  - {name: first/one, seed: 1}
  - {name: seed=2, seed: 3}
  - {seed: 2}
"""))
    assert [(t.name, t.named) for t in sweep.trials] == [("first/one", True), ("seed=2", True), ("seed=2-2", False)]
    with pytest.raises(SweepFileError, match=r"sweep\.yaml:15: name must be a relative folder name .*got '\.\./up'"):
        read_sweep(write_sweep(workspace, SETTINGS + "trials:\n  - {seed: 1}\n  - {name: ../up, seed: 2}\n"))
    with pytest.raises(SweepFileError, match=r"sweep\.yaml:15: trial name 'a' is also the name on line 14"):
        read_sweep(write_sweep(workspace, SETTINGS + "trials:\n  - {name: a, seed: 1}\n  - {name: a, seed: 2}\n"))


def test_unknown_setting_is_named_with_its_line(workspace):
    path = write_sweep(workspace, SETTINGS + "grid:\n  seeed: [1, 2]\n")
    with pytest.raises(SweepFileError, match=r"sweep\.yaml:14: unknown setting 'seeed'.*Did you mean: seed"):
        read_sweep(path)
    path = write_sweep(workspace, "settings:\n  task: task.jsonl\n  learning_rate: 0.1\ngrid:\n  seed: [1]\n")
    with pytest.raises(SweepFileError, match=r"sweep\.yaml:3: unknown setting 'learning_rate'"):
        read_sweep(path)


def test_target_heads_and_preset_in_a_sweep_file(workspace):
    sweep = read_sweep(write_sweep(workspace, SETTINGS + "grid:\n  target_heads: [3, 0.3]\n  preset: [target30]\n"))
    assert [t.settings["target_heads"] for t in sweep.trials] == [3, 0.3]
    with pytest.raises(SweepFileError, match=r"target_heads must be a number of heads or a share of them, got 'many'"):
        read_sweep(write_sweep(workspace, SETTINGS + "grid:\n  target_heads: [many]\n"))


def test_value_of_the_wrong_type_is_refused(workspace):
    with pytest.raises(SweepFileError, match=r"sweep\.yaml:15: seed must be an integer, got 'two' \(str\)"):
        read_sweep(write_sweep(workspace, SETTINGS + "grid:\n  seed: [1,\n    two]\n"))
    with pytest.raises(SweepFileError, match=r"gate_scheduler must be one of .*expon.*, got 'fast' \(str\)"):
        read_sweep(write_sweep(workspace, SETTINGS + "grid:\n  gate_scheduler: [expon, fast]\n"))
    with pytest.raises(SweepFileError, match=r"grid: seed must be a list of values"):
        read_sweep(write_sweep(workspace, SETTINGS + "grid:\n  seed: 3\n"))
    with pytest.raises(SweepFileError, match=r"sweep\.yaml:13: trial seed=-1: seed must be an integer >= 0, got -1"):
        read_sweep(write_sweep(workspace, SETTINGS + "grid:\n  seed: [1, -1]\n"))


def test_empty_grid_is_refused(workspace):
    with pytest.raises(SweepFileError, match=r"sweep\.yaml:14: grid: seed is an empty list, so the grid is empty"):
        read_sweep(write_sweep(workspace, SETTINGS + "grid:\n  seed: []\n"))
    with pytest.raises(SweepFileError, match=r"the sweep has no trials: give a grid: section"):
        read_sweep(write_sweep(workspace, SETTINGS))


def test_task_that_does_not_exist_is_refused(workspace):
    with pytest.raises(SweepFileError, match=r"trial task=extra-NoSuchTask: unknown task .extra/NoSuchTask."):
        read_sweep(write_sweep(workspace, SETTINGS + "grid:\n  task: [task.jsonl, extra/NoSuchTask]\n"))
    with pytest.raises(SweepFileError, match=r"task file .*/missing\.jsonl does not exist"):
        read_sweep(write_sweep(workspace, SETTINGS + "grid:\n  task: [missing.jsonl]\n"))


def test_sections_flags_and_repeats_are_checked(workspace):
    with pytest.raises(SweepFileError, match=r"sweep\.yaml:1: unknown section 'setings'"):
        read_sweep(write_sweep(workspace, "setings:\n  seed: 1\ngrid:\n  seed: [1]\n"))
    with pytest.raises(SweepFileError, match=r"output_dir cannot be set in a sweep file: the sweep names each"):
        read_sweep(write_sweep(workspace, SETTINGS + "  output_dir: x\ngrid:\n  seed: [1]\n"))
    with pytest.raises(SweepFileError, match=r"sweep\.yaml:15: grid\.seed is given twice \(first on line 14\)"):
        read_sweep(write_sweep(workspace, SETTINGS + "grid:\n  seed: [1]\n  seed: [2]\n"))
    with pytest.raises(SweepFileError, match=r"sweep\.yaml:16: this trial repeats the one on line 13"):
        read_sweep(write_sweep(workspace, SETTINGS + "grid:\n  seed: [1]\ntrials:\n  - {seed: 1}\n"))
    with pytest.raises(SweepFileError, match=r"run_mode eval scores a run that exists already"):
        read_sweep(write_sweep(workspace, SETTINGS + "grid:\n  run_mode: [eval]\n"))


def test_changed_sweep_file_needs_extend_or_overwrite(workspace, tmp_path):
    folder = SweepFolder(tmp_path / "sweep")
    first = read_sweep(write_sweep(workspace, SETTINGS + "grid:\n  seed: [1, 2]\n"))
    assert [t.name for t in prepare_sweep_folder(folder, first)] == ["seed=1", "seed=2"]
    assert [t.name for t in prepare_sweep_folder(folder, first)] == ["seed=1", "seed=2"]
    wider = read_sweep(write_sweep(workspace, SETTINGS + "grid:\n  seed: [2, 3]\n"))
    with pytest.raises(SweepFolderError, match=r"1 trial\(s\) new \(seed=3\); 1 trial\(s\) no longer in the file "
                                               r"\(seed=1\)\. Pass --extend"):
        prepare_sweep_folder(folder, wider)
    extended = prepare_sweep_folder(folder, wider, extend=True, finished=lambda trial: trial.name == "seed=1")
    assert [t.name for t in extended] == ["seed=1", "seed=2", "seed=3"]  # finished seed 1 stays
    prepare_sweep_folder(folder, first, overwrite=True)
    assert [t.name for t in prepare_sweep_folder(folder, wider, extend=True)] == ["seed=2", "seed=3"]  # unfinished
    assert [t.name for t in prepare_sweep_folder(folder, wider, overwrite=True)] == ["seed=2", "seed=3"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(SweepFolderError, match=r"is not empty and holds no sweep"):
        prepare_sweep_folder(SweepFolder(tmp_path / "other"), first)


def test_unreachable_address_fails_within_seconds():
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=r"cannot reach a Ray cluster at 127\.0\.0\.1:9 .*ray start --head"):
        check_reachable("127.0.0.1:9")
    with pytest.raises(ConnectionError, match=r"cannot reach a Ray cluster at 10\.255\.255\.1:6379"):
        check_reachable("10.255.255.1:6379", timeout=1.0)  # refused, timed out, or not answering as Ray
    assert time.monotonic() - start < 5
    with pytest.raises(ValueError, match=r"--address 'headnode' is not HOST:PORT"):
        check_reachable("headnode")


def test_without_ray_the_command_says_how_to_install_it(workspace, monkeypatch, capsys):
    from jola_lens.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r'pip install "jola_lens\[sweep\]"'):
        import_ray()
    path = write_sweep(workspace, SETTINGS + "grid:\n  seed: [1]\n")
    assert main(["sweep", str(path), "--output_dir", str(workspace / "no-ray")]) == 2
    assert 'which is not installed: pip install "jola_lens[sweep]"' in capsys.readouterr().err


# ---- on Ray --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance (2 CPUs, no dashboard) for every sweep of this module."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def run(sweep_file: Path, output: Path, **kwargs):
    from jola_lens.sweep import run_sweep

    return run_sweep(sweep_file, output, workers=2, progress=False, **kwargs)


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def grid_sweep(workspace, local_ray) -> Path:
    output = workspace / "grid"
    result = run(write_sweep(workspace, GRID, "grid.yaml"), output)
    assert result.counts["done"] == 4 and result.counts["failed"] == 0
    return output


def test_grid_finishes_and_its_table_is_right(grid_sweep):
    trials, results = read_csv(grid_sweep / "trials.csv"), read_csv(grid_sweep / "results.csv")
    assert [(r["trial"], r["status"], r["seed"], r["lr"]) for r in trials] == [
        ("seed=1,lr=0.01", "done", "1", "0.01"), ("seed=1,lr=0.05", "done", "1", "0.05"),
        ("seed=2,lr=0.01", "done", "2", "0.01"), ("seed=2,lr=0.05", "done", "2", "0.05")]
    for row in results:
        run_dir = grid_sweep / "runs" / row["trial"]
        config, metrics = json.loads((run_dir / "config.json").read_text()), metrics_of(run_dir)
        assert (config["train"]["seed"], config["train"]["lr"]) == (int(row["seed"]), float(row["lr"]))
        assert float(row["metric.likelihood.acc"]) == metrics["evaluation"]["results"]["likelihood"]["acc"]
        assert float(row["train.best_val_loss"]) == metrics["training"]["best_val_loss"]
        assert int(row["heads_kept.additive"]) == metrics["training"]["heads"]["additive"]["kept"]
        assert "trial seed=" in (run_dir / "trial.log").read_text() and (run_dir / "edit").is_dir()
    assert sum(r["reused_model"] == "True" for r in trials) == 2  # each worker loaded the model once
    assert len(sweep_run_folders(grid_sweep)) == 4


def test_same_sweep_twice_gives_identical_metrics(grid_sweep, workspace):
    again = workspace / "grid-again"
    run(workspace / "grid.yaml", again)
    for name in ("seed=1,lr=0.01", "seed=1,lr=0.05", "seed=2,lr=0.01", "seed=2,lr=0.05"):
        first, second = metrics_of(grid_sweep / "runs" / name), metrics_of(again / "runs" / name)
        assert first["evaluation"]["results"] == second["evaluation"]["results"]
        assert first["training"]["val_losses"] == second["training"]["val_losses"]


def test_analyze_reads_a_sweep_folder(grid_sweep, tmp_path):
    from jola_lens.cli import main

    assert main(["analyze", str(grid_sweep), "--output", str(tmp_path / "figures"), "--permutations", "10"]) == 0
    summary = (tmp_path / "figures" / "summary.csv").read_text()
    assert all(f"seed={seed},lr={lr}" in summary for seed in (1, 2) for lr in (0.01, 0.05))


def test_stopped_sweep_resumes_without_retraining_finished_trials(workspace, local_ray):
    from jola_lens.sweep import SweepInterrupted

    sweep_file = write_sweep(workspace, SETTINGS + "grid:\n  seed: [5, 6, 7]\n", "stop.yaml")
    output = workspace / "stopped"

    def stop_after_first(table):
        if table.counts()["done"]:
            raise KeyboardInterrupt

    with pytest.raises(SweepInterrupted, match=r"1 finished trial\(s\) kept in .*stopped"):
        run(sweep_file, output, on_update=stop_after_first)
    rows = {r["trial"]: r for r in read_csv(output / "trials.csv")}
    done = [name for name, row in rows.items() if row["status"] == "done"]
    assert len(done) == 1 and {row["status"] for name, row in rows.items() if name not in done} <= {
        "interrupted", "pending"}
    log = output / "runs" / done[0] / "train_log.jsonl"
    before = (log.stat().st_mtime_ns, log.read_text(), (log.parent / "trial.log").read_text())
    result = run(sweep_file, output)
    assert result.counts == {"pending": 0, "running": 0, "done": 3, "failed": 0, "interrupted": 0}
    assert (log.stat().st_mtime_ns, log.read_text(), (log.parent / "trial.log").read_text()) == before
    assert {r["trial"]: r["started"] for r in read_csv(output / "trials.csv")}[done[0]] == rows[done[0]]["started"]

    wider = write_sweep(workspace, SETTINGS + "grid:\n  seed: [5, 6, 7, 8]\n", "stop.yaml")
    with pytest.raises(SweepFolderError, match=r"1 trial\(s\) new \(seed=8\)"):
        run(wider, output)
    logs = {name: (output / "runs" / name / "train_log.jsonl").stat().st_mtime_ns for name in rows}
    result = run(wider, output, extend=True)
    assert [r.name for r in result.rows] == ["seed=5", "seed=6", "seed=7", "seed=8"]
    assert result.counts["done"] == 4
    assert {name: (output / "runs" / name / "train_log.jsonl").stat().st_mtime_ns for name in rows} == logs


def test_a_failing_trial_leaves_the_others_finished(workspace, local_ray):
    sweep_file = write_sweep(workspace, SETTINGS + "grid:\n  heads: [L1H0, L9H0]\n", "fail.yaml")
    result = run(sweep_file, workspace / "failing")
    rows = {r["trial"]: r for r in read_csv(workspace / "failing" / "trials.csv")}
    assert rows["heads=L1H0"]["status"] == "done" and result.counts["failed"] == 1
    assert rows["heads=L9H0"]["status"] == "failed"
    assert rows["heads=L9H0"]["error"] == "HeadSpecError: L9H0, but the model has 2 layers (0-1)"
    log = (workspace / "failing" / "runs" / "heads=L9H0" / "trial.log").read_text()
    assert "Traceback" in log and "HeadSpecError" in log
    assert [r["trial"] for r in read_csv(workspace / "failing" / "results.csv")] == ["heads=L1H0"]


def test_a_running_ray_head_passes_the_address_check(local_ray):
    check_reachable(local_ray.get_runtime_context().gcs_address, timeout=2.0)


def test_named_trials_in_their_own_runs_dir_adopt_finished_runs_and_are_rescored(grid_sweep, workspace, tmp_path):
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(grid_sweep / "runs" / "seed=1,lr=0.01", runs / "a" / "first")
    text = "trials:\n  - {name: a/first, seed: 1, lr: 0.01}\n  - {name: a/second, seed: 2, lr: 0.01}\n"
    sweep_file = write_sweep(workspace, SETTINGS + text, "named.yaml")
    log = runs / "a" / "first" / "train_log.jsonl"
    before = log.stat().st_mtime_ns
    result = run(sweep_file, tmp_path / "sweep", runs_dir=runs)
    assert result.counts["done"] == 2 and log.stat().st_mtime_ns == before  # adopted, not retrained
    assert [r["run_dir"] for r in read_csv(tmp_path / "sweep" / "trials.csv")] == ["../runs/a/first",
                                                                                   "../runs/a/second"]
    assert sweep_run_folders(tmp_path / "sweep") == [runs / "a" / "first", runs / "a" / "second"]
    trained = {name: (runs / "a" / name / "train_log.jsonl").stat().st_mtime_ns for name in ("first", "second")}
    fewer = write_sweep(workspace, SETTINGS + "  limit: 4\n" + text, "named.yaml")
    result = run(fewer, tmp_path / "sweep", runs_dir=runs, extend=True)
    assert result.counts["done"] == 2
    for name in ("first", "second"):  # scored again on 4 test items, not trained again
        assert (runs / "a" / name / "train_log.jsonl").stat().st_mtime_ns == trained[name]
        assert metrics_of(runs / "a" / name)["evaluation"]["n"] == 4
