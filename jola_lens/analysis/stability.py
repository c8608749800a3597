"""Is a head selection reproducible across seeds, beyond what random selections of the same sizes give?

Per seed group (see :mod:`jola_lens.analysis.groups`) and edit kind, over the runs x heads selection matrix Z
(rows: runs, columns: the edited heads; True where the evaluation gate is > 0):

head level
    ``stability``: the chance-corrected index of Nogueira, Sechidis & Brown (JMLR 2018),
    Φ = 1 - mean_f s_f² / (k̄/d (1 - k̄/d)), s_f² the unbiased variance of column f, k̄ the mean number kept of d;
    1 = every run keeps the same heads, 0 = chance. Its confidence interval is their asymptotic normal one; it is
    too narrow for few runs (simulated coverage of a nominal 95% interval: 28% at 2 runs, 51% at 3, 70% at 5, 83%
    at 10, 93% at 30), so the verdicts rest on the p-values.
    ``jaccard``: mean pairwise Jaccard |A ∩ B| / |A ∪ B| of the kept sets.
    ``rbo``: mean pairwise rank-biased overlap of the runs' rankings of heads by P(g != 0) (Webber, Moffat & Zobel
    2010, the extrapolated RBO_ext at full depth, ties as in their section 4.3), persistence p = 0.98: the mean
    depth a user looks at is 1 / (1 - p) = 50 heads, and the top 50 carry 85% of the weight.
layer level (do runs agree on depth even where single heads do not?)
    ``stability``: the same chance correction for the share of heads kept per layer: 1 - mean over layers of the
    between-run variance of the share / its expectation under random selections of the same sizes (exact,
    hypergeometric); 1 = identical depth profiles, 0 = chance.
    ``jaccard``: mean pairwise weighted Jaccard Σ min / Σ max of the share vectors.
    ``rbo``: mean pairwise RBO of the layers ranked by mean P(g != 0), p = 0.9 (mean depth 10; the top 10
    layers carry 86% of the weight).
    ``spearman``: mean pairwise Spearman ρ of the layers' mean P(g != 0): the whole depth profile, not only its top
    (RBO's weights miss agreement on which layers lose most).

Null: every run keeps the same number of heads, drawn uniformly at random (for ``rbo``: each run's P(g != 0)
values shuffled over the heads). ``null_mean`` is exact where a formula exists (``stability``, head-level
``jaccard``: hypergeometric), else the mean of the random draws; ``p_value`` is one-sided (more agreement than
chance) from ``n_permutations`` random draws, (1 + #draws >= observed) / (1 + draws).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from jaxtyping import Bool, Float, Int
from scipy.stats import hypergeom, norm, rankdata

from jola_lens.analysis.groups import SEEDS_ADVICE, SeedGroupError, grouped_table, require_seeds, table_groups
from jola_lens.config import EDIT_KINDS

RBO_P = {"head": 0.98, "layer": 0.9}
N_PERMUTATIONS = 2000
ALPHA = 0.05
REPORT_COLUMNS = ("group", "task", "model", "kind", "level", "measure", "value", "ci_low", "ci_high", "null_mean",
                  "null_mean_from", "p_value", "n_runs", "n_features", "mean_kept", "definition", "note")


# -- head-level measures (batched over leading axes: the observed matrix is a batch of one) -----------------------

def _nogueira(z: Bool[np.ndarray, "*batch run feature"]) -> Float[np.ndarray, "*batch"]:
    m, d = z.shape[-2:]
    p_hat = z.mean(axis=-2)
    q = z.sum(axis=-1).mean(axis=-1) / d
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = 1 - (m / (m - 1)) * (p_hat * (1 - p_hat)).mean(axis=-1) / (q * (1 - q))
    return np.where((q > 0) & (q < 1), phi, np.nan)


def nogueira_stability(selection: Bool[np.ndarray, "run feature"], alpha: float = ALPHA) -> dict[str, float]:
    """Nogueira et al.'s Φ of a runs x features 0/1 matrix, its estimated variance and (1 - alpha) interval.

    The variance is their asymptotic estimate (4 / M²) Σ_i (φ_i - φ̄)², with
    φ_i = [ (1/d) Σ_f z_if p̂_f - k_i k̄ / d² + Φ/2 (2 k_i k̄ / d² - k_i / d - k̄ / d + 1) ] / (k̄/d (1 - k̄/d)).
    All NaN when every run keeps nothing or everything (the index is undefined).
    """
    z = _check_matrix(selection)
    m, d = z.shape
    phi = float(_nogueira(z))
    if math.isnan(phi):
        return {"value": phi, "variance": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    k = z.sum(axis=1).astype(float)
    k_bar = k.mean()
    p_hat = z.mean(axis=0)
    denominator = (k_bar / d) * (1 - k_bar / d)
    terms = ((z @ p_hat) / d - k * k_bar / d**2
             + phi / 2 * (2 * k * k_bar / d**2 - k / d - k_bar / d + 1)) / denominator
    variance = float(4 / m**2 * ((terms - terms.mean()) ** 2).sum())
    half = float(norm.ppf(1 - alpha / 2)) * math.sqrt(variance)
    return {"value": phi, "variance": variance, "ci_low": phi - half, "ci_high": phi + half}


def nogueira_null_mean(sizes: Int[np.ndarray, " run"], d: int) -> float:
    """E[Φ] when each run keeps ``sizes[r]`` of ``d`` features uniformly at random (exact): with q_r = k_r / d,
    (Σ_r q_r (1 - q_r) / (M q̄ (1 - q̄)) - 1) / (M - 1); 0 when all sizes are equal."""
    q = np.asarray(sizes, dtype=float) / d
    m, q_bar = len(q), q.mean()
    if not 0 < q_bar < 1:
        return math.nan
    return float(((q * (1 - q)).sum() / (m * q_bar * (1 - q_bar)) - 1) / (m - 1))


def _pairs(m: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(m, k=1)


def _mean_jaccard(z: Bool[np.ndarray, "*batch run feature"]) -> Float[np.ndarray, "*batch"]:
    zf = z.astype(float)
    inter = zf @ np.swapaxes(zf, -1, -2)
    sizes = zf.sum(axis=-1)
    union = sizes[..., :, None] + sizes[..., None, :] - inter
    i, j = _pairs(z.shape[-2])
    with np.errstate(divide="ignore", invalid="ignore"):
        values = inter[..., i, j] / union[..., i, j]
    defined = union[..., i, j] > 0
    count = defined.sum(axis=-1)
    total = np.where(defined, values, 0.0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / count, np.nan)


def mean_pairwise_jaccard(selection: Bool[np.ndarray, "run feature"]) -> float:
    """Mean Jaccard over run pairs (pairs where both keep nothing are left out; NaN if all are)."""
    return float(_mean_jaccard(_check_matrix(selection)))


def jaccard_null_mean(sizes: Int[np.ndarray, " run"], d: int) -> float:
    """Mean over run pairs of E[J] for random subsets of sizes k1, k2 of d (exact): the intersection I is
    hypergeometric and J = I / (k1 + k2 - I). Pairs of two empty subsets are left out, as in the observed mean."""
    sizes = [int(k) for k in sizes]
    values = []
    for a, b in zip(*_pairs(len(sizes))):
        k1, k2 = sizes[a], sizes[b]
        if k1 + k2 == 0:
            continue
        i = np.arange(max(0, k1 + k2 - d), min(k1, k2) + 1)
        values.append(float((hypergeom.pmf(i, d, k1, k2) * i / (k1 + k2 - i)).sum()))
    return float(np.mean(values)) if values else math.nan


# -- rank-biased overlap ------------------------------------------------------------------------------------------

def rank_starts(scores: Float[np.ndarray, "*batch feature"]) -> Int[np.ndarray, "*batch feature"]:
    """For each feature, how many features score strictly higher: its tie group starts at that depth (0-based)."""
    scores = np.asarray(scores, dtype=float)
    if np.isnan(scores).any():
        raise ValueError("rank-biased overlap needs finite scores; drop the features that are NaN first")
    return (scores[..., None, :] > scores[..., :, None]).sum(axis=-1)


def rbo_from_starts(s: Int[np.ndarray, "*batch feature"], t: Int[np.ndarray, "*batch feature"],
                     p: float) -> Float[np.ndarray, "*batch"]:
    """RBO_ext of two rankings given as tie-group start depths; agreement at depth d' is
    2 |S:d' ∩ T:d'| / (|S:d'| + |T:d'|), the prefix S:d' holding every feature whose tie group starts before d'."""
    n = s.shape[-1]
    batch = s.shape[:-1]
    rows = int(np.prod(batch)) if batch else 1

    def prefix_sizes(start: np.ndarray) -> np.ndarray:
        flat = start.reshape(rows, n) + n * np.arange(rows)[:, None]
        return np.bincount(flat.ravel(), minlength=rows * n).reshape(rows, n).cumsum(axis=-1)

    overlap = prefix_sizes(np.maximum(s, t))
    agreement = 2 * overlap / (prefix_sizes(s) + prefix_sizes(t))
    depth = np.arange(1, n + 1)
    value = agreement[:, -1] * p**n + (1 - p) / p * (agreement * p**depth).sum(axis=-1)
    return value.reshape(batch)


def rbo_ext(x: Float[np.ndarray, " feature"], y: Float[np.ndarray, " feature"], p: float = RBO_P["head"]) -> float:
    """Extrapolated rank-biased overlap of two score vectors over the same features (higher score = ranked
    first), at full depth k: A_k p^k + (1 - p)/p Σ_{d=1..k} A_d p^d. 1 for identical rankings."""
    if not 0 < p < 1:
        raise ValueError(f"the RBO persistence p must lie in (0, 1), got {p}")
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"rank-biased overlap needs two non-empty score vectors of one length, got {x.size} and "
                         f"{y.size}")
    return float(rbo_from_starts(rank_starts(x), rank_starts(y), p))


def _mean_rbo(starts: Int[np.ndarray, "*batch run feature"], p: float) -> Float[np.ndarray, "*batch"]:
    i, j = _pairs(starts.shape[-2])
    return rbo_from_starts(starts[..., i, :], starts[..., j, :], p).mean(axis=-1)


def mean_pairwise_rbo(scores: Float[np.ndarray, "run feature"], p: float = RBO_P["head"]) -> float:
    """Mean RBO_ext over run pairs of the rankings by ``scores`` (one row per run)."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[0] < 2:
        raise ValueError(f"need a runs x features score matrix with at least 2 runs, got shape {scores.shape}")
    return float(_mean_rbo(rank_starts(scores), p))


# -- layer level ----------------------------------------------------------------------------------------------------

def _layer_shares(z: np.ndarray, layer_of: np.ndarray) -> np.ndarray:
    """Share of each layer's heads kept: (..., run, layer)."""
    layers = np.unique(layer_of)
    onehot = (layer_of[:, None] == layers[None, :]).astype(float)
    return (z.astype(float) @ onehot) / onehot.sum(axis=0)


def _between_run_variance(shares: np.ndarray) -> np.ndarray:
    return shares.var(axis=-2, ddof=1).mean(axis=-1)


def layer_variance_null_mean(sizes: Int[np.ndarray, " run"], layer_of: Int[np.ndarray, " feature"]) -> float:
    """E[mean over layers of the between-run variance of the kept share] under random selections of the given
    sizes: (1/M) Σ_r Var(share_rl) + (1/(M-1)) Σ_r (k_r/d - k̄/d)², Var from the hypergeometric count."""
    k = np.asarray(sizes, dtype=float)
    d = len(layer_of)
    _, n_l = np.unique(layer_of, return_counts=True)
    m = len(k)
    var = k[:, None] * (n_l / d) * (1 - n_l / d) * (d - k[:, None]) / (d - 1) / n_l**2 if d > 1 else 0 * k[:, None]
    mu = k / d
    return float((var.mean(axis=0) + ((mu - mu.mean()) ** 2).sum() / (m - 1)).mean())


def _weighted_jaccard(shares: np.ndarray) -> np.ndarray:
    i, j = _pairs(shares.shape[-2])
    low = np.minimum(shares[..., i, :], shares[..., j, :]).sum(axis=-1)
    high = np.maximum(shares[..., i, :], shares[..., j, :]).sum(axis=-1)
    defined = high > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        total = np.where(defined, low / high, 0.0).sum(axis=-1)
        return np.where(defined.any(axis=-1), total / defined.sum(axis=-1), np.nan)


def _mean_spearman(values: Float[np.ndarray, "*batch run feature"]) -> Float[np.ndarray, "*batch"]:
    """Mean pairwise Spearman ρ (average ranks for ties) of the rows; NaN where a row is constant."""
    ranks = rankdata(values, axis=-1)
    centred = ranks - ranks.mean(axis=-1, keepdims=True)
    norms = np.sqrt((centred**2).sum(axis=-1))
    i, j = _pairs(values.shape[-2])
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = (centred[..., i, :] * centred[..., j, :]).sum(axis=-1) / (norms[..., i] * norms[..., j])
    return rho.mean(axis=-1)


def _layer_means(values: np.ndarray, layer_of: np.ndarray) -> np.ndarray:
    layers = np.unique(layer_of)
    onehot = (layer_of[:, None] == layers[None, :]).astype(float)
    return (values @ onehot) / onehot.sum(axis=0)


# -- null draws -----------------------------------------------------------------------------------------------------

def random_selections(sizes: Int[np.ndarray, " run"], d: int, n: int,
                      rng: np.random.Generator) -> Bool[np.ndarray, "draw run feature"]:
    """``n`` draws of: each run keeps ``sizes[r]`` of ``d`` features uniformly at random."""
    order = rng.random((n, len(sizes), d)).argsort(axis=-1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(d), axis=-1)
    return ranks < np.asarray(sizes)[None, :, None]


def _shuffled(values: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of each row of ``values`` shuffled independently: (draw, run, feature)."""
    order = rng.random((n, *values.shape)).argsort(axis=-1)
    return np.take_along_axis(np.broadcast_to(values, (n, *values.shape)), order, axis=-1)


def _p_value(observed: float, null: np.ndarray) -> float:
    if math.isnan(observed):
        return math.nan
    null = null[np.isfinite(null)]
    return float((1 + (null >= observed - 1e-12).sum()) / (1 + null.size))


def _check_matrix(selection: object) -> np.ndarray:
    z = np.asarray(selection)
    if z.ndim != 2 or z.shape[0] < 2 or z.shape[1] < 1:
        raise ValueError(f"need a runs x features selection matrix with at least 2 runs, got shape {z.shape}")
    if z.dtype != bool:
        if not np.isin(z, (0, 1)).all():
            raise ValueError("a selection matrix holds only 0/1 or True/False; threshold P(g != 0) first")
        z = z.astype(bool)
    return z


# -- the report -----------------------------------------------------------------------------------------------------

def selection_stability(selection: Bool[np.ndarray, "run feature"], p_nonzero: Float[np.ndarray, "run feature"],
                        layer_of: Int[np.ndarray, " feature"], *, n_permutations: int = N_PERMUTATIONS,
                        seed: int = 0, alpha: float = ALPHA) -> list[dict[str, object]]:
    """The seven measures (see the module docstring) of one runs x edited-heads matrix, as report rows without the
    group columns. ``layer_of``: the layer of each feature."""
    z = _check_matrix(selection)
    scores = np.asarray(p_nonzero, dtype=float)
    layer_of = np.asarray(layer_of)
    if scores.shape != z.shape or layer_of.shape != (z.shape[1],):
        raise ValueError(f"selection {z.shape}, P(g != 0) {scores.shape} and layers {layer_of.shape} do not match")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be at least 1, got {n_permutations}")
    m, d = z.shape
    sizes = z.sum(axis=1)
    rng = np.random.default_rng(seed)
    null_z = random_selections(sizes, d, n_permutations, rng)
    null_scores = _shuffled(scores, n_permutations, rng)
    every, none = bool((sizes == d).all()), bool((sizes == 0).all())
    degenerate = ("every run keeps all heads: nothing was selected against, so only rbo (P(g≠0)) says something"
                  if every else "no run keeps any head: only rbo (P(g≠0)) says something" if none else "")
    rows = []

    def add(level: str, measure: str, value: float, null: np.ndarray, null_mean: float | None, definition: str,
            ci: tuple[float, float] = (math.nan, math.nan), note: str = "") -> None:
        exact = null_mean is not None
        rows.append({"level": level, "measure": measure, "value": value, "ci_low": ci[0], "ci_high": ci[1],
                     "null_mean": null_mean if exact else float(np.nanmean(null)) if np.isfinite(null).any()
                     else math.nan,
                     "null_mean_from": "exact" if exact else f"{n_permutations} random draws",
                     "p_value": _p_value(value, null), "n_runs": m, "n_features": d if level == "head"
                     else len(np.unique(layer_of)), "mean_kept": float(sizes.mean()), "definition": definition,
                     "note": note})

    index = nogueira_stability(z, alpha)
    few = (f"with {m} runs the asymptotic interval is too narrow (nominal 95% covered 28% of the time at 2 runs, 70% "
           "at 5, 83% at 10): trust the p-value" if m < 10 and not degenerate else "")
    add("head", "stability", index["value"], _nogueira(null_z), nogueira_null_mean(sizes, d),
        "Nogueira et al. 2018 Φ of the kept heads", (index["ci_low"], index["ci_high"]), degenerate or few)
    add("head", "jaccard", mean_pairwise_jaccard(z), _mean_jaccard(null_z), jaccard_null_mean(sizes, d),
        "mean pairwise Jaccard of the kept heads", note=degenerate)
    starts = rank_starts(scores)
    add("head", "rbo", float(_mean_rbo(starts, RBO_P["head"])), _mean_rbo(_shuffled(starts, n_permutations, rng), RBO_P["head"]), None,
        f"mean pairwise RBO_ext (p={RBO_P['head']}) of the heads ranked by P(g≠0)")
    shares, null_shares = _layer_shares(z, layer_of), _layer_shares(null_z, layer_of)
    expected = layer_variance_null_mean(sizes, layer_of)
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = 1 - float(_between_run_variance(shares)) / expected if expected > 0 else math.nan
        null_index = 1 - _between_run_variance(null_shares) / expected if expected > 0 else np.full(1, np.nan)
    add("layer", "stability", observed, null_index, 0.0 if expected > 0 else math.nan,
        "1 - between-run variance of the share of heads kept per layer / its chance value", note=degenerate)
    add("layer", "jaccard", float(_weighted_jaccard(shares)), _weighted_jaccard(null_shares), None,
        "mean pairwise weighted Jaccard (Σ min / Σ max) of the share of heads kept per layer", note=degenerate)
    layer_scores, null_layer_scores = _layer_means(scores, layer_of), _layer_means(null_scores, layer_of)
    add("layer", "rbo", float(_mean_rbo(rank_starts(layer_scores), RBO_P["layer"])),
        _mean_rbo(rank_starts(null_layer_scores), RBO_P["layer"]), None,
        f"mean pairwise RBO_ext (p={RBO_P['layer']}) of the layers ranked by mean P(g≠0)")
    add("layer", "spearman", float(_mean_spearman(layer_scores)), _mean_spearman(null_layer_scores), None,
        "mean pairwise Spearman ρ of the layers' mean P(g≠0)")
    return rows


def stability_report(runs: object, *, n_permutations: int = N_PERMUTATIONS, seed: int = 0,
                     alpha: float = ALPHA) -> pd.DataFrame:
    """One row per (seed group, edit kind, level, measure): columns :data:`REPORT_COLUMNS`.

    ``runs``: run folders, edits or sources (grouped by task, model and settings), or a head table (grouped by its
    ``group`` column, else by task and model). Groups of one run are left out (logged); if no group has two runs,
    :class:`~jola_lens.analysis.groups.SeedGroupError` says how to get them.
    """
    table = grouped_table(runs)
    groups = table_groups(table)
    usable = {name: members for name, members in groups.items() if len(members) >= 2}
    if not usable:
        name, members = max(groups.items(), key=lambda item: len(item[1]))
        if len(groups) > 1:
            raise SeedGroupError(f"no task has runs of more than one seed (got {len(groups)} tasks, one run each). "
                                 + SEEDS_ADVICE)
        require_seeds(name, members)
    rows = []
    for name, members in usable.items():
        group_rows = table[table["group"] == name]
        for kind in (k for k in EDIT_KINDS if k in set(group_rows["kind"])):
            rows_kind = group_rows[(group_rows["kind"] == kind) & group_rows["edited"]]
            rows_kind = rows_kind.sort_values(["layer", "head"], kind="stable")
            z = np.stack([rows_kind.loc[rows_kind["run"] == run, "selected"].to_numpy(bool) for run in members])
            p = np.stack([rows_kind.loc[rows_kind["run"] == run, "p_nonzero"].to_numpy(float) for run in members])
            layer_of = rows_kind.loc[rows_kind["run"] == members[0], "layer"].to_numpy()
            first = group_rows.iloc[0]
            for row in selection_stability(z, p, layer_of, n_permutations=n_permutations, seed=seed, alpha=alpha):
                rows.append({"group": name, "task": first["task"], "model": first["model"], "kind": kind, **row})
    return pd.DataFrame(rows, columns=list(REPORT_COLUMNS))


def _p(row: object) -> str:
    return "undefined" if math.isnan(row.p_value) else f"p = {row.p_value:.2g}"


def _beyond(rows: list[object], alpha: float) -> bool:
    """Any of ``rows`` below ``alpha`` after a Bonferroni correction over them."""
    return any(not math.isnan(row.p_value) and row.p_value < alpha / len(rows) for row in rows)


def stability_verdicts(report: pd.DataFrame, alpha: float = ALPHA) -> list[str]:
    """One plain-words line per (group, kind) of a :func:`stability_report`: kept heads, ranking, depth. A line
    says "beyond chance" when one of its measures has p < alpha / (number of its measures) (Bonferroni)."""
    lines = []
    for (group, kind), rows in report.groupby(["group", "kind"], sort=False):
        get = {(r.level, r.measure): r for r in rows.itertuples()}
        index, jac, rbo = get["head", "stability"], get["head", "jaccard"], get["head", "rbo"]
        layer, layer_jac, layer_rbo = get["layer", "stability"], get["layer", "jaccard"], get["layer", "rbo"]
        layer_rho = get["layer", "spearman"]
        if math.isnan(index.value):
            kept = f"kept heads: {index.note.split(':')[0]}, so their overlap says nothing" + (
                " (compare kept sets at equal sparsity: `jola-lens prune RUN --keep_heads K` on each run, or train "
                "with --keep_heads K)" if index.note.startswith("every run keeps all heads") else "")
        else:
            narrow = ", too narrow with so few runs" if index.n_runs < 10 else ""
            kept = (f"kept heads: Nogueira Φ {index.value:.2f} ({100 * (1 - alpha):.0f}% CI {index.ci_low:.2f} to "
                    f"{index.ci_high:.2f}{narrow}; chance {index.null_mean:.2f}, {_p(index)}), Jaccard {jac.value:.2f} "
                    f"(chance {jac.null_mean:.2f}, {_p(jac)}): "
                    + ("reproduced beyond chance" if _beyond([index, jac], alpha)
                       else "no more alike than random selections of the same sizes"))
        ranking = (f"ranking by P(g≠0): RBO {rbo.value:.2f} (chance {rbo.null_mean:.2f}, {_p(rbo)}): "
                   + ("the top of the ranking agrees beyond chance" if _beyond([rbo], alpha) else "chance"))
        depth = (f"depth: layer Φ {layer.value:.2f} ({_p(layer)}), weighted Jaccard {layer_jac.value:.2f} (chance "
                 f"{layer_jac.null_mean:.2f}, {_p(layer_jac)}), layer RBO {layer_rbo.value:.2f} (chance "
                 f"{layer_rbo.null_mean:.2f}, {_p(layer_rbo)}), Spearman of mean P(g≠0) {layer_rho.value:.2f} "
                 f"(chance {layer_rho.null_mean:.2f}, {_p(layer_rho)}): "
                 + ("reproduced beyond chance" if _beyond([layer, layer_jac, layer_rbo, layer_rho], alpha)
                    else "chance"))
        lines.append(f"{group}, {kind}, {int(index.n_runs)} seeds — {kept}; {ranking}; {depth}.")
    return lines
