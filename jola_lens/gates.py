"""Hard Concrete gates (Louizos et al. 2018) as the JoLA spec sets them, and the gate-penalty schedules.

All functions act on whole tensors of gate logits (``log_alpha``), e.g. [layers, heads] or [heads].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor

SCHEDULES = ("expon", "linear", "cyclic", "perform", "none")
PROB_CLAMP = 1e-6
"""P(g != 0) is clamped to [PROB_CLAMP, 1 - PROB_CLAMP] inside the penalty, as in the reference."""
PERFORM_START_LAMBDA = 0.1
PERFORM_START_LOSS = 50.0
"""The reference's ``perform`` scheduler compares the first step's loss with this starting value."""
CYCLIC_START_LAMBDA = 0.1
"""The reference's ``cyclic`` scheduler holds this value before its first step; the sine formula applies from t = 1."""


def sample_gates(
    log_alpha: Float[Tensor, "*heads"], beta: float, gamma: float, zeta: float, eps: float,
    generator: torch.Generator | None = None,
) -> Float[Tensor, "*heads"]:
    """Stochastic training gates: one uniform draw per head, stretched and clamped to [0, 1]."""
    u = torch.rand(log_alpha.shape, generator=generator, device=log_alpha.device, dtype=log_alpha.dtype)
    u = u * (1 - 2 * eps) + eps
    s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / beta)
    return _stretch(s, gamma, zeta)


def deterministic_gates(log_alpha: Float[Tensor, "*heads"], gamma: float, zeta: float) -> Float[Tensor, "*heads"]:
    """Evaluation gates: sigmoid(log_alpha), stretched and clamped; exactly 0 below -log((zeta)/(-gamma))."""
    return _stretch(torch.sigmoid(log_alpha), gamma, zeta)


def _stretch(s: Tensor, gamma: float, zeta: float) -> Tensor:
    return torch.clamp(s * (zeta - gamma) + gamma, 0.0, 1.0)


def prob_nonzero(log_alpha: Float[Tensor, "*heads"], beta: float, gamma: float, zeta: float) -> Float[Tensor, "*heads"]:
    """P(g != 0) = sigmoid(log_alpha - beta * ln(-gamma / zeta)): each head's expected L0 contribution."""
    return torch.sigmoid(log_alpha - beta * math.log(-gamma / zeta))


def expected_l0_penalty(
    prob_nonzero_by_kind: dict[str, Float[Tensor, "layer head"]], lam: float, n_layers: int, n_heads: int,
    eps: float = PROB_CLAMP, masks: dict[str, Bool[Tensor, "layer head"]] | None = None,
) -> Float[Tensor, ""]:
    """The spec's gate penalty, as the reference's ``get_penalty`` computes it:

        [lam * sum_l mean_h P(g_a != 0) + (1 - lam) * sum_l mean_h P(g_m != 0)] / (L * H)

    with each P(g != 0) clamped to [eps, 1 - eps]. ``lam == 0`` switches the whole penalty off (the reference skips
    it then, multiplicative term included), so ``none`` with lam 0, ``linear`` at step 0 and ``cyclic`` where it
    touches 0 add no penalty at all. A kind missing from ``prob_nonzero_by_kind`` (ungated or switched off) adds 0;
    ``masks`` (per kind) leave out heads that a head set excludes from editing.
    """
    weights = {"additive": lam, "multiplicative": 1.0 - lam}
    total = torch.zeros(())
    if lam == 0:
        return total
    for kind, p in prob_nonzero_by_kind.items():
        p = p.clamp(eps, 1 - eps)
        if masks and kind in masks:
            p = p * masks[kind].to(p)
        total = total + weights[kind] * p.mean(dim=1).sum()
    return total / (n_layers * n_heads)


def closing_threshold(gamma: float, zeta: float) -> float:
    """The logit at or below which a deterministic gate is exactly 0 (-2.398 for the defaults)."""
    return math.log(-gamma / zeta)


@dataclass
class GateSchedule:
    """lam_t, the mix between the additive (lam_t) and multiplicative (1 - lam_t) gate penalties.

    Advanced once per training step with :meth:`step` (never on evaluation batches; the reference also advances
    on evaluation batches, a defect the spec excludes). Values at step t, as the reference's schedule classes give them:
    - ``expon`` (the paper's): 0.1 * exp(-0.01 t)
    - ``linear``: 0.2 * t / ``total_steps``, held at 0.2 after the last step (0 at t = 0: no penalty on step 0)
    - ``cyclic``: 0.1 at t = 0, then 0.5 + 0.5 sin(2 pi t / 20) (0 at t = 15, 35, 55, ...: no penalty there)
    - ``perform``: 0.1 at t = 0; after each step +0.01 if its loss is below the previous step's loss (the first step
      compares with 50, so it is 0.11 after a first loss under 50), else -0.01; clamped to [0, 1]
    - ``none``: the constant ``constant`` (0 switches the penalty off)
    A value of exactly 0 switches the whole penalty off (see :func:`expected_l0_penalty`).
    """

    kind: str = "expon"
    total_steps: int = 1
    constant: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown gate scheduler {self.kind!r}; choose one of {SCHEDULES}")
        if self.total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {self.total_steps}")
        self.t = 0
        self._perform_lam = PERFORM_START_LAMBDA
        self._last_loss = PERFORM_START_LOSS

    @property
    def value(self) -> float:
        t = self.t
        if self.kind == "expon":
            return 0.1 * math.exp(-0.01 * t)
        if self.kind == "linear":
            return 0.2 * min(t, self.total_steps) / self.total_steps
        if self.kind == "cyclic":
            return CYCLIC_START_LAMBDA if t == 0 else 0.5 + 0.5 * math.sin(2 * math.pi * t / 20)
        if self.kind == "perform":
            return self._perform_lam
        return self.constant

    def step(self, loss: float | None = None) -> None:
        """Advance one training step; ``perform`` needs the step's loss."""
        if self.kind == "perform":
            if loss is None:
                raise ValueError("the 'perform' gate scheduler needs the step's loss")
            delta = 0.01 if loss < self._last_loss else -0.01
            self._perform_lam = min(1.0, max(0.0, self._perform_lam + delta))
            self._last_loss = float(loss)
        self.t += 1

    def state_dict(self) -> dict:
        return {"t": self.t, "perform_lam": self._perform_lam, "last_loss": self._last_loss}

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["t"])
        self._perform_lam = float(state["perform_lam"])
        self._last_loss = PERFORM_START_LOSS if state["last_loss"] is None else float(state["last_loss"])
