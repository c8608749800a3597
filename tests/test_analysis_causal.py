"""Causal check statistics: head sets, exact McNemar and sign-flip tests against hand computations and simulations."""

import math

import numpy as np
import pytest
import torch

from jola_lens.analysis.causal import causal_head_sets, causal_table, mcnemar_exact, sign_flip_test


def test_head_sets_take_the_top_bottom_and_seeded_random_heads():
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.5]])
    sets = causal_head_sets(scores, k=2, n_random=2, seed=3)
    assert sets["top"] == ((0, 0), (1, 1))
    assert sets["bottom"] == ((0, 1), (1, 0))
    assert sets == causal_head_sets(scores, k=2, n_random=2, seed=3)
    assert all(len(sets[f"random-{i}"]) == 2 for i in range(2))
    assert causal_head_sets(scores, k=1)["top"] == ((0, 0),)
    with pytest.raises(ValueError, match=r"k must be a number of heads in \[1, 5\] \(the model has 6\), got 6"):
        causal_head_sets(scores, k=6)


def test_mcnemar_exact_by_hand():
    a = {str(i): v for i, v in enumerate([1, 1, 1, 1, 1, 0, 0, 1])}
    b = {str(i): v for i, v in enumerate([0, 0, 0, 0, 1, 0, 1, 1])}
    result = mcnemar_exact(a, b)
    assert (result["only_a"], result["only_b"]) == (4, 1)
    assert result["p"] == pytest.approx(2 * sum(math.comb(5, j) for j in range(2)) / 2 ** 5)  # 0.375
    assert result["acc_a"] == 75.0 and result["acc_b"] == 37.5
    with pytest.raises(ValueError, match=r"a and b were scored on different items \(only in a: \['9'\]"):
        mcnemar_exact(a | {"9": True}, b)


def test_sign_flip_p_values_are_uniform_under_the_null_and_small_for_a_real_effect():
    rng = np.random.default_rng(0)
    p_values = [sign_flip_test(rng.normal(size=40), n_permutations=999, seed=i) for i in range(200)]
    from scipy.stats import kstest

    assert kstest(p_values, "uniform").pvalue > 0.01
    assert sign_flip_test(rng.normal(loc=1.0, size=40)) < 0.001
    exact = [-1.0, 2.0]  # 4 sign patterns, |mean| >= 0.5 in all of them: p = (4 * 10000 / 4 + 1) / 10001 = 1
    assert sign_flip_test(exact) == pytest.approx(1.0)


def test_causal_table_finds_a_planted_effect_and_not_a_missing_one():
    rng = np.random.default_rng(1)
    n = 300
    ids = [str(i) for i in range(n)]
    truth = rng.random(n)
    top = {i: t < 0.75 for i, t in zip(ids, truth)}
    randoms = {f"random-{d}": {i: r < 0.5 for i, r in zip(ids, rng.random(n))} for d in range(3)}
    table, verdict = causal_table({"top": top, **randoms, "zero-shot": {i: False for i in ids}})
    assert verdict.startswith("the selection matters: top-k beats 3 random head sets")
    assert set(table["comparison"]) == {"top vs random-0", "top vs random-1", "top vs random-2", "top vs zero-shot",
                                        "top vs random (mean of 3)"}
    same = {f"random-{d}": {i: r < 0.75 for i, r in zip(ids, rng.random(n))} for d in range(3)}
    _, verdict = causal_table({"top": top, **same})
    assert verdict.startswith("no evidence that the selection matters")
