"""When and how hard the gate penalty acts: a delayed, ramped spec penalty, or a sparsity target.

Why: a gate's task gradient scales with its edit vector, which starts at N(0, init_std = 1e-3). At first the spec's
penalty, equal for every head, dominates, so all gate logits fall together and keep their random initial order: which
heads survive then follows the seed, not the task. Two remedies, both off by default (the paper's protocol):

- :class:`PenaltyRamp` holds the penalty at 0 for ``delay`` steps (the vectors grow and the task gradient starts to
  tell heads apart), then raises it linearly to full strength over ``warmup`` steps.
- :class:`SparsityTarget` replaces the spec's penalty by a Lagrangian that holds the expected number of open gates of
  each gated edit kind at ``target`` heads (as structured pruning with L0 gates does, e.g. CoFi, Xia et al. 2022):

      L = lambda_1 (E[L0] - k_t) + lambda_2 (E[L0] - k_t)^2,   E[L0] = sum over heads of P(g != 0)

  with the multipliers trained by gradient ascent (they grow while the model keeps more than k_t heads open) and the
  target k_t moving linearly from the expected number open at the first step to ``target`` over ``warmup`` steps (a
  start at every head would first push the gates open), so that runs compare at equal sparsity whatever the seed. The Lagrangian is divided by the number of heads, like the spec's penalty.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from jola_lens import gates as hc
from jola_lens.edit import JoLAEdit
from jola_lens.heads import head_count


@dataclass(frozen=True)
class PenaltyRamp:
    """Factor on the spec's penalty at step t: 0 before ``delay``, then linear to 1 over ``warmup`` steps."""

    delay: int = 0
    warmup: int = 0

    def __post_init__(self) -> None:
        for name in ("delay", "warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"penalty {name} must be an integer >= 0 (steps), got {value!r}")

    def factor(self, step: int) -> float:
        if step < self.delay:
            return 0.0
        if self.warmup == 0:
            return 1.0
        return min(1.0, (step - self.delay + 1) / self.warmup)


class SparsityTarget(nn.Module):
    """The Lagrangian that holds ``target`` heads open per gated edit kind; its multipliers have their own optimizer.

    Call :meth:`loss` in the training step (add it to the task loss instead of the spec's penalty), ``backward``
    the total, then :meth:`step` (gradient ascent on the multipliers) after the edit's optimizer step.
    """

    def __init__(self, edit: JoLAEdit, target: int | float, warmup: int = 0, lr: float = 0.01) -> None:
        super().__init__()
        n_heads = len(edit.config.edited_layers) * edit.config.n_heads
        self.kinds = tuple(kind for kind in edit.config.edit_kinds if edit.gate_logits(kind) is not None)
        if not self.kinds:
            raise ValueError("a sparsity target needs gates: this edit is ungated (gated=False)")
        target = head_count(target, n_heads, "the sparsity target")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"the sparsity target's warmup must be an integer >= 0 (steps), got {warmup!r}")
        if not lr > 0:
            raise ValueError(f"the sparsity target's multiplier lr must be > 0, got {lr}")
        self.n_heads, self.target, self.warmup = n_heads, target, warmup
        self.multipliers = nn.Parameter(torch.zeros(len(self.kinds), 2))
        self.start: float | None = None
        """k_0: the expected number of open gates (mean over kinds) when the target first acts."""
        self.optimizer = torch.optim.Adam([self.multipliers], lr=lr, maximize=True)

    def target_at(self, step: int) -> float:
        """k_t: from k_0 (every edited head until :meth:`loss` has set it) down to ``target`` at step ``warmup``."""
        if self.warmup == 0 or step >= self.warmup:
            return float(self.target)
        start = self.n_heads if self.start is None else self.start
        return start + (self.target - start) * step / self.warmup

    def expected_open(self, edit: JoLAEdit) -> dict[str, Tensor]:
        """E[L0] per gated edit kind: the sum of P(g != 0) over its heads (differentiable)."""
        c = edit.config
        out = {}
        for kind in self.kinds:
            p = hc.prob_nonzero(edit.gate_logits(kind), c.beta, c.gamma, c.zeta)
            mask = edit.head_mask(kind)
            out[kind] = (p if mask is None else p * mask.to(p)).sum()
        return out

    def reached(self, edit: JoLAEdit, step: int) -> bool:
        """Whether the warm-up is over and every gated kind keeps the target number of heads at evaluation (gate > 0),
        within max(1, 10%) heads."""
        tolerance = max(1.0, 0.1 * self.target)
        selected = edit.selected_heads()
        return step >= self.warmup and all(abs(int(selected[kind].sum()) - self.target) <= tolerance
                                           for kind in self.kinds)

    def loss(self, edit: JoLAEdit, step: int) -> Tensor:
        expected = self.expected_open(edit)
        if self.start is None:
            self.start = max(float(self.target), sum(v.item() for v in expected.values()) / len(expected))
        k = self.target_at(step)
        total = torch.zeros(())
        for row, open_count in enumerate(expected.values()):
            gap = open_count - k
            total = total + self.multipliers[row, 0] * gap + self.multipliers[row, 1] * gap ** 2
        return total / self.n_heads

    def step(self) -> None:
        """Gradient ascent on the multipliers (after ``backward``), then clear their gradient."""
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def state(self) -> dict:
        """Multipliers and their optimizer state, as plain lists (for the checkpoint's JSON)."""
        optimizer = self.optimizer.state_dict()
        moments = optimizer["state"].get(0, {})
        return {"multipliers": self.multipliers.detach().tolist(), "start": self.start,
                "step": float(moments["step"]) if "step" in moments else 0.0,
                "exp_avg": moments["exp_avg"].tolist() if "exp_avg" in moments else None,
                "exp_avg_sq": moments["exp_avg_sq"].tolist() if "exp_avg_sq" in moments else None}

    def load_state(self, state: dict) -> None:
        with torch.no_grad():
            self.multipliers.copy_(torch.tensor(state["multipliers"]))
        self.start = state.get("start")
        if state.get("exp_avg") is not None:
            optimizer = self.optimizer.state_dict()
            optimizer["state"] = {0: {"step": torch.tensor(state["step"]),
                                      "exp_avg": torch.tensor(state["exp_avg"]),
                                      "exp_avg_sq": torch.tensor(state["exp_avg_sq"])}}
            self.optimizer.load_state_dict(optimizer)
