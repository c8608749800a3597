"""Jaccard, Spearman and the clustered order, against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from test_analysis_support import make_edit

from jola_lens.analysis import (
    EditSource,
    MixedModelsError,
    cluster_order,
    head_table,
    jaccard,
    overlap_matrices,
    spearman,
)


def _source(label: str, open_heads: dict, model: str = "m") -> EditSource:
    return EditSource(label, label, model, make_edit(open_heads=open_heads))


def test_jaccard_by_hand():
    a = np.zeros((3, 4), bool)
    b = np.zeros((3, 4), bool)
    a[0, 0] = a[0, 1] = a[1, 2] = True
    b[0, 1] = b[1, 2] = b[1, 3] = True
    assert jaccard(a, b) == 2 / 4
    assert jaccard(a, a) == 1.0
    assert math.isnan(jaccard(np.zeros(5, bool), np.zeros(5, bool)))


def test_spearman_by_hand_with_ties_and_nans():
    # ranks y = [1, 2, 3.5, 5, 3.5]; sum dx*dy = 8, sum dx^2 = 10, sum dy^2 = 9.5
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95))
    assert spearman([1, 2, 3, np.nan], [3, 2, 1, 0]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_overlap_matrices_from_edits():
    a = _source("a", {"additive": [(0, 0), (0, 1), (1, 2)]})
    b = _source("b", {"additive": [(0, 1), (1, 2), (1, 3)]})
    c = _source("c", {})
    jac, rho = overlap_matrices([a, b, c], "additive")
    assert list(jac.index) == ["a", "b", "c"]
    assert jac.loc["a", "b"] == jac.loc["b", "a"] == 0.5
    assert jac.loc["a", "c"] == 0.0 and math.isnan(jac.loc["c", "c"])
    assert math.isnan(rho.loc["a", "c"])  # c's P(g != 0) is constant
    # two P(g != 0) levels each, so rho = phi of the 2x2 table: 2 both open, 1 + 1 one open, 8 both closed
    assert rho.loc["a", "b"] == pytest.approx((2 * 8 - 1 * 1) / math.sqrt(3 * 9 * 3 * 9))
    up, down = _source("up", {}), _source("down", {})
    with torch.no_grad():
        up.edit.additive_gate_logits.copy_(torch.arange(12.0).reshape(3, 4) - 6)
        down.edit.additive_gate_logits.copy_(6 - torch.arange(12.0).reshape(3, 4))
    assert overlap_matrices([up, down], "additive")[1].loc["up", "down"] == pytest.approx(-1.0)


def test_overlap_refuses_mixed_models():
    with pytest.raises(MixedModelsError, match=r"2 base models \(m1, m2\); heads of different models do not "):
        overlap_matrices([_source("a", {}, "m1"), _source("b", {}, "m2")])


def test_cluster_order_keeps_similar_runs_together():
    labels = ["a", "c", "b", "d", "e"]
    group = {"a": 0, "b": 0, "c": 1, "d": 1, "e": 2}
    sim = pd.DataFrame([[1.0 if group[x] == group[y] else (0.1 if {group[x], group[y]} != {0, 2} else np.nan)
                         for y in labels] for x in labels], index=labels, columns=labels)
    order = cluster_order(sim)
    assert sorted(order) == sorted(labels)
    assert abs(order.index("a") - order.index("b")) == 1
    assert abs(order.index("c") - order.index("d")) == 1
    assert cluster_order(sim.iloc[:2, :2]) == ["a", "c"]


def test_overlap_matrices_on_table_input():
    table = head_table([_source("a", {"additive": [(0, 0)]}), _source("b", {"additive": [(0, 0)]})])
    jac, _ = overlap_matrices(table, "additive")
    assert jac.to_numpy().tolist() == [[1.0, 1.0], [1.0, 1.0]]
