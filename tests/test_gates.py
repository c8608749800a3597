"""Hard Concrete gates, P(g != 0), the penalty and the schedules against hand-computed values."""

import math

import pytest
import torch

from jola_lens import GateSchedule, JoLAConfig, JoLAEdit
from jola_lens import gates as hc

BETA, GAMMA, ZETA, EPS = 0.33, -0.1, 1.1, 1e-6


def test_deterministic_gate_formula_and_closing_threshold():
    logits = torch.tensor([-5.0, -2.5, -2.39, 0.0, 2.39, 2.5, 5.0])
    expected = torch.clamp(torch.sigmoid(logits) * 1.2 - 0.1, 0, 1)
    assert torch.equal(hc.deterministic_gates(logits, GAMMA, ZETA), expected)
    threshold = hc.closing_threshold(GAMMA, ZETA)
    assert threshold == pytest.approx(-2.3979, abs=1e-4)
    gates = hc.deterministic_gates(torch.tensor([threshold - 1e-4, threshold + 1e-3]), GAMMA, ZETA)
    assert gates[0] == 0 and gates[1] > 0
    assert hc.deterministic_gates(torch.tensor([10.0]), GAMMA, ZETA) == 1


def test_prob_nonzero_closed_form():
    logits = torch.tensor([-3.0, 0.0, 1.5])
    expected = torch.sigmoid(logits + 0.33 * math.log(1.1 / 0.1))
    torch.testing.assert_close(hc.prob_nonzero(logits, BETA, GAMMA, ZETA), expected)
    assert 0.33 * math.log(1.1 / 0.1) == pytest.approx(0.791, abs=1e-3)


@pytest.mark.parametrize("logit", [-2.0, 0.0, 1.0])
def test_sampled_gates_match_closed_form_probability(logit):
    n = 200_000
    generator = torch.Generator().manual_seed(0)
    samples = hc.sample_gates(torch.full((n,), logit), BETA, GAMMA, ZETA, EPS, generator=generator)
    assert samples.min() >= 0 and samples.max() <= 1
    p = hc.prob_nonzero(torch.tensor(logit), BETA, GAMMA, ZETA).item()
    empirical = (samples > 0).float().mean().item()
    assert abs(empirical - p) < 4 * math.sqrt(p * (1 - p) / n)
    # exact zeros and ones both occur: the distribution is stretched and clamped
    assert (samples == 0).any() and (samples == 1).any()


def test_sampling_follows_the_formula_for_a_fixed_uniform(monkeypatch):
    u = torch.tensor([0.2, 0.7])
    monkeypatch.setattr(torch, "rand", lambda *a, **k: (u - EPS) / (1 - 2 * EPS))
    logits = torch.tensor([0.3, -1.0])
    s = torch.sigmoid((torch.log(u) - torch.log(1 - u) + logits) / BETA)
    torch.testing.assert_close(hc.sample_gates(logits, BETA, GAMMA, ZETA, EPS), torch.clamp(s * 1.2 - 0.1, 0, 1))


def test_penalty_matches_hand_computation():
    edit = JoLAEdit(JoLAConfig(n_layers=2, n_heads=3, d_head=4))
    with torch.no_grad():
        edit.additive_gate_logits.copy_(torch.tensor([[0.0, 1.0, -1.0], [2.0, -2.0, 0.5]]))
        edit.multiplicative_gate_logits.copy_(torch.tensor([[-3.0, 0.0, 3.0], [1.0, 1.0, 1.0]]))
    shift = 0.33 * math.log(11.0)
    pa = torch.sigmoid(edit.additive_gate_logits.detach() + shift)
    pm = torch.sigmoid(edit.multiplicative_gate_logits.detach() + shift)
    lam = 0.07
    expected = (lam * pa.mean(1).sum() + (1 - lam) * pm.mean(1).sum()) / (2 * 3)
    torch.testing.assert_close(edit.penalty(lam), expected)


def test_penalty_is_zero_without_gates():
    edit = JoLAEdit(JoLAConfig(n_layers=2, n_heads=3, d_head=4, gated=False))
    assert edit.penalty(0.1).item() == 0


@pytest.mark.parametrize(
    "kind,steps,expected",
    [
        ("expon", [0, 1, 100], [0.1, 0.1 * math.exp(-0.01), 0.1 * math.exp(-1.0)]),
        ("linear", [0, 5, 10, 12], [0.0, 0.1, 0.2, 0.2]),
        ("cyclic", [0, 5, 10, 15], [0.5, 1.0, 0.5, 0.0]),
        ("none", [0, 50], [0.25, 0.25]),
    ],
)
def test_schedules(kind, steps, expected):
    schedule = GateSchedule(kind, total_steps=10, constant=0.25)
    values = {}
    for t in range(max(steps) + 1):
        values[t] = schedule.value
        schedule.step(loss=1.0)
    for t, want in zip(steps, expected):
        assert values[t] == pytest.approx(want, abs=1e-12)


def test_perform_schedule_moves_with_the_loss_and_clamps():
    schedule = GateSchedule("perform")
    assert schedule.value == pytest.approx(0.1)
    for loss in [5.0, 4.0, 3.0]:  # first step sets the reference; two decreases
        schedule.step(loss)
    assert schedule.value == pytest.approx(0.12)
    schedule.step(3.5)
    assert schedule.value == pytest.approx(0.11)
    for _ in range(50):
        schedule.step(10.0)
    assert schedule.value == 0.0
    state = schedule.state_dict()
    clone = GateSchedule("perform")
    clone.load_state_dict(state)
    assert clone.value == schedule.value and clone.t == schedule.t


def test_schedule_errors():
    with pytest.raises(ValueError, match="unknown gate scheduler 'cosine'"):
        GateSchedule("cosine")
    with pytest.raises(ValueError, match="needs the step's loss"):
        GateSchedule("perform").step()
