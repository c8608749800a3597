"""Tidy head tables and [layer, head] tensors from edits, edit folders and run folders."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from test_analysis_support import make_edit, make_run

from jola_lens import atomic
from jola_lens import gates as hc
from jola_lens.analysis import (
    COLUMNS,
    EditSource,
    MixedModelsError,
    head_table,
    head_tensors,
    load_source,
    load_sources,
    selected_mask,
    single_model,
    summary_markdown,
    summary_table,
    to_markdown,
    top_heads,
)
from jola_lens.run_folder import NotARunError

OPEN_HEADS = {"additive": [(0, 1), (2, 3)], "multiplicative": [(1, 0)]}


def test_known_selection_in_table_and_tensors():
    edit = make_edit(open_heads=OPEN_HEADS)
    masks = selected_mask(edit)
    for kind, heads in OPEN_HEADS.items():
        assert sorted(map(tuple, masks[kind].nonzero().tolist())) == sorted(heads)
    table = head_table(edit)
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 2 * 3 * 4
    for kind, heads in OPEN_HEADS.items():
        rows = table[table["kind"] == kind]
        assert sorted(zip(rows.loc[rows["selected"], "layer"], rows.loc[rows["selected"], "head"])) == sorted(heads)
        assert set(rows.loc[rows["selected"], "gate"]) == {1.0}
        assert set(rows.loc[~rows["selected"], "gate"]) == {0.0}
        p_open = 1 / (1 + math.exp(-(5 + 0.33 * math.log(1.1 / 0.1))))
        assert rows.loc[rows["selected"], "p_nonzero"].to_numpy() == pytest.approx(p_open)
    norms = head_tensors(edit, "norm")["additive"]
    assert torch.allclose(norms, edit.additive.detach().norm(dim=-1))
    gates = head_tensors(edit, "gate")
    assert set(gates) == {"additive", "multiplicative"} and gates["additive"].shape == (3, 4)
    wide = table[table["kind"] == "additive"].pivot(index="layer", columns="head", values="norm").to_numpy()
    assert np.allclose(wide, norms.numpy())


def test_unedited_layers_are_nan_and_not_selected():
    edit = make_edit(n_layers=4, layers=(1, 3), open_heads=None)
    gate = head_tensors(edit, "gate")["additive"]
    assert gate.shape == (4, 4)
    assert torch.isnan(gate[[0, 2]]).all() and (gate[[1, 3]] == 1).all()
    assert not selected_mask(edit)["additive"][[0, 2]].any()
    table = head_table(edit)
    skipped = table[table["layer"].isin([0, 2])]
    assert not skipped["edited"].any() and not skipped["selected"].any()
    assert skipped[["gate", "p_nonzero", "norm", "logit"]].isna().all().all()
    assert table.loc[table["edited"], "selected"].all()


def test_change_from_init_uses_the_epoch0_snapshot(tmp_path):
    edit = make_edit(open_heads=OPEN_HEADS)
    (source,) = load_sources(make_run(tmp_path / "run", edit).root)
    table = head_table(source)
    p_init = float(hc.prob_nonzero(torch.tensor(0.0), 0.33, -0.1, 1.1))  # make_run's epoch 0: logits 0
    assert table["init_logit"].eq(0).all()
    assert table["init_p_nonzero"].to_numpy() == pytest.approx(p_init)
    assert np.allclose(table["change"], table["p_nonzero"] - p_init)
    assert head_table(edit)["change"].isna().all()  # a bare edit has no snapshot


def test_labels_from_runs_edit_folders_and_objects(tmp_path):
    run = make_run(tmp_path / "a", make_edit(), task="commonsense/BoolQ", model="org/base")
    unnamed = make_run(tmp_path / "my-run", make_edit(model="edit/model"), task=None, model=None)
    make_edit(model="folder/model").save_pretrained(tmp_path / "saved")
    sources = load_sources([run.root, unnamed.root, tmp_path / "saved", make_edit()])
    assert [(s.label, s.model) for s in sources] == [("commonsense/BoolQ", "org/base"), ("my-run", "edit/model"),
                                                     ("saved", "folder/model"), ("edit", "test/model")]
    assert sources[0].run is not None and sources[2].run is None
    assert load_source(make_edit(), task="ARC-e").label == "ARC-e"
    resolved = make_run(tmp_path / "r", make_edit(), task="arc_e", model=None)
    atomic.write_json(resolved.config, {"task": "arc_e", "task_name": "commonsense/ARC-e", "model": None,
                                        "model_name": "org/resolved"})
    assert (load_source(resolved.root).task, load_source(resolved.root).model) == ("commonsense/ARC-e", "org/resolved")


def test_repeated_task_labels_are_made_unique(tmp_path):
    runs = [make_run(tmp_path / name, make_edit(), task="t").root for name in ("seed1", "seed2")]
    assert [s.label for s in load_sources(runs)] == ["t [seed1]", "t [seed2]"]
    assert [s.label for s in load_sources([runs[0], runs[0]])] == ["t [seed1] #1", "t [seed1] #2"]
    assert set(head_table(runs)["task"]) == {"t"}


def test_not_a_run_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotARunError, match="neither a jola_lens run folder"):
        load_sources(tmp_path / "empty")


def test_single_model_refuses_mixed_models():
    table = head_table([EditSource("a", "a", "m1", make_edit()), EditSource("b", "b", "m2", make_edit())])
    with pytest.raises(MixedModelsError, match="2 base models"):
        single_model(table)
    other_shape = head_table([EditSource("a", "a", "m", make_edit()), EditSource("b", "b", "m", make_edit(n_heads=5))])
    with pytest.raises(MixedModelsError, match="different layer x head grids"):
        single_model(other_shape)


def test_summary_and_top_heads():
    edit = make_edit(open_heads=OPEN_HEADS, d_head=8)
    with torch.no_grad():
        edit.additive_gate_logits[0, 1] = 0.0  # gate 0.5: ranks below (2, 3), still kept
    summary = summary_table(edit).set_index("kind")
    assert summary.loc["additive", ["heads_edited", "heads_kept", "params_used"]].tolist() == [12, 2, 16]
    assert summary.loc["additive", "params_total"] == 12 * 8 + 12
    assert summary.loc["all", "heads_kept"] == 3
    assert summary.loc["all", "share_params_used"] == pytest.approx(3 * 8 / (24 * 9))
    top = top_heads(edit, k=5)
    additive = top[top["kind"] == "additive"]
    assert list(zip(additive["layer"], additive["head"])) == [(2, 3), (0, 1)]
    assert additive["rank"].tolist() == [1, 2]
    assert len(top_heads(edit, k=1)) == 2
    markdown = summary_markdown(edit, k=2)
    assert "2 of 12 heads kept" in markdown and "L2 H3" in markdown


def test_summary_says_when_no_gate_closed():
    assert "No gate closed in any run" in summary_markdown(make_edit(open_heads=None))


def test_to_markdown():
    frame = pd.DataFrame({"a": [1, 2], "b": [0.123456, float("nan")], "c": ["x|y", "z"]})
    assert to_markdown(frame).splitlines() == ["| a | b | c |", "|---|---|---|", "| 1 | 0.123 | x\\|y |",
                                               "| 2 |  | z |"]
