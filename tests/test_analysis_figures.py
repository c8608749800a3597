"""Figures build for one and many runs, small and large grids, and say plainly when no gate closed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from test_analysis_support import make_edit, make_run

from jola_lens.analysis import (
    EditSource,
    MixedModelsError,
    NoGateSnapshotsError,
    depth_profile,
    gate_trajectories,
    head_table,
    open_heads_log,
    plot_depth_profile,
    plot_gate_trajectories,
    plot_head_grid,
    plot_head_heatmap,
    plot_overlap,
    save_figure,
)

SMOLLM2 = (30, 9, 64)    # GQA: 9 query heads, 3 KV heads
LLAMA_8B = (32, 32, 128)  # GQA: 32 query heads, 8 KV heads
GPT2 = (12, 12, 64)       # no GQA


def _titles(fig: Figure) -> str:
    return "\n".join([fig.get_suptitle(), *(ax.get_title() for ax in fig.axes)])


def _sources(shape: tuple[int, int, int], n: int, **kwargs: object) -> list[EditSource]:
    n_layers, n_heads, _ = shape
    out = []
    for i in range(n):
        heads = {"additive": [(layer, (layer + i) % n_heads) for layer in range(0, n_layers, 2)],
                 "multiplicative": [(i % n_layers, 0)]}
        out.append(EditSource(f"task{i}", f"task{i}", "org/model", make_edit(*shape, open_heads=heads, seed=i,
                                                                              **kwargs)))
    return out


@pytest.mark.parametrize("shape", [SMOLLM2, LLAMA_8B, GPT2], ids=["30x9", "32x32", "12x12"])
def test_heatmap_one_run(shape):
    (source,) = _sources(shape, 1)
    fig = plot_head_heatmap(source, "gate")
    assert len(fig.axes) == 3  # two kinds + one colour bar
    titles = _titles(fig)
    assert "task0 — org/model" in titles
    assert f"{shape[0] // 2 + shape[0] % 2} of {shape[0] * shape[1]} heads kept" in titles
    assert "gate value" in titles
    heat = fig.axes[0]
    assert heat.get_xlabel() == "layer" and heat.get_ylabel() == "head"
    assert len(heat.get_xticks()) <= shape[0]


@pytest.mark.parametrize("shape", [(4, 4, 8), (3, 5, 8)], ids=["square", "3x5"])
def test_heatmap_draws_each_head_in_its_own_cell(shape):
    """The drawn image is the [layer, head] tensor with layers along x and heads along y, so image[head, layer]
    equals tensor[layer, head]; a transposed (or flipped) heatmap fails, on a square grid too."""
    edit = make_edit(*shape, seed=3)
    fig = plot_head_heatmap(edit, "norm")
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title().split(" · ")[1].split("\n")[0] for ax in panels] == ["additive", "multiplicative"]
    for ax, kind in zip(panels, ("additive", "multiplicative"), strict=True):
        expected = getattr(edit, kind).detach().norm(dim=-1)  # [layer, head]
        drawn = np.ma.getdata(ax.images[0].get_array())
        assert drawn.shape == (shape[1], shape[0])
        np.testing.assert_allclose(drawn, expected.T.numpy(), rtol=1e-6)
        assert not np.allclose(drawn[: shape[0], : shape[0]].T, drawn[: shape[0], : shape[0]])  # not symmetric


def test_grid_draws_each_runs_heads_in_their_cells():
    sources = _sources((3, 5, 8), 2)
    fig = plot_head_grid(sources, "p_nonzero")
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 4
    for index, ax in enumerate(panels):
        source, kind = sources[index // 2], ("additive", "multiplicative")[index % 2]
        config = source.edit.config
        logits = source.edit.gate_logits(kind).detach()  # [layer, head]
        # P(g != 0) of the Hard Concrete gate: sigmoid(log alpha - beta * log(-gamma / zeta))
        expected = torch.sigmoid(logits - config.beta * np.log(-config.gamma / config.zeta))
        np.testing.assert_allclose(np.ma.getdata(ax.images[0].get_array()), expected.T.numpy(), rtol=1e-5)


def test_grid_size_follows_the_head_grid():
    small = plot_head_grid(_sources(SMOLLM2, 3), "p_nonzero")
    large = plot_head_grid(_sources(LLAMA_8B, 3), "norm")
    assert len(small.axes) == 3 * 2 + 1 and len(large.axes) == 3 * 2 + 2  # norm: one colour bar per kind
    assert large.get_figheight() > small.get_figheight()
    assert large.get_figheight() <= 40 and large.get_figwidth() <= 20


def test_grid_colour_scale_is_shared():
    fig = plot_head_grid(_sources(GPT2, 3), "p_nonzero")
    limits = {image.get_clim() for ax in fig.axes for image in ax.get_images()}
    assert len(limits) == 1


def test_grid_marks_the_same_case_in_every_panel_of_a_kind():
    """Multiplicative: run 0 keeps 3 of 4 heads, run 1 keeps 1; over both runs half are kept, so both panels
    mark their kept heads (●), even run 0 where kept heads are the majority. Additive (3 of 4 kept in each run):
    both mark the one closed head (×)."""
    heads = [{"additive": [(0, 0), (0, 1), (1, 0)], "multiplicative": [(0, 0), (0, 1), (1, 1)]},
             {"additive": [(0, 0), (0, 1), (1, 0)], "multiplicative": [(0, 0)]}]
    sources = [EditSource(f"run{i}", f"run{i}", "m", make_edit(2, 2, 4, open_heads=h)) for i, h in enumerate(heads)]
    fig = plot_head_grid(sources, "p_nonzero")
    marks = {ax.get_title().split("\n")[0]: [len(c.get_offsets()) for c in ax.collections] for ax in fig.axes[:4]}
    assert marks == {"run0 · additive": [1], "run0 · multiplicative": [3], "run1 · additive": [1],
                     "run1 · multiplicative": [1]}
    assert "the rarer case over all panels is marked" in fig.get_suptitle()


def test_no_head_closed_is_said_in_the_title():
    edit = make_edit(*SMOLLM2, open_heads=None)
    fig = plot_head_heatmap(edit, "p_nonzero")
    assert "no head switched off: all 270 heads open" in fig.get_suptitle()
    assert "colour shows P(g≠0)" in fig.get_suptitle()
    assert "additive\nall 270 heads open (no gate closed)" in _titles(fig)
    depth = plot_depth_profile(edit)
    assert "every head open" in _titles(depth)


def test_heatmap_with_unedited_layers_and_one_kind():
    edit = make_edit(*SMOLLM2, layers=tuple(range(10, 30)), multiplicative=False, open_heads={"additive": [(12, 1)]})
    fig = plot_head_heatmap(edit)
    assert "grey = layer not edited" in fig.get_suptitle()
    assert "1 of 180 heads kept" in _titles(fig)


def test_heatmap_rejects_bad_input():
    sources = _sources(GPT2, 2)
    with pytest.raises(ValueError, match="plot_head_grid"):
        plot_head_heatmap(sources)
    with pytest.raises(ValueError, match="unknown colour metric"):
        plot_head_heatmap(sources[0], "bogus")
    with pytest.raises(ValueError, match="epoch-0000"):
        plot_head_heatmap(sources[0], "change")
    with pytest.raises(MixedModelsError, match=r"these runs come from 2 base models \(org/model, other/model\)"):
        plot_head_grid([sources[0], EditSource("x", "x", "other/model", sources[1].edit)])


def test_depth_profile():
    sources = _sources(GPT2, 2)
    profile = depth_profile(sources)
    rows = profile[(profile["run"] == "task0") & (profile["kind"] == "additive")].set_index("layer")
    assert rows.loc[0, "share_selected"] == pytest.approx(1 / 12) and rows.loc[1, "share_selected"] == 0
    assert rows.loc[0, "n_edited"] == 12
    fig = plot_depth_profile(sources)
    assert "2 runs — org/model" in fig.get_suptitle()
    assert len(fig.axes) == 4


def test_overlap_figure_many_runs():
    fig = plot_overlap(_sources(SMOLLM2, 5))
    assert len(fig.axes) == 2 * 2 * 2  # kinds x (Jaccard, Spearman), each with a colour bar
    assert "5 runs" in fig.get_suptitle()


def test_trajectories(tmp_path):
    edit = make_edit(*GPT2, open_heads={"additive": [(0, 0)], "multiplicative": []})
    run = make_run(tmp_path / "run", edit, snapshots=3)
    trajectory = gate_trajectories(run.root)
    assert sorted(trajectory["epoch"].unique()) == [0, 1, 2]
    assert trajectory[trajectory["epoch"] == 0]["selected"].all()  # logits 0 at epoch 0: gate 0.5
    assert trajectory[(trajectory["epoch"] == 2) & (trajectory["kind"] == "additive")]["selected"].sum() == 1
    log = open_heads_log(run.root)
    assert set(log["kind"]) == {"additive", "multiplicative"}
    assert log[log["kind"] == "additive"]["n_open"].iloc[-1] == pytest.approx(1)
    fig = plot_gate_trajectories(run.root, top=3)
    assert "gates over training" in fig.get_suptitle()
    assert "3 heads that changed most" in _titles(fig)


def test_trajectories_without_snapshots(tmp_path):
    with pytest.raises(NoGateSnapshotsError, match="not a bare edit"):
        plot_gate_trajectories(make_edit())
    run = make_run(tmp_path / "run", make_edit(), snapshots=2)
    for snapshot in run.gates_dir.iterdir():
        snapshot.unlink()
    with pytest.raises(NoGateSnapshotsError, match="no epoch-NNNN"):
        gate_trajectories(run.root)


def test_trajectories_say_when_no_gate_closed(tmp_path):
    run = make_run(tmp_path / "run", make_edit(open_heads=None))
    assert "no gate closed at any snapshot" in plot_gate_trajectories(run.root).get_suptitle()


@pytest.mark.parametrize("fmt,magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_save_figure_formats(tmp_path, fmt, magic):
    path = tmp_path / "sub" / f"heat.{fmt}"
    plot_head_heatmap(make_edit(), path=path)
    assert path.read_bytes().startswith(magic)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_save_figure_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match=".png, .svg or .pdf"):
        save_figure(plot_head_heatmap(head_table(make_edit())), tmp_path / "heat.jpg")
