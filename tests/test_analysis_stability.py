"""Stability against chance and the task comparison: hand computations, enumeration, simulated selections."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import kstest

from jola_lens.analysis.comparison import permutation_test, run_distances
from jola_lens.analysis.overlap import spearman
from jola_lens.analysis.stability import (
    jaccard_null_mean,
    layer_variance_null_mean,
    mean_pairwise_jaccard,
    mean_pairwise_rbo,
    nogueira_null_mean,
    nogueira_stability,
    random_selections,
    rbo_ext,
    selection_stability,
)

LAYERS = np.repeat(np.arange(30), 9)  # the default model's 30 layers x 9 heads


def test_nogueira_by_hand():
    # p_hat = [1, 2/3, 1/3, 0], k = 2 each: Φ = 1 - (3/2)(1/9) / (1/2 * 1/2) = 1/3; φ_i = [1, 2/3, 1]
    z = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 0, 0]])
    result = nogueira_stability(z)
    assert result["value"] == pytest.approx(1 / 3)
    assert result["variance"] == pytest.approx(4 / 9 * (1 / 81 + 4 / 81 + 1 / 81))
    half = 1.959964 * math.sqrt(8 / 243)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((1 / 3 - half, 1 / 3 + half), rel=1e-6)


def test_identical_selections_give_index_one():
    rng = np.random.default_rng(0)
    row = rng.random(270) < 0.3
    result = nogueira_stability(np.stack([row] * 4))
    assert result["value"] == pytest.approx(1.0)
    assert result["variance"] == pytest.approx(0.0, abs=1e-12)
    assert mean_pairwise_jaccard(np.stack([row] * 4)) == 1.0
    scores = rng.random(270)
    assert mean_pairwise_rbo(np.stack([scores] * 3)) == pytest.approx(1.0)


def test_undefined_when_nothing_or_everything_is_kept():
    assert math.isnan(nogueira_stability(np.ones((3, 5), bool))["value"])
    assert math.isnan(nogueira_stability(np.zeros((3, 5), bool))["value"])
    assert math.isnan(mean_pairwise_jaccard(np.zeros((3, 5), bool)))


def test_null_means_equal_full_enumeration():
    d, sizes = 5, (1, 3)
    subsets = [[np.isin(np.arange(d), c) for c in itertools.combinations(range(d), k)] for k in sizes]
    pairs = [np.stack([a, b]) for a in subsets[0] for b in subsets[1]]
    assert nogueira_null_mean(sizes, d) == pytest.approx(np.mean([nogueira_stability(z)["value"] for z in pairs]))
    # q = 0.2, 0.6: (Σ q(1 - q) / (M q̄(1 - q̄)) - 1) / (M - 1) = (0.40 / 0.48 - 1) / 1
    assert nogueira_null_mean(sizes, d) == pytest.approx(-1 / 6)
    assert jaccard_null_mean(sizes, d) == pytest.approx(np.mean([mean_pairwise_jaccard(z) for z in pairs]))
    assert nogueira_null_mean((2, 2, 2), 6) == 0.0
    layer_of = np.array([0, 0, 1, 1, 1])
    shares = [np.stack([z[:, layer_of == layer].mean(axis=1) for layer in (0, 1)], axis=1) for z in pairs]
    variance = [s.var(axis=0, ddof=1).mean() for s in shares]
    assert layer_variance_null_mean(sizes, layer_of) == pytest.approx(np.mean(variance))


def test_jaccard_chance_levels_quoted_in_issue_14():
    """Two random selections of 131 and 132 of 270 heads overlap at Jaccard 0.322 in expectation (ARC-c)."""
    assert jaccard_null_mean((131, 132), 270) == pytest.approx(0.3225, abs=5e-4)
    draws = random_selections(np.array([131, 132]), 270, 4000, np.random.default_rng(1))
    simulated = np.mean([mean_pairwise_jaccard(z) for z in draws[:1000]])
    assert simulated == pytest.approx(jaccard_null_mean((131, 132), 270), abs=0.003)
    assert (draws.sum(axis=-1) == [131, 132]).all()


def test_rbo_by_hand():
    # S = a b c, T = b a c, p = 0.5: agreements 0, 1, 1 -> 1 * 0.125 + (0 * 0.5 + 1 * 0.25 + 1 * 0.125) = 0.5
    assert rbo_ext([3, 2, 1], [2, 3, 1], p=0.5) == pytest.approx(0.5)
    # reversed: agreements 0, 1/2, 1 -> 0.125 + 0.125 + 0.125
    assert rbo_ext([3, 2, 1], [1, 2, 3], p=0.5) == pytest.approx(0.375)
    # all tied vs a b c: prefixes {abc} vs {a}, {ab}, {abc}: agreements 2/4, 4/5, 1 -> 0.125 + 0.25 + 0.2 + 0.125
    assert rbo_ext([1, 1, 1], [3, 2, 1], p=0.5) == pytest.approx(0.7)
    assert rbo_ext([5, 4, 3, 2, 1], [5, 4, 3, 2, 1], p=0.9) == pytest.approx(1.0)
    # pairs of a, b, c rankings averaged
    scores = np.array([[3, 2, 1], [2, 3, 1], [1, 2, 3]])
    expected = np.mean([rbo_ext(scores[i], scores[j], 0.5) for i, j in ((0, 1), (0, 2), (1, 2))])
    assert mean_pairwise_rbo(scores, p=0.5) == pytest.approx(expected)


def test_jaccard_by_hand():
    z = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]], bool)
    # pairs: 1/3, 0/2, 0/2 (no pair is empty on both sides)
    assert mean_pairwise_jaccard(z) == pytest.approx(1 / 9)


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"need a runs x features selection matrix with at least 2 runs, got shape "
                                         r"\(1, 4\)"):
        nogueira_stability(np.ones((1, 4)))
    with pytest.raises(ValueError, match=r"a selection matrix holds only 0/1 or True/False; threshold P\(g != 0\)"):
        mean_pairwise_jaccard(np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match=r"the RBO persistence p must lie in \(0, 1\), got 1.0"):
        rbo_ext([1, 2], [2, 1], p=1.0)
    with pytest.raises(ValueError, match="rank-biased overlap needs two non-empty score vectors of one length, got 2 "
                                         "and 3"):
        rbo_ext([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="rank-biased overlap needs finite scores"):
        rbo_ext([1, np.nan], [1, 2])
    with pytest.raises(ValueError, match=r"selection \(2, 3\), P\(g != 0\) \(2, 4\) and layers \(3,\) do not match"):
        selection_stability(np.ones((2, 3), bool), np.ones((2, 4)), np.zeros(3))


def test_random_selections_give_index_near_zero_inside_its_interval():
    rng = np.random.default_rng(3)
    z = random_selections(rng.integers(80, 180, size=30), 270, 1, rng)[0]
    result = nogueira_stability(z)
    assert abs(result["value"]) < 0.03
    assert result["ci_low"] < 0 < result["ci_high"]


def test_asymptotic_variance_matches_the_spread_over_repeated_experiments():
    """Another route to the variance: the spread of Φ over 400 independent experiments of 30 runs each."""
    rng = np.random.default_rng(4)
    p_feature = np.r_[np.full(20, 0.8), np.full(80, 0.2)]
    results = [nogueira_stability(rng.random((30, 100)) < p_feature) for _ in range(400)]
    empirical = np.var([r["value"] for r in results], ddof=1)
    assert np.mean([r["variance"] for r in results]) == pytest.approx(empirical, rel=0.2)


def test_p_values_are_uniform_under_random_selections():
    """200 simulated groups of 4 runs that keep random heads: every p-value is uniform (KS test)."""
    rng = np.random.default_rng(5)
    p_values: dict[tuple[str, str], list[float]] = {}
    for draw in range(200):
        sizes = rng.integers(60, 200, size=4)
        z = random_selections(sizes, 270, 1, rng)[0]
        scores = rng.random((4, 270))
        for row in selection_stability(z, scores, LAYERS, n_permutations=199, seed=draw):
            p_values.setdefault((row["level"], row["measure"]), []).append(row["p_value"])
    assert len(p_values) == 7
    for key, values in p_values.items():
        assert kstest(values, "uniform").pvalue > 0.01, (key, np.histogram(values, bins=5, range=(0, 1))[0])


def test_planted_reproducible_heads_are_found():
    rng = np.random.default_rng(6)
    favourite = np.zeros(270, bool)
    favourite[rng.choice(270, 40, replace=False)] = True
    z = rng.random((3, 270)) < np.where(favourite, 0.9, 0.2)  # population Φ = 1 - 0.1496 / 0.2115 = 0.29
    scores = z + rng.normal(0, 0.3, z.shape)
    rows = {(r["level"], r["measure"]): r for r in selection_stability(z, scores, LAYERS, n_permutations=499)}
    assert rows["head", "stability"]["value"] == pytest.approx(0.29, abs=0.06) and rows["head", "stability"]["p_value"] < 0.01
    assert rows["head", "jaccard"]["p_value"] < 0.01 and rows["head", "rbo"]["p_value"] < 0.01
    assert rows["head", "stability"]["null_mean"] == pytest.approx(nogueira_null_mean(z.sum(axis=1), 270))


def _task_runs(rng: np.random.Generator, tasks: int = 3, seeds: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Runs whose kept heads depend on the task: 40 favourite heads per task kept with 0.8, others with 0.1."""
    favourites = [rng.choice(270, 40, replace=False) for _ in range(tasks)]
    z = np.zeros((tasks * seeds, 270), bool)
    for t, heads in enumerate(favourites):
        prob = np.full(270, 0.1)
        prob[heads] = 0.8
        z[t * seeds:(t + 1) * seeds] = rng.random((seeds, 270)) < prob
    return z, z + rng.normal(0, 0.3, z.shape)


def test_planted_task_structure_is_found_and_a_shuffled_one_is_not():
    z, scores = _task_runs(np.random.default_rng(7))
    distances = run_distances(z, scores)
    true_labels = [f"t{i // 4}" for i in range(12)]
    mixed_labels = ["a", "b", "c", "a", "b", "c", "a", "b", "c", "a", "b", "c"]  # every label spans all tasks
    for name, matrix in distances.items():
        found = permutation_test(matrix, true_labels, n_permutations=999)
        assert found["p_value"] < 0.05 and found["statistic"] > 0, name
        assert found["permutations"] == "999 random relabellings" and found["p_value"] == pytest.approx(1 / 1000)
        shuffled = permutation_test(matrix, mixed_labels, n_permutations=999)
        assert shuffled["p_value"] > 0.05, name


def test_permutation_test_enumerates_small_designs_by_hand():
    # runs a1 a2 b1 b2; within pairs (a1, a2) = 0.2 and (b1, b2) = 0.4, between pairs 0.6, 0.8, 0.7, 0.9
    d = np.array([[0, 0.2, 0.6, 0.8], [0.2, 0, 0.7, 0.9], [0.6, 0.7, 0, 0.4], [0.8, 0.9, 0.4, 0]])
    result = permutation_test(d, ["a", "a", "b", "b"])
    assert result["within"] == pytest.approx(0.3) and result["between"] == pytest.approx(0.75)
    assert result["statistic"] == pytest.approx(0.45)
    assert result["permutations"] == "all 6 relabellings"
    assert result["p_value"] == pytest.approx(2 / 6) and result["smallest_p"] == pytest.approx(2 / 6)
    assert result["within_pairs"] == 2 and result["n_tasks"] == 2


def test_permutation_test_needs_two_tasks_and_a_repeated_one():
    with pytest.raises(ValueError, match=r"a task comparison needs at least 2 tasks and a task with at least 2 runs "
                                         r"\(seeds\); got a: 1 run\(s\), b: 1 run\(s\)\. Train each task with at "
                                         r"least 3 seeds"):
        permutation_test(np.zeros((2, 2)), ["a", "b"])
    with pytest.raises(ValueError, match=r"got a: 3 run\(s\)\. Train a second task with the same settings and seeds "
                                         r"\(`jola-lens train --task OTHER --seed 1`"):
        permutation_test(np.zeros((3, 3)), ["a", "a", "a"])
    with pytest.raises(ValueError, match=r"the distance matrix is \(2, 2\), the runs 3"):
        permutation_test(np.zeros((2, 2)), ["a", "a", "b"])


def test_layer_spearman_equals_spearman_of_layer_means():
    """Another route: overlap.spearman of each pair of runs' mean P(g != 0) per layer, averaged over pairs."""
    rng = np.random.default_rng(8)
    layer_of = np.repeat(np.arange(5), 3)
    scores = rng.random((3, 15))
    scores[1, :3] = scores[1, 3:6]  # a tie between layer means 0 and 1 of run 1
    z = scores > 0.5
    rows = {(r["level"], r["measure"]): r for r in selection_stability(z, scores, layer_of, n_permutations=9)}
    means = np.stack([scores[:, layer_of == layer].mean(axis=1) for layer in range(5)], axis=1)
    expected = np.mean([spearman(means[i], means[j]) for i, j in ((0, 1), (0, 2), (1, 2))])
    assert rows["layer", "spearman"]["value"] == pytest.approx(expected)
    shares = np.stack([z[:, layer_of == layer].mean(axis=1) for layer in range(5)], axis=1)
    expected_jaccard = np.mean([np.minimum(shares[i], shares[j]).sum() / np.maximum(shares[i], shares[j]).sum()
                                for i, j in ((0, 1), (0, 2), (1, 2))])
    assert rows["layer", "jaccard"]["value"] == pytest.approx(expected_jaccard)
    variance = shares.var(axis=0, ddof=1).mean()
    assert rows["layer", "stability"]["value"] == pytest.approx(
        1 - variance / layer_variance_null_mean(z.sum(axis=1), layer_of))
