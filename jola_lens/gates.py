"""Hard Concrete gates (Louizos et al. 2018) as the JoLA spec sets them, and the gate-penalty schedules.

All functions act on whole tensors of gate logits (``log_alpha``), e.g. [layers, heads] or [heads].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

SCHEDULES = ("expon", "linear", "cyclic", "perform", "none")


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


def closing_threshold(gamma: float, zeta: float) -> float:
    """The logit at or below which a deterministic gate is exactly 0 (-2.398 for the defaults)."""
    return math.log(-gamma / zeta)


@dataclass
class GateSchedule:
    """lam_t, the mix between the additive (lam_t) and multiplicative (1 - lam_t) gate penalties.

    Advanced once per training step with :meth:`step` (never on evaluation batches).
    - ``expon`` (the paper's): 0.1 * exp(-0.01 t)
    - ``linear``: from 0 to 0.2 over ``total_steps``
    - ``cyclic``: 0.5 + 0.5 sin(2 pi t / 20)
    - ``perform``: starts at 0.1; +0.01 after a step whose loss went down, -0.01 otherwise; clamped to [0, 1]
    - ``none``: the constant ``constant`` (0 switches the additive penalty off)
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
        self._perform_lam = 0.1
        self._last_loss: float | None = None

    @property
    def value(self) -> float:
        t = self.t
        if self.kind == "expon":
            return 0.1 * math.exp(-0.01 * t)
        if self.kind == "linear":
            return 0.2 * min(t, self.total_steps) / self.total_steps
        if self.kind == "cyclic":
            return 0.5 + 0.5 * math.sin(2 * math.pi * t / 20)
        if self.kind == "perform":
            return self._perform_lam
        return self.constant

    def step(self, loss: float | None = None) -> None:
        """Advance one training step; ``perform`` needs the step's loss."""
        if self.kind == "perform":
            if loss is None:
                raise ValueError("the 'perform' gate scheduler needs the step's loss")
            if self._last_loss is not None:
                delta = 0.01 if loss < self._last_loss else -0.01
                self._perform_lam = min(1.0, max(0.0, self._perform_lam + delta))
            self._last_loss = loss
        self.t += 1

    def state_dict(self) -> dict:
        return {"t": self.t, "perform_lam": self._perform_lam, "last_loss": self._last_loss}

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["t"])
        self._perform_lam = float(state["perform_lam"])
        self._last_loss = state["last_loss"]
