"""Does a head selection matter? Head sets for the causal check, and paired tests of per-item correctness.

The check trains the same task on the consensus top-k heads, on k random heads (several draws) and on the k
lowest-ranked heads, and compares their test accuracy with the full edit and the bare model on the same items:

- two single runs (top-k vs full, bottom-k, zero-shot) by the exact McNemar test: a two-sided binomial test on the
  items where exactly one of the two is right;
- top-k vs the random draws by a paired sign-flip permutation test on d_i = correct_top(i) - mean over draws of
  correct_random(i), which keeps the pairing by item and treats the draws as one reference.

A selection counts as meaningful when top-k beats random-k with p < ``alpha`` (and a higher accuracy).
This module computes; it trains nothing (:mod:`jola_lens.analysis.causal_check` trains and scores the runs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from scipy.stats import binomtest
from torch import Tensor

from jola_lens.heads import HeadSet

ALPHA = 0.05


def causal_head_sets(scores: Float[Tensor, "layer head"], k: int, n_random: int = 3,
                     seed: int = 0) -> dict[str, HeadSet]:
    """``{"top": ..., "bottom": ..., "random-0": ..., ...}``: the k highest- and lowest-scoring heads, and
    ``n_random`` seeded draws of k heads; ties are broken by head order. NaN scores (heads the edits do not
    cover) are no candidates for any set."""
    n_heads = scores.shape[1]
    flat = scores.flatten().double()
    candidates = (~torch.isnan(flat)).nonzero().flatten().tolist()
    total = len(candidates)
    where = (f"the model has {total}" if total == flat.numel()
             else f"the edits cover {total} of the model's {flat.numel()}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < total:
        raise ValueError(f"k must be a number of heads in [1, {total - 1}] ({where}), got {k!r}")
    if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 0:
        raise ValueError(f"n_random must be a number of random head sets >= 0, got {n_random!r}")
    order = sorted(candidates, key=lambda i: (-flat[i].item(), i))

    def heads(indices: Sequence[int]) -> HeadSet:
        return tuple(sorted((i // n_heads, i % n_heads) for i in indices))

    sets = {"top": heads(order[:k]), "bottom": heads(order[-k:])}
    generator = torch.Generator().manual_seed(seed)
    for draw in range(n_random):
        sets[f"random-{draw}"] = heads([candidates[i] for i in torch.randperm(total, generator=generator)[:k]])
    return sets


def _aligned(a: Mapping[str, bool], b: Mapping[str, bool], names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    if set(a) != set(b):
        only_a, only_b = sorted(set(a) - set(b))[:3], sorted(set(b) - set(a))[:3]
        raise ValueError(f"{names[0]} and {names[1]} were scored on different items (only in {names[0]}: {only_a}; "
                         f"only in {names[1]}: {only_b}); score every run on the same test items")
    ids = sorted(a)
    return np.array([bool(a[i]) for i in ids]), np.array([bool(b[i]) for i in ids])


def mcnemar_exact(a: Mapping[str, bool], b: Mapping[str, bool],
                  names: tuple[str, str] = ("a", "b")) -> dict[str, float]:
    """Exact McNemar test of two runs' per-item correctness (dicts item id -> correct)."""
    x, y = _aligned(a, b, names)
    only_a, only_b = int((x & ~y).sum()), int((~x & y).sum())
    p = 1.0 if only_a + only_b == 0 else binomtest(only_a, only_a + only_b, 0.5).pvalue
    return {"acc_a": 100 * x.mean(), "acc_b": 100 * y.mean(), "only_a": only_a, "only_b": only_b, "p": float(p)}


def sign_flip_test(differences: Sequence[float], n_permutations: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of mean(differences) != 0 by random sign flips (the observed mean counts as one draw)."""
    d = np.asarray(differences, dtype=float)
    if d.size == 0:
        raise ValueError("no paired items to test")
    observed = abs(d.mean())
    rng = np.random.default_rng(seed)
    flips = rng.choice([-1.0, 1.0], size=(n_permutations, d.size))
    extreme = int((np.abs((flips * d).mean(axis=1)) >= observed - 1e-12).sum())
    return (extreme + 1) / (n_permutations + 1)


def causal_table(correct: Mapping[str, Mapping[str, bool]], alpha: float = ALPHA) -> tuple[pd.DataFrame, str]:
    """Compare ``correct["top"]`` with every other run and with the random draws as a group.

    ``correct`` maps a run name (``top``, ``bottom``, ``random-<i>``, ``full``, ``zero-shot``) to item id -> correct.
    Returns one row per comparison and a plain-words verdict.
    """
    if "top" not in correct:
        raise ValueError(f"the causal check needs a 'top' run; got {sorted(correct)}")
    rows = []
    for name in sorted(n for n in correct if n != "top"):
        result = mcnemar_exact(correct["top"], correct[name], ("top", name))
        rows.append({"comparison": f"top vs {name}", "test": "exact McNemar", "acc_top": result["acc_a"],
                     "acc_other": result["acc_b"], "diff": result["acc_a"] - result["acc_b"], "p": result["p"]})
    randoms = sorted(n for n in correct if n.startswith("random-"))
    verdict = "no random draws: the check cannot say whether the selection matters"
    if randoms:
        top, _ = _aligned(correct["top"], correct[randoms[0]], ("top", randoms[0]))
        draws = np.stack([_aligned(correct["top"], correct[r], ("top", r))[1] for r in randoms]).astype(float)
        differences = top.astype(float) - draws.mean(axis=0)
        p = sign_flip_test(differences)
        diff = 100 * differences.mean()
        rows.append({"comparison": f"top vs random (mean of {len(randoms)})", "test": "paired sign-flip",
                     "acc_top": 100 * top.mean(), "acc_other": 100 * draws.mean(), "diff": diff, "p": p})
        if p < alpha and diff > 0:
            verdict = (f"the selection matters: top-k beats {len(randoms)} random head sets of the same size by "
                       f"{diff:+.1f} points (paired sign-flip p = {p:.3g})")
        else:
            verdict = (f"no evidence that the selection matters: top-k vs {len(randoms)} random head sets of the same "
                       f"size differ by {diff:+.1f} points (paired sign-flip p = {p:.3g}, needs p < {alpha})")
    return pd.DataFrame(rows), verdict
