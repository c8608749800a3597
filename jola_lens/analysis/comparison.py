"""Are the tasks' localizations different beyond seed noise? A permutation test over runs.

For each edit kind and two distances between runs, ``selection`` (1 - Jaccard of the kept heads; two runs that
keep nothing are at 0) and ``ranking`` (1 - RBO_ext of the heads ranked by P(g != 0), see
:mod:`jola_lens.analysis.stability`), the statistic is mean between-task distance - mean within-task distance
over run pairs. Under "the task does not matter" the task labels are exchangeable among runs, so the labels are
shuffled (keeping each task's number of runs): every distinct relabelling when there are at most
``n_permutations``, else ``n_permutations`` random ones. p = share of relabellings with a statistic at least the
observed one (the observed labelling counts among them); ``p_less`` the same for at most the observed one (small when
runs of different tasks are more alike than runs of one task, e.g. because they share a seed). Tasks are the seed groups, so runs of one task under other
settings count as another task.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd

from jola_lens.analysis.groups import SEEDS_ADVICE, SeedGroupError, grouped_table, table_groups
from jola_lens.analysis.stability import ALPHA, N_PERMUTATIONS, RBO_P, rank_starts, rbo_from_starts
from jola_lens.config import EDIT_KINDS

COMPARISON_COLUMNS = ("model", "kind", "distance", "within", "between", "statistic", "p_value", "p_less", "smallest_p",
                      "permutations", "n_runs", "n_tasks", "within_pairs", "verdict")


def run_distances(selection: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """Run x run distance matrices: ``selection`` (1 - Jaccard) and ``ranking`` (1 - RBO_ext of ``scores``)."""
    z = np.asarray(selection, dtype=float)
    inter = z @ z.T
    sizes = z.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = np.where(union > 0, inter / np.where(union > 0, union, 1), 1.0)
    starts = rank_starts(np.asarray(scores, dtype=float))
    m = len(z)
    i, j = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
    rbo = rbo_from_starts(starts[i.ravel()], starts[j.ravel()], RBO_P["head"]).reshape(m, m)
    return {"selection": 1 - jaccard, "ranking": 1 - rbo}


def _statistic(distance: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean between-label minus mean within-label distance for each labelling (rows of ``labels``)."""
    i, j = np.triu_indices(distance.shape[0], k=1)
    same = labels[:, i] == labels[:, j]
    d = distance[i, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        within = (same * d).sum(axis=1) / same.sum(axis=1)
        between = (~same * d).sum(axis=1) / (~same).sum(axis=1)
    return between - within


def _distinct_orders(counts: dict[str, int], length: int) -> list[tuple[str, ...]]:
    """Every distinct sequence with the given label counts (a multiset's permutations, each once)."""
    if length == 0:
        return [()]
    orders = []
    for label, count in counts.items():
        if count:
            counts[label] -= 1
            orders += [(label, *rest) for rest in _distinct_orders(counts, length - 1)]
            counts[label] += 1
    return orders


def _relabellings(labels: np.ndarray, n_permutations: int, seed: int) -> tuple[np.ndarray, str]:
    """All distinct relabellings when there are at most ``n_permutations``, else the observed one followed by
    ``n_permutations`` random ones."""
    counts = Counter(labels.tolist())
    total = math.factorial(len(labels))
    for count in counts.values():
        total //= math.factorial(count)
    if total <= n_permutations:
        return np.array(_distinct_orders(dict(counts), len(labels))), f"all {total} relabellings"
    rng = np.random.default_rng(seed)
    shuffled = np.array([rng.permutation(labels) for _ in range(n_permutations)])
    return np.vstack([labels[None, :], shuffled]), f"{n_permutations} random relabellings"


SECOND_TASK_ADVICE = ("Train a second task with the same settings and seeds (`jola-lens train --task OTHER --seed 1`, "
                      "then `--seed 2`, `--seed 3`) and analyse all runs together: `jola-lens analyze runs/* "
                      "--output DIR`.")


def _check_labels(labels: list[str]) -> None:
    counts = Counter(labels)
    if len(counts) < 2 or max(counts.values()) < 2:
        advice = SECOND_TASK_ADVICE if len(counts) == 1 and max(counts.values()) > 1 else SEEDS_ADVICE
        raise SeedGroupError(
            f"a task comparison needs at least 2 tasks and a task with at least 2 runs (seeds); got "
            f"{', '.join(f'{task}: {n} run(s)' for task, n in counts.items())}. {advice}")


def permutation_test(distance: np.ndarray, labels: list[str], *, n_permutations: int = N_PERMUTATIONS,
                     seed: int = 0) -> dict[str, object]:
    """Test of mean between-task minus within-task ``distance`` (runs x runs) against shuffled ``labels``."""
    _check_labels(labels)
    labels_array = np.array(labels)
    distance = np.asarray(distance, dtype=float)
    if distance.shape != (len(labels), len(labels)):
        raise ValueError(f"the distance matrix is {distance.shape}, the runs {len(labels)}")
    labellings, how = _relabellings(labels_array, n_permutations, seed)
    statistics = _statistic(distance, labellings)
    observed = float(_statistic(distance, labels_array[None, :])[0])
    p = float((statistics >= observed - 1e-12).sum() / len(statistics))
    p_less = float((statistics <= observed + 1e-12).sum() / len(statistics))
    smallest = (float((statistics >= statistics.max() - 1e-12).sum() / len(statistics)) if how.startswith("all")
                else 1 / len(statistics))
    i, j = np.triu_indices(len(labels), k=1)
    same = labels_array[i] == labels_array[j]
    d = distance[i, j]
    return {"within": float(d[same].mean()), "between": float(d[~same].mean()), "statistic": observed,
            "p_value": p, "p_less": p_less, "smallest_p": smallest, "permutations": how, "n_runs": len(labels),
            "n_tasks": len(set(labels)), "within_pairs": int(same.sum())}


def _verdict(result: dict[str, object], distance: str, alpha: float) -> str:
    what = "kept heads" if distance == "selection" else "rankings of heads by P(g≠0)"
    numbers = (f"{distance} distance within a task {result['within']:.2f}, between tasks {result['between']:.2f}, "
               f"p = {result['p_value']:.2g} ({result['permutations']})")
    if result["p_value"] < alpha and result["statistic"] > 0:
        return f"the tasks differ beyond seed noise: runs of one task share their {what} more ({numbers})"
    if result["smallest_p"] >= alpha:
        return (f"cannot tell: with these runs no relabelling can give p < {alpha} (smallest possible p = "
                f"{result['smallest_p']:.2g}); train more seeds per task ({numbers})")
    if result["p_less"] < alpha:
        return (f"no evidence that the tasks differ, and runs of one task are even less alike than runs of different "
                f"tasks (p = {result['p_less']:.2g} for that): what runs of different tasks share here, such as "
                f"their seed, decides the selection more than the task ({numbers})")
    return f"no evidence that the tasks differ: runs of one task are no more alike than runs of different tasks ({numbers})"


def task_comparison(runs: object, *, n_permutations: int = N_PERMUTATIONS, seed: int = 0,
                    alpha: float = ALPHA) -> pd.DataFrame:
    """The permutation test per base model, edit kind and distance: columns :data:`COMPARISON_COLUMNS`.

    ``runs`` as for :func:`~jola_lens.analysis.stability.stability_report`; a model whose runs cannot be compared
    (one task, or one run per task) is left out; if no model can, :class:`SeedGroupError` says what is needed.
    """
    table = grouped_table(runs)
    rows, refusals = [], []
    for model, part in table.groupby("model", sort=False):
        groups = table_groups(part)
        run_group = {run: name for name, members in groups.items() for run in members}
        runs_order = list(run_group)
        labels = [run_group[run] for run in runs_order]
        try:
            _check_labels(labels)
        except SeedGroupError as error:
            refusals.append((model, error))
            continue
        for kind in (k for k in EDIT_KINDS if k in set(part["kind"])):
            heads = part[(part["kind"] == kind) & part["edited"]].sort_values(["layer", "head"], kind="stable")
            z = np.stack([heads.loc[heads["run"] == run, "selected"].to_numpy(bool) for run in runs_order])
            p = np.stack([heads.loc[heads["run"] == run, "p_nonzero"].to_numpy(float) for run in runs_order])
            for distance, matrix in run_distances(z, p).items():
                result = permutation_test(matrix, labels, n_permutations=n_permutations, seed=seed)
                rows.append({"model": model, "kind": kind, "distance": distance, **result,
                             "verdict": _verdict(result, distance, alpha)})
    if not rows:
        if len(refusals) == 1:
            raise refusals[0][1]
        raise SeedGroupError(" ".join(f"{model}: {error}" for model, error in refusals))
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
