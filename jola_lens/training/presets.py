"""Named sets of training settings (``jola-lens train --preset NAME``): flags left at their defaults take the
preset's values, flags given on the command line keep theirs.

- ``target30``: the localization-stability screen's best setting (``analysis/results/localization_stability/``,
  SST-2, 3 seeds, 65 steps): every gate logit starts at -1 (no head starts ahead), gate lr 0.1, and a Lagrangian
  holds the expected number of open gates (the sum of P(g != 0)) at 30% of the edited heads per gate kind, reached
  at step 30 with multipliers at lr 0.1. Accuracy 73.7 +- 2.5% against 71.7 +- 0.6% for the paper's settings, and
  the heads' P(g != 0) rankings agree across seeds beyond chance (RBO 0.33 / 0.32 vs 0.18, p 0.0005), where the
  paper's settings give chance. The expectation is spread over the heads (P(g != 0) about 0.2-0.4 each), so the
  gates kept at evaluation are many more than 30% (additive 199-215 of 270, multiplicative all): read such runs by
  their ranking, not their kept set. A first check on ARC-e (2 seeds) finds the rankings no more alike within
  a task than across SST-2 and ARC-e: what reproduces looks like the model's structure (depth), not the task's.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "target30": {"gate_init": -1.0, "gate_lr": 0.1, "target_heads": 0.3, "target_warmup": 30, "target_lr": 0.1},
}


def apply_preset(name: str | None, settings: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with the preset's values wherever a setting is still at its default."""
    if name is None:
        return settings
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return settings | {key: value for key, value in PRESETS[name].items() if settings[key] == defaults[key]}
