"""Penalty ramp and sparsity target: hand-computed factors, the Lagrangian's value, and a target actually held."""

import pytest
import torch

from jola_lens import JoLAConfig, JoLAEdit
from jola_lens import gates as hc
from jola_lens.training.sparsity import PenaltyRamp, SparsityTarget


def test_penalty_ramp_factors():
    ramp = PenaltyRamp(delay=3, warmup=4)
    assert [ramp.factor(t) for t in range(9)] == [0, 0, 0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [PenaltyRamp(delay=2).factor(t) for t in range(4)] == [0, 0, 1, 1]
    assert PenaltyRamp().factor(0) == 1.0
    with pytest.raises(ValueError, match=r"penalty delay must be an integer >= 0 \(steps\), got -1"):
        PenaltyRamp(delay=-1)


def edit_with_logits(seed=0):
    edit = JoLAEdit(JoLAConfig(n_layers=4, n_heads=5, d_head=3))
    with torch.no_grad():
        edit.additive_gate_logits.copy_(torch.randn(4, 5, generator=torch.Generator().manual_seed(seed)))
        edit.multiplicative_gate_logits.copy_(torch.randn(4, 5, generator=torch.Generator().manual_seed(seed + 1)))
    return edit


def test_lagrangian_value_and_target_warmup_by_hand():
    edit = edit_with_logits()
    target = SparsityTarget(edit, target=6, warmup=10)
    assert [target.target_at(t) for t in (0, 5, 10, 20)] == [20.0, 13.0, 6.0, 6.0]  # before the first loss
    with torch.no_grad():
        target.multipliers.copy_(torch.tensor([[0.5, 0.25], [2.0, 0.1]]))
    c = edit.config
    opened = [hc.prob_nonzero(edit.gate_logits(kind), c.beta, c.gamma, c.zeta).sum().item()
              for kind in ("additive", "multiplicative")]
    k0 = sum(opened) / 2  # the first loss fixes k_0 at the mean expected number of open gates
    k5 = k0 + (6 - k0) * 5 / 10
    total = sum(target.multipliers[row, 0].item() * (o - k5) + target.multipliers[row, 1].item() * (o - k5) ** 2
                for row, o in enumerate(opened))
    assert target.loss(edit, 5).item() == pytest.approx(total / 20, rel=1e-5)
    assert target.start == pytest.approx(k0) and target.target_at(10) == 6.0


def test_target_is_held_and_the_task_decides_which_heads():
    edit = JoLAEdit(JoLAConfig(n_layers=4, n_heads=5, d_head=3, gate_init=2.0))
    target = SparsityTarget(edit, target=5, warmup=50, lr=0.05)
    optimizer = torch.optim.Adam([edit.additive_gate_logits, edit.multiplicative_gate_logits], lr=0.1)
    wanted = torch.zeros(4, 5)
    wanted[0] = 1  # a toy task that rewards opening the heads of layer 0 only
    c = edit.config
    for step in range(300):
        task = -0.05 * sum((hc.prob_nonzero(edit.gate_logits(kind), c.beta, c.gamma, c.zeta) * wanted).sum()
                           for kind in ("additive", "multiplicative"))
        loss = task + target.loss(edit, step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        target.step()
    for kind, open_count in target.expected_open(edit).items():
        assert open_count.item() == pytest.approx(5, abs=0.5), kind
        assert edit.selected_heads()[kind].nonzero()[:, 0].tolist() == [0] * 5


def test_state_round_trip_resumes_the_multipliers():
    edit = edit_with_logits()
    target = SparsityTarget(edit, target=3, lr=0.1)
    for step in range(3):
        target.loss(edit, step).backward()
        target.step()
    clone = SparsityTarget(edit, target=3, lr=0.1)
    clone.load_state(target.state())
    for step in range(3, 5):
        for t in (target, clone):
            t.loss(edit, step).backward()
            t.step()
    assert torch.equal(target.multipliers, clone.multipliers)


def test_a_share_of_the_heads_is_rounded_to_a_count():
    edit = edit_with_logits()  # 20 edited heads
    assert [SparsityTarget(edit, target=share).target for share in (0.3, 0.01, 0.99)] == [6, 1, 20]
    assert SparsityTarget(edit, target=7).target == 7


def test_bad_targets_say_what_is_allowed():
    edit = edit_with_logits()
    with pytest.raises(ValueError, match=r"must be a number of heads in \[1, 20\] \(the edited heads\) or a share "
                                         r"of them in \(0, 1\), got 0"):
        SparsityTarget(edit, target=0)
    with pytest.raises(ValueError, match=r"got 1.5"):
        SparsityTarget(edit, target=1.5)
    with pytest.raises(ValueError, match=r"needs gates: this edit is ungated"):
        SparsityTarget(JoLAEdit(JoLAConfig(n_layers=1, n_heads=2, d_head=2, gated=False)), target=1)
