"""`jola-lens analyze`: the files it promises, mixed base models grouped, clear errors."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest
from conftest import build_tiny_model
from test_analysis_support import make_edit, make_run

from jola_lens import JoLAEdit
from jola_lens.analysis import cli


def analyze(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="jola-lens")
    cli.add_analyze_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["analyze", *argv])
    return args.func(args)


@pytest.fixture
def runs(tmp_path):
    heads = {"additive": [(0, 0), (1, 2)], "multiplicative": [(2, 1)]}
    return [make_run(tmp_path / name, make_edit(open_heads=heads if i else None, seed=i), task=task).root
            for i, (name, task) in enumerate([("arc", "commonsense/ARC-e"), ("boolq", "commonsense/BoolQ"),
                                              ("piqa", "commonsense/PIQA")])]


def test_writes_the_promised_files(runs, tmp_path, capsys):
    out = tmp_path / "out"
    assert analyze(*map(str, runs), "--output", str(out), "--top-k", "2") == 0
    names = {p.name for p in out.iterdir()}
    figures = {"heatmap-commonsense-ARC-e.png", "heatmap-commonsense-BoolQ.png", "heatmap-commonsense-PIQA.png",
               "heatmap-grid.png", "overlap.png", "depth-profile.png", "trajectories-commonsense-ARC-e.png",
               "trajectories-commonsense-BoolQ.png", "trajectories-commonsense-PIQA.png"}
    assert names == figures | {"heads.csv", "summary.csv", "summary.md"}
    printed = capsys.readouterr().out
    assert all(f"wrote {out / name}" in printed for name in names)
    heads = pd.read_csv(out / "heads.csv")
    assert len(heads) == 3 * 2 * 3 * 4 and set(heads["task"]) == {"commonsense/ARC-e", "commonsense/BoolQ",
                                                                  "commonsense/PIQA"}
    summary = pd.read_csv(out / "summary.csv")
    assert summary.set_index(["run", "kind"]).loc[("commonsense/BoolQ", "additive"), "heads_kept"] == 2
    markdown = (out / "summary.md").read_text()
    assert "## Top 2 heads" in markdown and "![heatmap-grid.png](heatmap-grid.png)" in markdown
    assert "all 12 heads open (no gate closed)" in markdown


def test_format_and_colour(runs, tmp_path):
    out = tmp_path / "out"
    assert analyze(str(runs[0]), "-o", str(out), "--format", "svg", "--color", "change") == 0
    assert (out / "heatmap-commonsense-ARC-e.svg").read_text().startswith("<?xml")
    assert not (out / "overlap.svg").exists()  # one run: nothing to overlap


def test_mixed_base_models_are_grouped(runs, tmp_path, capsys):
    other = make_run(tmp_path / "other", make_edit(n_layers=2, n_heads=3, model="org/other"), task="x").root
    out = tmp_path / "out"
    assert analyze(*map(str, runs), str(other), "--output", str(out)) == 0
    printed = capsys.readouterr().out
    assert "2 base models" in printed and "compared only within each model" in printed
    names = {p.name for p in out.iterdir()}
    assert {"test-model-heatmap-grid.png", "test-model-overlap.png", "org-other-heatmap-x.png",
            "org-other-depth-profile.png"} <= names
    assert "org-other-overlap.png" not in names
    assert set(pd.read_csv(out / "heads.csv")["model"]) == {"test/model", "org/other"}


def test_not_a_run_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert analyze(str(tmp_path / "empty"), "--output", str(tmp_path / "out")) == 2
    assert "is neither a jola_lens run folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_change_needs_snapshots_and_missing_snapshots_skip_trajectories(tmp_path, capsys):
    run = make_run(tmp_path / "run", make_edit(), task="t")
    for snapshot in run.gates_dir.iterdir():
        snapshot.unlink()
    assert analyze(str(run.root), "--output", str(tmp_path / "a"), "--color", "change") == 2
    assert "--color change needs" in capsys.readouterr().err
    assert analyze(str(run.root), "--output", str(tmp_path / "b")) == 0
    assert "Skipped gate trajectories: t:" in capsys.readouterr().out
    assert not list((tmp_path / "b").glob("trajectories-*"))
    assert "Skipped gate trajectories" in (tmp_path / "b" / "summary.md").read_text()


def test_logit_lens_option(tmp_path, tiny_tokenizer, monkeypatch):
    model = build_tiny_model("llama")
    edit = JoLAEdit.for_model(model, seed=0)
    run = make_run(tmp_path / "run", edit, task="t")
    loaded = []
    monkeypatch.setattr(cli, "load_model", lambda name: loaded.append(name) or (model, tiny_tokenizer))
    out = tmp_path / "out"
    assert analyze(str(run.root), "--output", str(out), "--logit-lens", "--top-k", "2") == 0
    assert loaded == ["tiny-llama"]
    lens = pd.read_csv(out / "logit-lens.csv")
    assert lens.groupby(["layer", "head"]).ngroups == 2
    assert (out / "logit-lens-t.png").is_file()
    assert "## What the additive edits write" in (out / "summary.md").read_text()


def test_same_model_name_with_other_grids_is_refused(tmp_path, capsys):
    a = make_run(tmp_path / "a", make_edit(n_heads=4), task="a").root
    b = make_run(tmp_path / "b", make_edit(n_heads=5), task="b").root
    assert analyze(str(a), str(b), "--output", str(tmp_path / "out")) == 2
    assert "different layer x head grids" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
