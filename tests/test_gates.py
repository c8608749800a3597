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


# ---- schedules and penalty, step by step, as the reference's schedule classes and get_penalty run them ----
STEPS = 60
LOSSES = [3.0 - 0.05 * t + (0.4 if t % 7 == 3 else 0.0) for t in range(STEPS)]  # mostly falling, some rises


def _reference_lambdas(kind: str, total_steps: int, constant: float) -> list[float]:
    """lam at each of 60 steps, written out from the reference's formulas (independent of GateSchedule)."""
    lams = []
    perform, last_loss = 0.1, 50.0
    for t in range(STEPS):
        if kind == "expon":
            lams.append(0.1 * math.exp(-0.01 * t))
        elif kind == "linear":
            lams.append(0.2 * min(t, total_steps) / total_steps)
        elif kind == "cyclic":
            lams.append(0.1 if t == 0 else 0.5 + 0.5 * math.sin(2 * math.pi * t / 20))
        elif kind == "perform":
            lams.append(perform)
            perform = min(1.0, max(0.0, perform + (0.01 if LOSSES[t] < last_loss else -0.01)))
            last_loss = LOSSES[t]
        else:
            lams.append(constant)
    return lams


def _hand_penalty(lam: float, logits_a: torch.Tensor, logits_m: torch.Tensor) -> float:
    if lam == 0:
        return 0.0
    shift = 0.33 * math.log(1.1 / 0.1)
    pa = [[min(max(1 / (1 + math.exp(-(x + shift))), 1e-6), 1 - 1e-6) for x in row] for row in logits_a.tolist()]
    pm = [[min(max(1 / (1 + math.exp(-(x + shift))), 1e-6), 1 - 1e-6) for x in row] for row in logits_m.tolist()]
    n_layers, n_heads = len(pa), len(pa[0])
    total = sum(lam * sum(r) / n_heads for r in pa) + sum((1 - lam) * sum(r) / n_heads for r in pm)
    return total / (n_layers * n_heads)


@pytest.fixture
def fixed_edit() -> JoLAEdit:
    edit = JoLAEdit(JoLAConfig(n_layers=2, n_heads=3, d_head=4))
    with torch.no_grad():
        edit.additive_gate_logits.copy_(torch.tensor([[0.0, 1.0, -1.0], [2.0, -2.0, 20.0]]))
        edit.multiplicative_gate_logits.copy_(torch.tensor([[-3.0, 0.0, 3.0], [1.0, -20.0, 1.0]]))
    return edit


@pytest.mark.parametrize("kind,constant", [("expon", 0.0), ("linear", 0.0), ("cyclic", 0.0), ("perform", 0.0),
                                           ("none", 0.25), ("none", 0.0)])
def test_schedule_and_penalty_follow_the_reference_for_60_steps(kind, constant, fixed_edit):
    total_steps = 40
    schedule = GateSchedule(kind, total_steps=total_steps, constant=constant)
    expected = _reference_lambdas(kind, total_steps, constant)
    for t in range(STEPS):
        lam = schedule.value
        assert lam == pytest.approx(expected[t], abs=1e-12), f"{kind} at step {t}"
        penalty = fixed_edit.penalty(lam).item()
        want = _hand_penalty(expected[t], fixed_edit.additive_gate_logits, fixed_edit.multiplicative_gate_logits)
        assert penalty == pytest.approx(want, abs=1e-7), f"{kind} penalty at step {t}"
        schedule.step(loss=LOSSES[t])


def test_reference_values_at_the_steps_that_differed():
    cyclic = [GateSchedule("cyclic")]
    values = []
    for t in range(36):
        values.append(cyclic[0].value)
        cyclic[0].step()
    assert values[0] == 0.1 and values[1] == pytest.approx(0.5 + 0.5 * math.sin(math.pi / 10))
    assert values[15] == pytest.approx(0.0, abs=1e-15) and values[35] == pytest.approx(0.0, abs=1e-15)
    perform = GateSchedule("perform")
    assert perform.value == 0.1
    perform.step(loss=7.0)  # compared with the reference's starting loss of 50
    assert perform.value == pytest.approx(0.11)
    linear = GateSchedule("linear", total_steps=10)
    assert linear.value == 0.0


def test_lambda_zero_switches_the_whole_penalty_off(fixed_edit):
    assert fixed_edit.penalty(0.0).item() == 0.0
    assert fixed_edit.penalty(1e-9).item() > 0  # the multiplicative term is back as soon as lam is not 0


def test_penalty_clamps_the_probabilities_as_the_reference_does():
    probs = {"additive": torch.tensor([[0.0, 1.0]]), "multiplicative": torch.tensor([[0.0, 1.0]])}
    lam = 0.3
    want = (lam * (1e-6 + (1 - 1e-6)) / 2 + (1 - lam) * (1e-6 + (1 - 1e-6)) / 2) / 2
    assert hc.expected_l0_penalty(probs, lam, 1, 2).item() == pytest.approx(want, rel=1e-6)


def test_perform_schedule_moves_with_the_loss_and_clamps():
    schedule = GateSchedule("perform")
    assert schedule.value == pytest.approx(0.1)
    for loss in [5.0, 4.0, 3.0]:  # 5 < 50 (the starting loss), then two decreases
        schedule.step(loss)
    assert schedule.value == pytest.approx(0.13)
    schedule.step(3.5)
    assert schedule.value == pytest.approx(0.12)
    for _ in range(50):
        schedule.step(10.0)
    assert schedule.value == 0.0
    state = schedule.state_dict()
    clone = GateSchedule("perform")
    clone.load_state_dict(state)
    assert clone.value == schedule.value and clone.t == schedule.t
    clone.step(9.0)  # the restored last loss (10) is what the next step compares with
    assert clone.value == pytest.approx(0.01)


def test_schedule_errors():
    with pytest.raises(ValueError, match="unknown gate scheduler 'cosine'"):
        GateSchedule("cosine")
    with pytest.raises(ValueError, match="needs the step's loss"):
        GateSchedule("perform").step()
