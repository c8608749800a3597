"""The causal check end to end on a tiny random model: head sets from the consensus, one run per set through the
ordinary pipeline, every run scored on the same items, resumable; and its bad input."""

from __future__ import annotations

import argparse
import json
import shutil

import pandas as pd
import pytest
import torch
from test_training_helpers import tiny_model_dir, tiny_task  # noqa: F401  (fixtures)

from jola_lens import atomic
from jola_lens.analysis import cli
from jola_lens.analysis.causal import causal_head_sets
from jola_lens.analysis.causal_check import read_correctness, restricted_config, run_causal_check
from jola_lens.edit import JoLAEdit
from jola_lens.run_folder import RunFolder
from jola_lens.training.config import TrainConfig
from jola_lens.training.pipeline import RunSpec, train_run

LIMIT = 12
COMPARISONS = {"top vs bottom", "top vs full", "top vs random-0", "top vs random-1", "top vs zero-shot",
               "top vs random (mean of 2)"}


@pytest.fixture(scope="module")
def group(tmp_path_factory, tiny_task, tiny_model_dir):  # noqa: F811
    """Two seeds of the tiny task, trained and scored like a study's runs."""
    root = tmp_path_factory.mktemp("group")
    spec = RunSpec(task=str(tiny_task), model=str(tiny_model_dir), prompt_style="plain", train_size=32, val_size=16,
                   device="cpu")
    runs = []
    for seed in (1, 2):
        config = TrainConfig(num_epoch=1, max_length=64, warmup_steps=2, eval_batch=8, lr=0.05, gate_lr=0.5,
                             save_strategy="last", seed=seed)
        folder = root / f"tiny-seed{seed}"
        train_run(spec, config, folder, run_mode="train_eval", scoring="likelihood", limit=LIMIT, progress=False)
        runs.append(folder)
    return runs


def _mtimes(output):
    return {str(p): p.stat().st_mtime_ns for p in sorted((output / "runs").rglob("*.jsonl"))}


def test_causal_check_trains_each_head_set_and_scores_every_run_on_the_same_items(group, tmp_path):
    output = tmp_path / "causal"
    check = run_causal_check(group, k=2, n_random=2, output_dir=output, rank_by="multiplicative")

    assert set(check.table["comparison"]) == COMPARISONS
    assert check.trained == ("top", "bottom", "random-0", "random-1", "zero-shot")  # full: the group's own run
    ids = set(read_correctness(group[0]))
    assert len(ids) == LIMIT
    assert set(check.correct) == {"top", "bottom", "random-0", "random-1", "full", "zero-shot"}
    assert all(set(correct) == ids for correct in check.correct.values())

    p_nonzero = torch.stack([JoLAEdit.from_pretrained(run / "edit").prob_nonzero()["multiplicative"] for run in group])
    order = p_nonzero.mean(dim=0).flatten().argsort(descending=True, stable=True).tolist()
    top = tuple(sorted((i // 4, i % 4) for i in order[:2]))
    assert check.head_sets["top"] == {"additive": top, "multiplicative": top}  # one set for both kinds
    assert check.head_sets["bottom"]["additive"] == tuple(sorted((i // 4, i % 4) for i in order[-2:]))
    for name in ("top", "bottom", "random-0", "random-1"):
        folder = RunFolder(output / "runs" / name)
        spec = ",".join(f"L{layer}H{head}" for layer, head in check.head_sets[name]["multiplicative"])
        assert folder.read_config()["train"]["heads"] == spec
        assert folder.read_config()["train"]["seed"] == 1  # the group's lowest seed, its other settings too
        assert folder.read_config()["train"]["gate_lr"] == 0.5
        assert folder.load_edit().config.heads == check.head_sets[name]
    zero_shot = json.loads((output / "runs" / "zero-shot" / "metrics.json").read_text())["evaluation"]
    assert zero_shot["edit"] is None and zero_shot["n"] == LIMIT and zero_shot["scoring"] == "likelihood"

    rows = check.runs.set_index("run")
    edited = torch.stack(list(JoLAEdit.from_pretrained(group[0] / "edit").selected_heads().values())).any(dim=0)
    assert rows.loc["full", "n_heads"] == int(edited.sum()) and rows.loc["full", "heads"] == "every head"
    assert rows.loc["zero-shot", "n_heads"] == 0 and rows.loc["top", "n_heads"] == 2
    accuracy = rows["accuracy"]
    for name, correct in check.correct.items():
        assert accuracy[name] == pytest.approx(100 * sum(correct.values()) / LIMIT)
    written = pd.read_csv(output / "causal.csv")
    assert written["comparison"].tolist() == check.table["comparison"].tolist()
    assert written["p"].tolist() == pytest.approx(check.table["p"].tolist())
    markdown = (output / "causal.md").read_text()
    assert f"**Verdict:** {check.verdict}." in markdown and "same 12 test items" in markdown

    before = _mtimes(output)
    assert len([p for p in before if p.endswith("train_log.jsonl")]) == 4
    again = run_causal_check(group, k=2, n_random=2, output_dir=output, rank_by="multiplicative")
    assert again.trained == ()
    assert _mtimes(output) == before
    assert again.table.equals(check.table) and again.verdict == check.verdict

    with pytest.raises(ValueError, match=r"runs/top holds a causal-check run on other settings \(train\.heads: "):
        run_causal_check(group, k=3, n_random=2, output_dir=output, rank_by="multiplicative")


def test_per_kind_ranking_restricts_each_edit_kind_to_its_own_sets(group, tmp_path):
    output = tmp_path / "causal"
    check = run_causal_check(group, k=2, n_random=1, output_dir=output)  # the default: per_kind
    edits = [JoLAEdit.from_pretrained(run / "edit") for run in group]
    for i, kind in enumerate(("additive", "multiplicative")):
        order = torch.stack([edit.prob_nonzero()[kind] for edit in edits]).mean(dim=0).flatten().argsort(
            descending=True, stable=True).tolist()
        assert check.head_sets["top"][kind] == tuple(sorted((j // 4, j % 4) for j in order[:2]))
        assert check.head_sets["bottom"][kind] == tuple(sorted((j // 4, j % 4) for j in order[-2:]))
        scores = torch.stack([edit.prob_nonzero()[kind] for edit in edits]).mean(dim=0).double()
        assert check.head_sets["random-0"][kind] == causal_head_sets(scores, 2, 1, seed=i)["random-0"]
    for name, sets in check.head_sets.items():
        folder = RunFolder(output / "runs" / name)
        assert folder.load_edit().config.heads == sets
        assert check.runs.set_index("run").loc[name, "n_heads"] == len(set(sets["additive"]) | set(sets["multiplicative"]))
    markdown = (output / "causal.md").read_text()
    assert "Heads ranked by each edit kind's own consensus `mean_p_nonzero`" in markdown
    assert "each edit kind restricted to its own set (random draws independent per kind)" in markdown


def test_scored_otherwise_the_full_run_is_scored_again_on_the_checks_items(group, tmp_path):
    output = tmp_path / "causal"
    check = run_causal_check(group, k=1, n_random=1, output_dir=output, limit=6)
    assert "full" in check.trained and (output / "runs" / "full" / "predictions.jsonl").is_file()
    assert all(len(correct) == 6 for correct in check.correct.values())
    assert set(check.correct["full"]) == set(list(read_correctness(group[0]))[:6])


def test_a_sparsity_target_or_pruning_larger_than_the_head_set_is_lowered_to_its_size():
    same = tuple((layer, head) for layer in range(3) for head in range(9))  # 27 of 270 heads
    heads = {"additive": same, "multiplicative": same}
    wide = restricted_config(TrainConfig(target_heads=0.3, keep_heads=81), heads, 270)  # 81 and 81
    assert (wide.target_heads, wide.keep_heads) == (27, 27)
    assert wide.heads == ",".join(f"L{layer}H{head}" for layer, head in same)
    own = restricted_config(TrainConfig(keep_heads=81), {"additive": same[:2], "multiplicative": same[5:7]}, 270)
    assert (own.heads, own.keep_heads) == ("additive:L0H0,L0H1;multiplicative:L0H5,L0H6", 2)
    narrow = restricted_config(TrainConfig(target_heads=0.05, keep_heads=10), heads, 270)  # 14 (13.5 rounded) and 10
    assert (narrow.target_heads, narrow.keep_heads) == (14, 10)
    plain = restricted_config(TrainConfig(), heads, 270)
    assert (plain.target_heads, plain.keep_heads) == (None, None)


def _copy(run, destination, **changes):
    shutil.copytree(run, destination)
    config = json.loads((destination / "config.json").read_text())
    for key, value in changes.items():
        section, _, name = key.rpartition(".")
        (config[section] if section else config)[name] = value
    atomic.write_json(destination / "config.json", config)
    return destination


def test_bad_input_is_refused_with_what_to_do(group, tmp_path):
    with pytest.raises(ValueError, match=r"needs at least 2 runs \(better 3 or more\) of one task that differ only in "
                                         r"the seed; got 1 \(.*\)\. Train each task with at least 3 seeds"):
        run_causal_check(group[:1], k=2, output_dir=tmp_path / "out")
    other = _copy(group[1], tmp_path / "other-task", task_name="extra/other")
    with pytest.raises(ValueError, match=r"the causal check takes the runs of one task and model, got 2 \(.* 1 "
                                         r"run\(s\); extra/other on .*: 1 run\(s\)\); run it once per task"):
        run_causal_check([group[0], other], k=2, output_dir=tmp_path / "out")
    lr = _copy(group[1], tmp_path / "other-lr", **{"train.lr": 0.01})
    with pytest.raises(ValueError, match=r"the causal check takes one seed group; The runs of .* differ in more than "
                                         r"the seed \(train\.lr\)"):
        run_causal_check([group[0], lr], k=2, output_dir=tmp_path / "out")
    for k in (0, 8):
        with pytest.raises(ValueError, match=rf"k must be a number of heads in \[1, 7\] \(the model has 8\), got {k}"):
            run_causal_check(group, k=k, output_dir=tmp_path / "out")
    with pytest.raises(ValueError, match=r"rank_by must be one of \('additive', 'multiplicative', 'both', 'per_kind'\), "
                                         r"got 'x'"):
        run_causal_check(group, k=2, rank_by="x", output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything was trained


def analyze(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="jola-lens")
    cli.add_analyze_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["analyze", *argv])
    return args.func(args)


def test_analyze_causal_runs_the_check_per_seed_group(group, tmp_path, capsys):
    output = tmp_path / "analysis"
    assert analyze(*map(str, group), "--output", str(output), "--permutations", "9", "--causal", "2",
                   "--causal-random", "1") == 0
    printed = capsys.readouterr().out
    folders = [p for p in output.iterdir() if p.name.startswith("causal-")]
    assert len(folders) == 1 and {"causal.csv", "causal.md"} <= {p.name for p in folders[0].iterdir()}
    table = pd.read_csv(folders[0] / "causal.csv")
    assert set(table["comparison"]) == {"top vs bottom", "top vs full", "top vs random-0", "top vs zero-shot",
                                        "top vs random (mean of 1)"}
    assert "Causal check" in printed and "random head sets of the same size" in printed
    assert f"[causal.md]({folders[0].name}/causal.md)" in (output / "summary.md").read_text()
    assert analyze(str(group[0]), "--output", str(tmp_path / "one"), "--causal", "2") == 2
    assert "--causal needs a seed group: runs of one task that differ only in the seed" in capsys.readouterr().err


def test_head_sets_leave_out_heads_the_edits_do_not_cover():
    scores = torch.tensor([[float("nan")] * 3, [0.2, 0.9, 0.5]])
    sets = causal_head_sets(scores, k=1, n_random=20, seed=0)
    assert (sets["top"], sets["bottom"]) == (((1, 1),), ((1, 0),))
    assert {head for name, heads in sets.items() if name.startswith("random-") for head in heads} == {
        (1, 0), (1, 1), (1, 2)}
    with pytest.raises(ValueError, match=r"k must be a number of heads in \[1, 2\] \(the edits cover 3 of the model's "
                                         r"6\), got 3"):
        causal_head_sets(scores, k=3)
    with pytest.raises(ValueError, match=r"n_random must be a number of random head sets >= 0, got -1"):
        causal_head_sets(scores, k=1, n_random=-1)
