"""`jola-lens analyze` says what it can and cannot tell: one seed per task, seed groups and their verdicts."""

from __future__ import annotations

import argparse

import pandas as pd
from test_analysis_support import make_edit, make_run

from jola_lens import atomic
from jola_lens.analysis import cli
from jola_lens.run_folder import RunFolder


def analyze(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="jola-lens")
    cli.add_analyze_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["analyze", *argv])
    return args.func(args)


def _run(root, task, seed, heads):
    run = make_run(root, make_edit(open_heads={"additive": heads, "multiplicative": heads[:1]}, seed=seed),
                   task=task)
    atomic.write_json(run.config, {"task": task, "model": "test/model", "train": {"seed": seed, "lr": 0.005}})
    return str(run.root)


def test_single_seed_runs_say_task_and_seed_cannot_be_told_apart(tmp_path, capsys):
    runs = [_run(tmp_path / t, t, 42, [(0, 0), (1, i)]) for i, t in enumerate(["a", "b", "c"])]
    out = tmp_path / "out"
    assert analyze(*runs, "--output", str(out)) == 0
    printed = capsys.readouterr().out
    message = ("Every task here has a single run (one seed), so these figures cannot separate what the task selects "
               "from what the seed selects")
    assert message in printed and "Train each task with at least 3 seeds" in printed
    assert message in (out / "summary.md").read_text()
    assert not (out / "stability.csv").exists() and not (out / "consensus.csv").exists()


def test_seed_groups_get_consensus_stability_and_verdicts(tmp_path, capsys):
    runs = [_run(tmp_path / f"{t}{s}", t, s, [(0, 0), (1, s % 4), (2, (s + k) % 4)])
            for k, t in enumerate(["a", "b"]) for s in (1, 2, 3)]
    runs.append(_run(tmp_path / "c1", "c", 1, [(0, 1)]))
    out = tmp_path / "out"
    assert analyze(*runs, "--output", str(out), "--permutations", "99") == 0
    printed = capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    assert {"consensus.csv", "stability.csv", "task-comparison.csv", "consensus-a.png", "consensus-b.png",
            "consensus-grid.png", "overlap.png"} <= names
    assert "consensus-c.png" not in names  # one run: no consensus figure
    stability = pd.read_csv(out / "stability.csv")
    assert set(stability["group"]) == {"a", "b"} and len(stability) == 2 * 2 * 7
    assert "Stability across seeds:\n  a, additive, 3 seeds — kept heads: Nogueira Φ" in printed
    assert "Task comparison:\n  additive, selection: " in printed
    comparison = pd.read_csv(out / "task-comparison.csv")
    assert comparison["n_runs"].tolist() == [7] * 4 and comparison["n_tasks"].tolist() == [3] * 4
    markdown = (out / "summary.md").read_text()
    assert "### Stability across seeds" in markdown and "- Left out (one run each, so no seed comparison): c." in markdown
    assert "![consensus-grid.png](consensus-grid.png)" in markdown
    heads = pd.read_csv(out / "heads.csv")
    assert heads.drop_duplicates("run")[["group", "seed"]].values.tolist() == [
        ["a", 1], ["a", 2], ["a", 3], ["b", 1], ["b", 2], ["b", 3], ["c", 1]]


def test_bad_permutations(tmp_path, capsys):
    run = _run(tmp_path / "a", "a", 1, [(0, 0)])
    assert analyze(run, "--output", str(tmp_path / "out"), "--permutations", "0") == 2
    assert "jola-lens analyze: error: --permutations must be at least 1, got 0" in capsys.readouterr().err


def test_runs_trained_with_gate_noise_are_named_with_the_preset_that_avoids_it(tmp_path, capsys):
    noisy = [_run(tmp_path / f"a{s}", "a", s, [(0, 0)]) for s in (1, 2)]  # saved before gate_noise: "sample"
    quiet = _run(tmp_path / "b1", "b", 1, [(0, 1)])
    config = RunFolder(quiet).read_config()
    atomic.write_json(RunFolder(quiet).config, config | {"train": config["train"] | {"gate_noise": "off"}})
    out = tmp_path / "out"
    assert analyze(*noisy, quiet, "--output", str(out), "--permutations", "9") == 0
    note = ("Note: 2 of these runs (a [a1], a [a2]) were trained with the gates' Hard-Concrete noise (the spec's "
            "default), which their seed draws")
    printed = capsys.readouterr().out
    assert note in printed and note in (out / "summary.md").read_text()
    assert "train with `--preset localize` (no gate noise, 30% of the heads kept)." in printed
    assert analyze(quiet, "--output", str(tmp_path / "quiet")) == 0
    assert "Hard-Concrete noise" not in capsys.readouterr().out
