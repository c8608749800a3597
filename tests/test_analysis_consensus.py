"""Seed groups from run folders, consensus over seeds against hand computations, consensus figures, reports."""

from __future__ import annotations

import re
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from test_analysis_support import make_edit, make_run

from jola_lens import atomic
from jola_lens import gates as hc
from jola_lens.analysis.comparison import task_comparison
from jola_lens.analysis.consensus import (
    consensus_grid,
    consensus_heads,
    consensus_table,
    plot_consensus_grid,
    plot_consensus_heatmap,
    plot_consensus_interactive,
)
from jola_lens.analysis.groups import SeedGroupError, group_notes, grouped_table, seed_groups
from jola_lens.analysis.overlap import plot_overlap, task_order
from jola_lens.analysis.sources import EditSource
from jola_lens.analysis.stability import stability_report, stability_verdicts

ADVICE = re.escape("Train each task with at least 3 seeds and the same other settings (`jola-lens train --task TASK "
                   "--preset localize --seed 1`, then `--seed 2`, `--seed 3`")


def _run(root, task, seed, lr=0.005, open_heads=None):
    run = make_run(root, make_edit(open_heads=open_heads, seed=seed), task=task)
    atomic.write_json(run.config, {"task": task, "model": "test/model", "device": "cpu",
                                   "train": {"seed": seed, "lr": lr}})
    return run.root


def test_groups_split_on_settings_and_say_which(tmp_path):
    runs = [_run(tmp_path / "a1", "commonsense/ARC-e", 1), _run(tmp_path / "a2", "commonsense/ARC-e", 2),
            _run(tmp_path / "a3", "commonsense/ARC-e", 3, lr=0.01), _run(tmp_path / "b1", "commonsense/PIQA", 1)]
    groups = seed_groups(runs)
    assert [(g.name, g.seeds) for g in groups] == [("commonsense/ARC-e [train.lr=0.005]", (1, 2)),
                                                   ("commonsense/ARC-e [train.lr=0.01]", (3,)),
                                                   ("commonsense/PIQA", (1,))]
    assert group_notes(groups) == [(
        "The runs of commonsense/ARC-e differ in more than the seed (train.lr): split into 2 groups "
        "(commonsense/ARC-e [train.lr=0.005]: 2 run(s); commonsense/ARC-e [train.lr=0.01]: 1 run(s)); seeds are "
        "compared only within a group.")]
    table = grouped_table(runs)
    assert table.drop_duplicates("run")["seed"].tolist() == [1, 2, 3, 1]
    assert table.drop_duplicates("run")["group"].str.endswith("[train.lr=0.005]").tolist() == [True, True, False,
                                                                                                False]


def test_repeated_seeds_are_flagged(tmp_path):
    runs = [_run(tmp_path / "a1", "t", 1), _run(tmp_path / "a2", "t", 1)]
    assert group_notes(seed_groups(runs)) == [(
        "t: several runs share seed 1; such runs repeat each other and make the selection look more stable than it "
        "is.")]


def test_stability_refuses_a_group_of_one_run(tmp_path):
    with pytest.raises(SeedGroupError, match=re.escape(
            "stability needs at least 2 runs (better 3 or more) of one task that differ only in the seed; "
            "commonsense/ARC-e has 1 (commonsense/ARC-e). ") + ADVICE):
        stability_report([_run(tmp_path / "a", "commonsense/ARC-e", 1)])
    with pytest.raises(SeedGroupError, match=re.escape(
            "no task has runs of more than one seed (got 2 tasks, one run each). ") + ADVICE):
        stability_report([_run(tmp_path / "b", "x", 1), _run(tmp_path / "c", "y", 1)])
    with pytest.raises(SeedGroupError, match=r"a task comparison needs at least 2 tasks and a task with at least 2 "
                                             r"runs \(seeds\); got x: 1 run\(s\), y: 1 run\(s\)"):
        task_comparison([_run(tmp_path / "d", "x", 1), _run(tmp_path / "e", "y", 1)])


def _sources() -> list[EditSource]:
    """Three seeds of task t: additive heads kept {L0H0, L0H1}, {L0H0, L1H1}, {L0H0}; multiplicative all closed."""
    heads = [[(0, 0), (0, 1)], [(0, 0), (1, 1)], [(0, 0)]]
    return [EditSource(f"t#{i}", "t", "m", make_edit(open_heads={"additive": h}, seed=i)) for i, h in enumerate(heads)]


def test_consensus_by_hand():
    sources = _sources()
    consensus = consensus_table(sources)
    assert list(consensus["group"].unique()) == ["t"]
    add = consensus[consensus["kind"] == "additive"].set_index(["layer", "head"])
    rate = 5 / 36  # 5 kept of 3 runs x 12 heads
    assert add["chance_rate"].iloc[0] == pytest.approx(rate)
    assert add.loc[(0, 0), "frequency"] == 1.0 and add.loc[(0, 1), "frequency"] == pytest.approx(1 / 3)
    assert add.loc[(0, 0), "p_value"] == pytest.approx(rate**3)
    assert add.loc[(0, 1), "p_value"] == pytest.approx(1 - (1 - rate) ** 3)
    assert add.loc[(2, 3), "p_value"] == pytest.approx(1.0)
    # Benjamini-Hochberg over 12 heads: rate^3 * 12 / 1 = 0.032 < 0.05; the 1-of-3 heads stay at 1
    assert add.loc[(0, 0), "p_adjusted"] == pytest.approx(rate**3 * 12)
    assert add.loc[(0, 1), "p_adjusted"] == pytest.approx(1.0)
    assert add["above_chance"].sum() == 1 and add.loc[(0, 0), "above_chance"]
    p_open = float(hc.prob_nonzero(torch.tensor(5.0), 0.33, -0.1, 1.1))
    p_closed = float(hc.prob_nonzero(torch.tensor(-5.0), 0.33, -0.1, 1.1))
    assert add.loc[(0, 1), "mean_p_nonzero"] == pytest.approx((p_open + 2 * p_closed) / 3, rel=1e-5)
    assert add.loc[(0, 1), "sd_p_nonzero"] == pytest.approx(np.std([p_open, p_closed, p_closed], ddof=1), rel=1e-4)
    norms = [float(s.edit.additive.detach()[0, 1].norm()) for s in sources]
    assert add.loc[(0, 1), "mean_norm"] == pytest.approx(np.mean(norms), rel=1e-5)
    mult = consensus[consensus["kind"] == "multiplicative"]
    assert (mult["frequency"] == 0).all() and not mult["above_chance"].any() and (mult["p_value"] == 1).all()
    top = consensus_heads(consensus, k=2)
    assert top.loc[top["kind"] == "additive", "head_id"].tolist() == ["L0H0", "L0H1"]


def test_consensus_leaves_unedited_layers_out():
    sources = [EditSource(f"t#{i}", "t", "m", make_edit(open_heads={"additive": [(0, 0)]}, layers=(0, 2), seed=i))
               for i in range(2)]
    consensus = consensus_table(sources)
    layer1 = consensus[consensus["layer"] == 1]
    assert not layer1["edited"].any() and layer1["frequency"].isna().all() and not layer1["above_chance"].any()
    assert consensus.loc[consensus["kind"] == "additive", "chance_rate"].iloc[0] == pytest.approx(1 / 8)


def _marks(fig: Figure) -> list[int]:
    """Number of markers per scatter in the figure (the above-chance heads)."""
    return [len(c.get_offsets()) for ax in fig.axes for c in ax.collections if isinstance(c, PathCollection)]


def test_consensus_figures():
    sources = _sources()
    other = [EditSource(f"u#{i}", "u", "m", make_edit(open_heads={"additive": [(2, 3)]}, seed=10 + i))
             for i in range(3)]
    consensus = consensus_table(sources + other)
    fig = plot_consensus_grid(consensus)
    assert _marks(fig) == [1, 1]  # one head above chance per task, additive only
    titles = [ax.get_title() for ax in fig.axes]
    assert "t · additive\n3 seed(s), 14% of heads kept on average, 1 above chance" in titles
    assert any(t.startswith("u · multiplicative\n3 seed(s), 0% of heads kept") for t in titles)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 4 and {image.get_clim() for image in images} == {(0.0, 1.0)}
    # t's additive panel: share of its 3 seeds that kept each head, drawn at [head, layer] (layers along x)
    frequency = torch.zeros(3, 4)  # [layer, head]
    for kept in ([(0, 0), (0, 1)], [(0, 0), (1, 1)], [(0, 0)]):
        for layer, head in kept:
            frequency[layer, head] += 1 / 3
    np.testing.assert_allclose(np.ma.getdata(images[0].get_array()), frequency.T.numpy(), rtol=1e-6)
    single = plot_consensus_heatmap(consensus, "u")
    assert _marks(single) == [1] and "Consensus over seeds — u — m" in single._suptitle.get_text()
    with pytest.raises(ValueError, match=r"these runs form 2 seed groups \(t, u\); name one with group=\.\.\., or "
                                         "draw them all with plot_consensus_grid"):
        plot_consensus_heatmap(consensus)
    with pytest.raises(ValueError, match="no seed group named 'v'; the groups are: t, u"):
        plot_consensus_grid(consensus, ["v"])


def test_interactive_consensus_with_plotly():
    pytest.importorskip("plotly")
    fig = plot_consensus_interactive(consensus_table(_sources()))
    heatmap = fig.data[0]
    assert "layer %{x}, head %{y}" in heatmap.hovertemplate and "edit norm" in heatmap.hovertemplate
    assert heatmap.z[0][0] == 1.0 and heatmap.customdata[0][0][0] == 3  # L0H0: kept by 3 of 3 seeds
    z = np.array(heatmap.z, dtype=float)  # [head, layer]: L0H1 and L1H1 kept by 1 of 3 seeds, L1H0 by none
    assert z.shape == (4, 3) and z[1, 0] == pytest.approx(1 / 3) and z[1, 1] == pytest.approx(1 / 3) and z[0, 1] == 0
    assert [trace.type for trace in fig.data] == ["heatmap", "scatter", "heatmap"]  # the above-chance mark


def test_interactive_consensus_falls_back_to_matplotlib(monkeypatch):
    for name in ("plotly", "plotly.subplots", "plotly.graph_objects"):
        monkeypatch.setitem(sys.modules, name, None)
    fig = plot_consensus_interactive(consensus_table(_sources()))
    assert isinstance(fig, Figure) and _marks(fig) == [1]


def test_stability_report_of_edit_sources_and_verdicts():
    report = stability_report(_sources(), n_permutations=99)
    assert set(report["kind"]) == {"additive", "multiplicative"} and len(report) == 14
    head = report[(report["kind"] == "additive") & (report["level"] == "head")].set_index("measure")
    assert head.loc["stability", "n_runs"] == 3 and head.loc["stability", "mean_kept"] == pytest.approx(5 / 3)
    assert head.loc["jaccard", "value"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 2) / 3)
    additive, multiplicative = stability_verdicts(report)
    assert re.match(r"t, additive, 3 seeds — kept heads: Nogueira Φ 0\.\d\d \(95% CI -?\d\.\d\d to \d\.\d\d, too narrow "
                    r"with so few runs; chance -0\.\d\d, p = [\d.]+\), Jaccard 0\.44 \(chance", additive), additive
    verdict = multiplicative
    assert verdict.startswith("t, multiplicative, 3 seeds — kept heads: no run keeps any head, so their overlap "
                              "says nothing; ranking by P(g≠0): RBO 1.00")


def test_task_comparison_finds_planted_tasks_in_edits():
    rng = np.random.default_rng(0)
    favourites = {"t1": [(0, 0), (0, 1), (1, 0), (1, 1)], "t2": [(2, 0), (2, 1), (2, 2), (2, 3)]}
    sources = []
    for task, heads in favourites.items():
        for seed in range(4):
            kept = [h for h in heads if rng.random() < 0.9] + [(int(rng.integers(3)), int(rng.integers(4)))]
            sources.append(EditSource(f"{task}#{seed}", task, "m", make_edit(open_heads={"additive": kept,
                                                                                         "multiplicative": kept},
                                                                             seed=seed)))
    comparison = task_comparison(sources, n_permutations=500).set_index(["kind", "distance"])
    # 8 runs, 4 per task: 8! / (4! 4!) = 70 relabellings; the observed one and its mirror image (t1 <-> t2)
    # give the largest statistic
    assert comparison.loc[("additive", "selection"), "permutations"] == "all 70 relabellings"
    assert comparison.loc[("additive", "selection"), "p_value"] == pytest.approx(2 / 70)
    assert comparison.loc[("additive", "selection"), "verdict"].startswith("the tasks differ beyond seed noise")


def test_overlap_orders_runs_by_task_and_frames_the_seed_blocks():
    sources = [EditSource(label, task, "m", make_edit(open_heads={"additive": [(0, 0)]}, seed=i))
               for i, (label, task) in enumerate([("a1", "a"), ("b1", "b"), ("a2", "a"), ("c1", "c")])]
    table = grouped_table(sources)
    assert task_order(table) == (["a1", "a2", "b1", "c1"], [(0, 2), (2, 1), (3, 1)])
    fig = plot_overlap(table, by_task=True)
    assert [tick.get_text() for tick in fig.axes[0].get_yticklabels()] == ["a1", "a2", "b1", "c1"]
    frames = [p for p in fig.axes[0].patches if p.get_edgecolor()[:3] == (0.0, 0.0, 0.0)]
    assert [(f.get_xy(), f.get_width()) for f in frames] == [((-0.5, -0.5), 2)]


def test_head_table_without_groups_is_grouped_by_task():
    table = grouped_table(_sources()).drop(columns=["group", "seed"])
    regrouped = grouped_table(table)
    assert set(regrouped["group"]) == {"t"} and regrouped["seed"].isna().all()
    pd.testing.assert_frame_equal(stability_report(regrouped, n_permutations=20),
                                  stability_report(_sources(), n_permutations=20))


def test_consensus_grid_for_ranking_heads():
    consensus = consensus_table(_sources())
    grid = consensus_grid(consensus, "t", "additive", "frequency")
    assert grid.shape == (3, 4) and grid[0, 0] == 1.0 and grid[0, 1] == pytest.approx(1 / 3) and grid[2, 3] == 0
    assert torch.equal(consensus_grid(consensus, "t", "additive").isnan(), torch.zeros(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"no consensus rows for group 'x', kind 'additive'; there are: \[\('t', "
                                         r"'additive'\), \('t', 'multiplicative'\)\]"):
        consensus_grid(consensus, "x", "additive")
    with pytest.raises(ValueError, match="'group' is not a numeric consensus column"):
        consensus_grid(consensus, "t", "additive", "group")


def test_a_group_that_keeps_every_head_is_told_how_to_compare_at_equal_sparsity():
    sources = [EditSource(f"t#{i}", "t", "m", make_edit(open_heads=None, seed=i)) for i in range(3)]
    additive, _ = stability_verdicts(stability_report(sources, n_permutations=19))
    assert additive.startswith("t, additive, 3 seeds — kept heads: every run keeps all heads, so their overlap says "
                               "nothing (compare kept sets at equal sparsity: `jola-lens prune RUN --keep_heads K` on "
                               "each run, or train with --keep_heads K); ranking by P(g≠0)")
