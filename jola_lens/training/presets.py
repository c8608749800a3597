"""Named sets of training settings (``jola-lens train --preset NAME``): flags left at their defaults take the
preset's values, flags given on the command line keep theirs.

- ``target30``: the localization-stability study's best setting (``analysis/results/localization_stability/``,
  65 steps, 5 seeds each on SST-2, ARC-e and BoolQ): every gate logit starts at -1 (no head starts ahead), gate lr
  0.1, and a Lagrangian holds the expected number of open gates (the sum of P(g != 0)) at 30% of the edited heads
  per gate kind, reached at step 30 with multipliers at lr 0.1. The heads' P(g != 0) rankings agree across seeds
  beyond chance on all three tasks (RBO 0.32-0.37 vs 0.18), where the paper's settings give chance; pruned to the
  target (``--keep_heads 0.3``) the kept sets reproduce too (Nogueira index 0.23-0.32, chance 0). But what
  reproduces follows the seed, not the task: one seed's kept heads on two tasks overlap more (Jaccard 0.53-0.59)
  than two seeds' on one task (0.32-0.35), and the task permutation test finds no task difference. Accuracy:
  SST-2 as the paper's settings, ARC-e and BoolQ about 5 points lower. A tool for comparing runs at one sparsity,
  not yet one for reading a task's heads.
- ``localize``: ``target30`` pruned to its target (``--keep_heads 0.3``), edit vectors from zero (``--init_std 0``)
  and no Hard-Concrete noise in training (``--gate_noise off``): the study's ``no_noise`` setting, and the default of
  the studies in ``analysis/``. The seed had passed its noise stream on to every task (a shared stream,
  ``--gate_noise_seed``, made one task's seeds agree at Jaccard 0.65-0.87); without noise the kept heads reproduce
  across 5 seeds on each of SST-2, ARC-e and BoolQ (Nogueira index 0.71-0.88, chance 0) and follow the task: same
  task, other seed Jaccard 0.70 / 0.78 (additive / multiplicative) against 0.47 / 0.48 for other task, other seed,
  task permutation p 0.0005 (2000 relabellings of 15 runs). Accuracy 74.6 +- 1.1 / 58.4 +- 1.7 / 64.0 +- 4.6% on
  SST-2 / ARC-e / BoolQ (paper settings 74.0 / 61.0 / 60.6). Causal check on SST-2 with each edit kind on its own
  consensus top 27 heads: 69% against 58% for 27 random heads per kind (p 0.046) and 43% for the bottom 27; on
  ARC-e 58% against 50.3% (p 0.019) and 39%; on BoolQ, where the full edit adds 5 points to zero-shot, no
  difference (70% against 66.7%, p 0.21).
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "target30": {"gate_init": -1.0, "gate_lr": 0.1, "target_heads": 0.3, "target_warmup": 30, "target_lr": 0.1},
    "localize": {"gate_init": -1.0, "gate_lr": 0.1, "target_heads": 0.3, "target_warmup": 30, "target_lr": 0.1,
                 "keep_heads": 0.3, "init_std": 0.0, "gate_noise": "off"},
}


def apply_preset(name: str | None, settings: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with the preset's values wherever a setting is still at its default."""
    if name is None:
        return settings
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return settings | {key: value for key, value in PRESETS[name].items() if settings[key] == defaults[key]}
