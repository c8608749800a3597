"""The jola-lens command: the paper's flags, defaults, run folders, refusals, resume, eval, zero-shot."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import typing

import pytest
import torch
from test_training_helpers import tiny_model_dir, tiny_task  # noqa: F401  (fixtures)

from jola_lens.cli import build_parser, main, train_settings
from jola_lens.run_folder import RunFolder
from jola_lens.training import NonFiniteLossError, TrainConfig, TrainingInterrupted
from jola_lens.training.pipeline import RunSpec

PAPER = ["--task", "commonsense", "--subtask", "ARC-e", "--hf_cache_dir", "/tmp/hf", "--data_path", "/data", "--base_model_name", "M", "--lr", "5e-3", "--train_batch", "8", "--num_epoch", "20", "--output_dir", "out", "--run_mode", "train", "--output_file_name", "res.jsonl", "--applied_module", "attention", "--save_strategy", "best", "--gate_scheduler", "expon", "--eval_batch", "1", "--train_size", "200", "--seed", "42"]


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


@pytest.fixture
def tiny_args(tiny_task, tiny_model_dir) -> list[str]:  # noqa: F811
    return ["--task", str(tiny_task), "--base_model_name", str(tiny_model_dir), "--prompt_style", "plain",
            "--train_size", "32", "--val_size", "16", "--num_epoch", "2", "--max_length", "64", "--warmup_steps", "2",
            "--eval_batch", "8", "--lr", "0.05", "--quiet"]


# ---- flags -----------------------------------------------------------------------------------------------
def test_every_underscore_flag_also_has_a_dash_spelling():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("train", "eval"):
        for action in subparsers.choices[name]._actions:
            for flag in action.option_strings:
                if "_" in flag:
                    assert flag.replace("_", "-") in action.option_strings, flag


def test_the_papers_seed_command_maps_to_the_papers_protocol():
    args = parse(["train", *PAPER])
    spec, config = train_settings(args)
    assert config == TrainConfig()  # the paper's values are the defaults
    assert (config.lr, config.train_batch, config.num_epoch, config.eval_batch, config.seed) == (5e-3, 8, 20, 1, 42)
    assert (config.warmup_steps, config.weight_decay, config.max_length, config.patience) == (50, 0.0, 400, 2)
    assert spec == RunSpec(task="commonsense", subtask="ARC-e", model="M", data_dir="/data")
    assert (args.output_dir, args.run_mode, args.output_file_name, args.hf_cache_dir) == ("out", "train", "res.jsonl",
                                                                                        "/tmp/hf")
    dashed = parse(["train", *[a.replace("_", "-") if a.startswith("--") else a for a in PAPER]])
    assert vars(dashed) == vars(args)
    defaults = train_settings(parse(["train"]))
    assert defaults == (RunSpec(data_dir=defaults[0].data_dir), TrainConfig())


def test_head_selection_and_extra_flags_reach_the_config():
    spec, config = train_settings(parse(["train", "--gate-lr", "0.1", "--penalty_scale", "10", "--backend", "tl",
                                         "--formulation", "text", "--prompt-style", "chat", "--val_size", "50",
                                         "--max-length", "256", "--source", "embedded", "--gate_scheduler", "none",
                                         "--gate_lambda", "0.3", "--patience", "0", "--save-strategy", "last",
                                         "--gate-init", "2"]))
    assert (config.gate_lr, config.lr, config.penalty_scale, config.max_length) == (0.1, 5e-3, 10.0, 256)
    assert config.gate_init == 2.0
    assert (config.gate_scheduler, config.gate_lambda, config.patience, config.save_strategy) == ("none", 0.3, 0, "last")
    assert (spec.backend, spec.formulation, spec.prompt_style, spec.val_size, spec.source) == (
        "tl", "text", "chat", 50, "embedded")


def test_hf_cache_dir_is_set_before_the_hf_libraries_load(monkeypatch, tmp_path):
    from jola_lens.cli import _set_hf_cache

    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    _set_hf_cache(["train", "--hf-cache-dir", str(tmp_path), "--lr", "1"])
    assert (os.environ["HF_HUB_CACHE"], os.environ["HF_DATASETS_CACHE"]) == (str(tmp_path), str(tmp_path / "datasets"))


def test_only_attention_can_be_edited(capsys):
    with pytest.raises(SystemExit, match=r"^2$"):  # argparse's usage error; its message is on stderr
        parse(["train", "--applied_module", "mlp"])
    assert "invalid choice: 'mlp'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="attention-head outputs only"):
        RunSpec(applied_module="mlp")


def test_python_dash_m_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "jola_lens", "train", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0
    assert done.stdout.startswith("usage: jola-lens train") and "--gate_lr" in done.stdout


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _other_value(action: argparse.Action, default: object, kind: type) -> str:
    """A command-line value for ``action`` that differs from the field's ``default``."""
    if action.choices:
        return next(str(c) for c in action.choices if c != default)
    if kind is int:
        return str((default or 0) + 3)
    if kind is float:
        return str((default or 0.0) + 0.25)
    return "L0H1"


def test_a_preset_fills_the_flags_left_at_their_defaults():
    _, config = train_settings(parse(["train", "--preset", "target30"]))
    assert (config.gate_init, config.gate_lr, config.target_heads, config.target_warmup, config.target_lr) == (
        -1.0, 0.1, 0.3, 30, 0.1)
    _, config = train_settings(parse(["train", "--preset", "target30", "--target_heads", "27", "--gate_lr", "0.2"]))
    assert (config.target_heads, config.gate_lr, config.gate_init) == (27, 0.2, -1.0)  # given flags win
    assert train_settings(parse(["train"]))[1].target_heads is None
    _, config = train_settings(parse(["train", "--preset", "localize"]))
    assert (config.target_heads, config.keep_heads, config.init_std, config.gate_noise, config.gate_init) == (
        0.3, 0.3, 0.0, "off", -1.0)


def test_target_heads_takes_a_count_or_a_share(capsys):
    assert train_settings(parse(["train", "--target_heads", "0.25"]))[1].target_heads == 0.25
    with pytest.raises(ValueError, match=r"target_heads must be a number of heads \(an integer >= 1\) or a share of "
                                         r"the edited heads in \(0, 1\), such as 0.3; got 2.5"):
        train_settings(parse(["train", "--target_heads", "2.5"]))
    with pytest.raises(SystemExit):
        parse(["train", "--target_heads", "many"])
    assert "expected a number of heads (27) or a share such as 0.3, got 'many'" in capsys.readouterr().err


def test_every_train_config_field_has_a_flag_that_reaches_it():
    """Derived from TrainConfig: a field added without a flag (or a flag that does not reach its field) fails."""
    actions = {action.dest: action for action in _subparsers()["train"]._actions}
    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        assert field.name in actions, f"TrainConfig.{field.name} has no jola-lens train flag"
        action = actions[field.name]
        assert f"--{field.name}" in action.option_strings
        if hints[field.name] is bool:  # --name / --no-name
            flag = f"--no-{field.name}" if field.default else f"--{field.name}"
            _, config = train_settings(parse(["train", flag]))
            assert getattr(config, field.name) is not field.default, field.name
            continue
        kind = next(t for t in (int, float, str) if t in typing.get_args(hints[field.name]) or t is hints[field.name])
        value = _other_value(action, field.default, kind)
        _, config = train_settings(parse(["train", f"--{field.name}", value]))
        assert getattr(config, field.name) == kind(value), field.name


def test_help_texts_state_no_measured_numbers():
    """Measured results belong in the README, not in --help (they go stale): no 78.0%, no 258/270."""
    measured = re.compile(r"\d+\.\d+\s?%|\b\d+/\d+\b|[Mm]easured on")
    texts = {"jola-lens": build_parser().format_help()} | {name: p.format_help() for name, p in _subparsers().items()}
    assert {"train", "eval", "analyze"} <= texts.keys()
    for name, text in texts.items():
        assert not measured.findall(text), (name, measured.findall(text))
    assert measured.findall("gave 81.0% with 258/270 closed") == ["81.0%", "258/270"]  # the check itself bites


# ---- bad input -------------------------------------------------------------------------------------------
def test_unknown_task_or_subtask_lists_close_names(tmp_path, capsys):
    assert main(["train", "--task", "extra/SST-3", "--output_dir", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'extra/SST-3'" in err and "extra/SST-2" in err
    assert main(["train", "--task", "commonsense", "--subtask", "ARC-x", "--output_dir", str(tmp_path / "b")]) == 2
    assert "Did you mean" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_a_target_longer_than_max_length_names_the_example_and_the_fix(tmp_path, tiny_model_dir, capsys):  # noqa: F811
    long_answer = " ".join(f"w{i}" for i in range(20, 40))
    records = [{"question": f"w{i} w{i + 1}", "choices": [long_answer, "w3"], "answer": 0,
                "split": "test" if i >= 12 else "train"} for i in range(16)]
    task = tmp_path / "long.jsonl"
    task.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "run"
    argv = ["train", "--task", str(task), "--base_model_name", str(tiny_model_dir), "--prompt_style", "plain",
            "--formulation", "text", "--train_size", "8", "--val_size", "4", "--num_epoch", "1", "--quiet",
            "--output_dir", str(out)]
    assert main([*argv, "--max_length", "8"]) == 2
    error = capsys.readouterr().err
    assert ("jola-lens train: error: training example custom/long:train:10: the target alone has 21 tokens, more than "
            "max_length=8 allows after the prompt's 0 kept token(s); raise --max_length") in error
    assert not (out / "config.json").exists()  # nothing written: the same folder takes the corrected command
    assert main([*argv, "--max_length", "64"]) == 0


def test_unwritable_output_dir_is_refused(tmp_path, tiny_args, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["train", *tiny_args, "--output_dir", str(blocker / "run")]) == 2
    assert "cannot write to --output_dir" in capsys.readouterr().err


def test_existing_output_dirs(tmp_path, tiny_args, capsys):
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    assert main(["train", *tiny_args, "--output_dir", str(stranger)]) == 2
    assert "holds no jola_lens run" in capsys.readouterr().err
    assert main(["train", *tiny_args, "--output_dir", str(stranger), "--overwrite"]) == 2
    assert (stranger / "notes.txt").read_text() == "mine"
    assert main(["train", *tiny_args, "--output_dir", str(tmp_path / "empty"), "--resume"]) == 2
    assert "no run to resume" in capsys.readouterr().err
    assert main(["train", *tiny_args, "--output_dir", str(tmp_path / "x"), "--resume", "--overwrite"]) == 2

    run = tmp_path / "run"
    assert main(["train", *tiny_args, "--num_epoch", "1", "--output_dir", str(run)]) == 0
    capsys.readouterr()
    assert main(["train", *tiny_args, "--num_epoch", "1", "--output_dir", str(run), "--lr", "0.01",
                 "--seed", "7"]) == 2
    err = capsys.readouterr().err
    assert "train.lr: 0.05 -> 0.01" in err and "train.seed: 42 -> 7" in err
    assert main(["train", *tiny_args, "--num_epoch", "1", "--output_dir", str(run), "--lr", "0.01",
                 "--overwrite"]) == 0
    assert json.loads((run / "config.json").read_text())["train"]["lr"] == 0.01


def test_interrupt_and_nan_messages(monkeypatch, tmp_path, capsys):
    from jola_lens.training import pipeline

    def interrupted(*args, **kwargs):
        raise TrainingInterrupted(2, 37, str(tmp_path / "run" / "checkpoint"))

    monkeypatch.setattr(pipeline, "train_run", interrupted)
    argv = ["train", "--output_dir", str(tmp_path / "run"), "--gate_lr", "0.1"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "after step 37" in err and f"jola-lens train --output_dir {tmp_path / 'run'} --gate_lr 0.1" in err

    def diverged(*args, **kwargs):
        raise NonFiniteLossError(12, 2, float("nan"), 1)

    monkeypatch.setattr(pipeline, "train_run", diverged)
    assert main(argv) == 1
    assert "nan at step 12" in capsys.readouterr().err


# ---- whole runs ------------------------------------------------------------------------------------------
def test_gate_init_flag_starts_every_gate_logit_there(tmp_path, tiny_args):
    run = RunFolder(tmp_path / "run")
    assert main(["train", *tiny_args, "--num_epoch", "1", "--gate_init", "2.5", "--output_dir", str(run.root),
                 "--quiet"]) == 0
    epoch, _, initial = run.read_gate_snapshots()[0]
    assert epoch == 0 and all(torch.equal(logits, torch.full_like(logits, 2.5)) for logits in initial.values())
    config = run.read_config()
    assert config["train"]["gate_init"] == 2.5 and config["edit"]["gate_init"] == 2.5


def test_keep_heads_prunes_the_kept_edit_to_the_top_gates_as_pruning_afterwards_would(tmp_path, tiny_args):
    full, kept = RunFolder(tmp_path / "full"), RunFolder(tmp_path / "kept")
    assert main(["train", *tiny_args, "--num_epoch", "1", "--output_dir", str(full.root)]) == 0
    assert main(["train", *tiny_args, "--num_epoch", "1", "--keep_heads", "3", "--output_dir", str(kept.root)]) == 0
    expected = full.load_edit().pruned(3)
    ours = kept.load_edit()
    assert ours.config.heads == expected.config.heads and len(ours.config.heads["additive"]) == 3
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), expected.parameters()))
    heads = json.loads(kept.metrics.read_text())["training"]["heads"]
    assert all(counts["kept"] <= 3 for counts in heads.values())
    assert main(["train", *tiny_args, "--num_epoch", "1", "--keep_heads", "3", "--output_dir", str(kept.root)]) == 0
    assert kept.load_edit().config.heads == expected.config.heads  # the same command again: the same heads


def test_prune_writes_the_run_keep_heads_would_have_trained_and_eval_scores_it(tmp_path, tiny_args, capsys):
    full, trained = RunFolder(tmp_path / "full"), RunFolder(tmp_path / "trained")
    assert main(["train", *tiny_args, "--num_epoch", "1", "--output_dir", str(full.root)]) == 0
    assert main(["train", *tiny_args, "--num_epoch", "1", "--keep_heads", "0.3", "--output_dir",
                 str(trained.root)]) == 0
    capsys.readouterr()
    assert main(["prune", str(full.root), "--keep_heads", "0.3"]) == 0
    pruned = RunFolder(tmp_path / "full-keep0.3")
    assert f"pruned {full.root} into {pruned.root}" in capsys.readouterr().out
    assert pruned.settings_diff({k: v for k, v in trained.read_config().items() if k != "library_version"}) == []
    ours, theirs = pruned.load_edit(), trained.load_edit()
    assert ours.config == theirs.config and ours.fingerprint() == theirs.fingerprint()
    for name in ("method.json",):
        assert (pruned.edit_dir / name).read_text() == (trained.edit_dir / name).read_text()
    assert (json.loads(pruned.metrics.read_text())["training"]["heads"]
            == json.loads(trained.metrics.read_text())["training"]["heads"])
    assert pruned.train_log.read_text() == full.train_log.read_text()
    assert main(["eval", "--edit", str(pruned.root), "--scoring", "likelihood", "--limit", "4", "--quiet"]) == 0
    assert json.loads(pruned.metrics.read_text())["evaluation"]["n"] == 4
    assert main(["prune", str(full.root), "--keep_heads", "0.3"]) == 2  # the folder holds the pruned run now
    assert "is not empty; choose a new folder, or pass --overwrite" in capsys.readouterr().err
    assert main(["prune", str(pruned.root), "--keep_heads", "2", "--output_dir", str(tmp_path / "again")]) == 2
    assert "is already pruned (keep_heads 0.3); prune the run it was made from" in capsys.readouterr().err


def test_keep_heads_without_head_gates_is_refused(tmp_path, tiny_args, capsys):
    assert main(["train", *tiny_args, "--ablation", "no_gates", "--keep_heads", "3",
                 "--output_dir", str(tmp_path / "run")]) == 2
    assert ("--keep_heads belongs to --method jola (they act on JoLA's gates, which --ablation no_gates switches "
            "off), not to --method jola --ablation no_gates: drop it") in capsys.readouterr().err


def test_init_std_zero_starts_the_vectors_at_zero_so_no_task_gradient_reaches_the_gates_at_first(tmp_path, tiny_args,
                                                                                               capsys):
    one_step = ["--train_size", "8", "--train_batch", "8", "--num_epoch", "1", "--gate_init", "0.5",
                "--warmup_steps", "0", "--penalty_scale", "0"]
    runs = {std: RunFolder(tmp_path / f"std{std}") for std in ("0", "0.001")}
    for std, run in runs.items():
        assert main(["train", *tiny_args, *one_step, "--init_std", std, "--output_dir", str(run.root)]) == 0
    assert runs["0"].load_edit().config.init_std == 0 and runs["0"].read_config()["train"]["init_std"] == 0
    for std, run in runs.items():
        _, _, after = run.read_gate_snapshots()[1]
        spread = max(float(logits.max() - logits.min()) for logits in after.values())
        # a gate's task gradient scales with its vector: from zero vectors the first step leaves every gate at 0.5
        assert (spread == 0) == (std == "0"), (std, spread)
        assert all(torch.equal(logits, torch.full_like(logits, 0.5)) for logits in after.values()) == (std == "0")
    assert main(["train", *tiny_args, "--method", "lora", "--init_std", "0", "--output_dir",
                 str(tmp_path / "lora")]) == 2
    assert "--init_std belongs to --method jola" in capsys.readouterr().err


def test_gate_noise_flags_reach_the_trainer_and_belong_to_gated_jola(tmp_path, tiny_args, capsys):
    run = RunFolder(tmp_path / "run")
    assert main(["train", *tiny_args, "--num_epoch", "1", "--gate_noise_seed", "9",
                 "--output_dir", str(run.root)]) == 0
    assert run.read_config()["train"]["gate_noise_seed"] == 9
    for flags, refused in ((["--method", "lora", "--gate_noise", "off"], "--gate_noise belongs to --method jola"),
                           (["--ablation", "no_gates", "--gate_noise_seed", "1"],
                            "--gate_noise_seed belongs to --method jola")):
        assert main(["train", *tiny_args, *flags, "--output_dir", str(tmp_path / "refused")]) == 2
        assert refused in capsys.readouterr().err


def test_train_eval_writes_a_complete_run_and_the_same_command_resumes(tmp_path, tiny_args, capsys):
    run, results = tmp_path / "runs" / "tiny", tmp_path / "all.jsonl"
    argv = ["train", *tiny_args, "--output_dir", str(run), "--run_mode", "train_eval", "--scoring", "both",
            "--limit", "10", "--output_file_name", str(results)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "trainable parameters" in out and "heads        additive" in out and "n=10" in out
    folder = RunFolder(run)
    config = folder.read_config()
    for key in ("task", "model", "backend", "formulation", "prompt_style", "edit", "train"):
        assert key in config
    assert config["train"]["lr"] == 0.05 and config["edit"]["n_layers"] == 2
    log = folder.read_train_log()
    assert len(log) == 2 * 4 and {"open_additive", "open_multiplicative", "lam", "lr"} <= log[0].keys()
    assert [epoch for epoch, _, _ in folder.read_gate_snapshots()] == [0, 1, 2]
    metrics = json.loads(folder.metrics.read_text())
    evaluation = metrics["evaluation"]
    assert (evaluation["n"], evaluation["scoring"], evaluation["formulation"], evaluation["prompt_style"]) == (
        10, "both", "label", "plain")
    assert evaluation["source"].startswith("local:") and evaluation["likelihood_normalization"] == "characters"
    assert metrics["training"]["heads"]["additive"]["total"] == 8
    predictions = [json.loads(line) for line in folder.predictions.read_text().splitlines()]
    assert len(predictions) == 10 and {"id", "prompt", "response", "prediction", "gold", "correct",
                                       "option_logprobs"} <= predictions[0].keys()
    lines = results.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["metric.likelihood.acc"] == evaluation["results"]["likelihood"]["acc"]
    edit_before = (folder.edit_dir / "jola_edit.safetensors").read_bytes()

    assert main(argv) == 0  # the same command again: resumes the finished run, re-evaluates
    assert "resumed run" in capsys.readouterr().out
    assert len(folder.read_train_log()) == 8 and (folder.edit_dir / "jola_edit.safetensors").read_bytes() == edit_before
    assert len(results.read_text().splitlines()) == 2

    assert main(["eval", "--edit", str(run), "--scoring", "likelihood", "--limit", "5", "--quiet"]) == 0
    metrics = json.loads(folder.metrics.read_text())
    assert metrics["evaluation"]["n"] == 5 and "training" in metrics
    assert metrics["evaluation"]["model"] == config["model"]

    assert main(["train", "--output_dir", str(run), "--run_mode", "eval", "--scoring", "likelihood", "--limit", "3",
                 "--quiet"]) == 0
    assert json.loads(folder.metrics.read_text())["evaluation"]["n"] == 3


def test_zero_shot_eval_and_the_overlap_guard(tmp_path, tiny_args, tiny_task, tiny_model_dir, capsys):  # noqa: F811
    zero = tmp_path / "zero"
    assert main(["eval", "--task", str(tiny_task), "--base_model_name", str(tiny_model_dir), "--prompt_style", "plain",
                 "--scoring", "likelihood", "--limit", "6", "--output_dir", str(zero), "--quiet"]) == 0
    metrics = json.loads((zero / "metrics.json").read_text())["evaluation"]
    assert metrics["edit"] is None and metrics["n"] == 6 and metrics["heads"] is None
    assert "edit: none (zero-shot)" in capsys.readouterr().out

    run = tmp_path / "run"
    assert main(["train", *tiny_args, "--num_epoch", "1", "--output_dir", str(run)]) == 0
    from jola_lens.tasks import get_task

    leaked = get_task(str(tiny_task)).load_split("test")[0]
    with open(run / "train_items.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"split": "train", "id": "leak", "instruction": leaked.instruction}) + "\n")
    capsys.readouterr()
    assert main(["eval", "--edit", str(run), "--scoring", "likelihood", "--quiet"]) == 2
    assert "also occur in the test set" in capsys.readouterr().err


# ---- a folder written by the trainer, read back by eval and analyze ------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_task, tiny_model_dir):  # noqa: F811
    """One tiny run trained by `jola-lens train` (1 epoch), shared by the tests below (they only read it)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "--task", str(tiny_task), "--base_model_name", str(tiny_model_dir), "--prompt_style",
                 "plain", "--train_size", "32", "--val_size", "16", "--num_epoch", "1", "--max_length", "64",
                 "--warmup_steps", "2", "--eval_batch", "8", "--lr", "0.05", "--gate_lr", "0.5", "--penalty_scale",
                 "20", "--output_dir", str(run), "--quiet"]) == 0
    return RunFolder(run)


def test_a_trained_run_holds_only_files_its_run_folder_owns(trained, tmp_path):
    from jola_lens.run_folder import OWNED_DIRS, OWNED_FILES, STAGE_DIRS

    names = {p.name for p in trained.root.iterdir()}
    assert {"config.json", "edit", "gates", "checkpoint", "train_items.jsonl", "train_log.jsonl",
            "metrics.json"} <= names <= set(OWNED_FILES + OWNED_DIRS + STAGE_DIRS)
    results = trained.default_results_file.read_text().splitlines()  # beside the run, not inside it
    assert [json.loads(line)["output_dir"] for line in results] == [str(trained.root)]
    copy = RunFolder(tmp_path / "copy")
    shutil.copytree(trained.root, copy.root)
    copy.clear()
    assert list(copy.root.iterdir()) == []


def test_eval_on_a_bare_edit_folder(trained, tiny_task, tmp_path, capsys):  # noqa: F811
    """Just jola_config.json + jola_edit.safetensors: the base model comes from the edit's config, the scores
    equal those of the run folder it came from, and the missing overlap check is said."""
    from jola_lens.serialization import CONFIG_NAME, WEIGHTS_NAME

    bare = tmp_path / "bare"
    bare.mkdir()
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        shutil.copy(trained.edit_dir / name, bare / name)
    common = ["--task", str(tiny_task), "--prompt_style", "plain", "--scoring", "likelihood", "--limit", "12",
              "--eval_batch", "4", "--quiet"]
    assert main(["eval", "--edit", str(bare), *common, "--output_dir", str(tmp_path / "from-bare")]) == 0
    assert "is not a run folder: cannot check that its training items are not test items" in capsys.readouterr().err
    from_bare = json.loads((tmp_path / "from-bare" / "metrics.json").read_text())["evaluation"]
    assert main(["eval", "--edit", str(trained.root), *common, "--output_dir", str(tmp_path / "from-run")]) == 0
    from_run = json.loads((tmp_path / "from-run" / "metrics.json").read_text())["evaluation"]
    assert from_bare["edit"] == str(bare) and from_bare["n"] == 12 and from_bare["model"] == from_run["model"]
    assert from_bare["results"] == from_run["results"] and from_bare["heads"] == from_run["heads"]
    assert sorted(p.name for p in bare.iterdir()) == sorted((CONFIG_NAME, WEIGHTS_NAME))  # the edit is untouched


def test_analyze_on_a_folder_written_by_the_trainer(trained, tmp_path, capsys):
    import pandas as pd

    from jola_lens.analysis import head_tensors

    out = tmp_path / "figures"
    assert main(["analyze", str(trained.root), "--output", str(out)]) == 0
    label = trained.read_config()["task_name"]
    slug = label.replace("/", "-")
    names = {p.name for p in out.iterdir()}
    assert {f"heatmap-{slug}.png", f"trajectories-{slug}.png", "heads.csv", "summary.csv", "summary.md"} <= names
    heads = pd.read_csv(out / "heads.csv")
    assert len(heads) == 2 * 2 * 4 and set(heads["task"]) == {label}  # tiny llama: 2 kinds x 2 layers x 4 heads
    gates = head_tensors(trained.root, "gate")
    for kind, tensor in gates.items():
        rows = heads[heads["kind"] == kind].sort_values(["layer", "head"])
        assert rows["gate"].to_numpy() == pytest.approx(tensor.flatten().numpy(), abs=1e-6)
    log = trained.read_train_log()
    summary = pd.read_csv(out / "summary.csv").set_index("kind")
    for kind in gates:
        assert summary.loc[kind, "heads_kept"] == int((gates[kind] > 0).sum())
    assert len(log) == 4 and "wrote" in capsys.readouterr().out
