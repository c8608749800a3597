"""JoLAConfig validation, JoLAEdit parameters, the edit formula, gradients and save/load."""

import json
import math

import pytest
import torch

from jola_lens import EditShapeError, JoLAConfig, JoLAEdit
from jola_lens import gates as hc
from jola_lens.serialization import CONFIG_NAME, WEIGHTS_NAME
from jola_lens.training.config import TrainConfig


@pytest.mark.parametrize(
    "fields,message",
    [
        (dict(n_layers=2, n_heads=4, d_head=-8), "d_head must be a positive integer"),
        (dict(n_layers=0, n_heads=4, d_head=8), "n_layers must be a positive integer"),
        (dict(n_layers=2, n_heads=4, d_head=8, gamma=0.0), "gamma must be < 0"),
        (dict(n_layers=2, n_heads=4, d_head=8, zeta=1.0), "zeta must be > 1"),
        (dict(n_layers=2, n_heads=4, d_head=8, beta=0), "beta"),
        (dict(n_layers=2, n_heads=4, d_head=8, layers=(0, 2)), r"layers \[2\] outside \[0, 2\)"),
        (dict(n_layers=2, n_heads=4, d_head=8, additive=False, multiplicative=False), "at least one"),
        (dict(n_layers=2, n_heads=4, d_head=8, gate_init=float("nan")), "gate_init must be a finite logit"),
    ],
)
def test_config_rejects_impossible_values(fields, message):
    with pytest.raises(ValueError, match=message):
        JoLAConfig(**fields)


def test_parameter_count_of_a_llama_8b_shape():
    edit = JoLAEdit(JoLAConfig(n_layers=32, n_heads=32, d_head=128))
    assert edit.num_trainable_parameters() == 264_192


def test_initialisation_follows_the_spec():
    edit = JoLAEdit(JoLAConfig(n_layers=8, n_heads=31, d_head=64), generator=torch.Generator().manual_seed(0))
    assert edit.additive.std().item() == pytest.approx(1e-3, rel=0.05)
    bound = math.sqrt(6 / 32)
    logits = edit.additive_gate_logits.detach()
    assert logits.abs().max() <= bound and logits.abs().max() > 0.9 * bound


def test_constant_gate_init_starts_every_gate_alike(tmp_path):
    edit = JoLAEdit(JoLAConfig(n_layers=3, n_heads=4, d_head=8, gate_init=1.5), generator=torch.Generator())
    for kind in ("additive", "multiplicative"):
        assert torch.equal(edit.gate_logits(kind), torch.full((3, 4), 1.5))
    edit.save_pretrained(tmp_path)
    assert JoLAEdit.from_pretrained(tmp_path).config.gate_init == 1.5


def random_edit(config: JoLAConfig, seed: int = 0) -> JoLAEdit:
    edit = JoLAEdit(config, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in edit.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (3.0 if "gate" in name else 0.5))
    return edit.eval()


def test_edit_formula_in_eval_mode():
    config = JoLAConfig(n_layers=3, n_heads=4, d_head=5, layers=(0, 2))
    edit = random_edit(config)
    z = torch.randn(2, 6, 4, 5)
    gates = edit.gates()
    row = 1  # layer 2 is the second edited layer
    g_m, g_a = gates["multiplicative"][row], gates["additive"][row]
    expected = (1 + g_m[:, None] * edit.multiplicative[row]) * z + g_a[:, None] * edit.additive[row]
    torch.testing.assert_close(edit(z, 2), expected)
    assert not edit.edits_layer(1)


def test_zero_vectors_and_closed_gates_are_identity():
    edit = random_edit(JoLAConfig(n_layers=2, n_heads=4, d_head=8))
    z = torch.randn(3, 5, 4, 8)
    closed = random_edit(JoLAConfig(n_layers=2, n_heads=4, d_head=8))
    with torch.no_grad():
        closed.additive_gate_logits.fill_(-10)
        closed.multiplicative_gate_logits.fill_(-10)
        edit.additive.zero_()
        edit.multiplicative.zero_()
    assert torch.equal(edit(z, 1), z)
    assert torch.equal(closed(z, 0), z)


def test_ablation_flags_remove_parameters():
    only_add = JoLAEdit(JoLAConfig(2, 3, 4, multiplicative=False))
    assert {n for n, _ in only_add.named_parameters()} == {"additive", "additive_gate_logits"}
    ungated = JoLAEdit(JoLAConfig(2, 3, 4, gated=False))
    assert {n for n, _ in ungated.named_parameters()} == {"additive", "multiplicative"}
    assert torch.equal(ungated.gates()["additive"], torch.ones(2, 3))


def test_training_mode_samples_gates_once_per_call():
    edit = random_edit(JoLAConfig(1, 64, 2)).train()
    with torch.no_grad():
        edit.multiplicative.zero_()
        edit.additive.fill_(1.0)
        edit.additive_gate_logits.zero_()
    z = torch.zeros(4, 3, 64, 2)
    out = edit(z, 0)
    # one gate per head, shared across batch and positions
    assert torch.equal(out, out[:1, :1].expand_as(out))
    assert not torch.equal(edit(z, 0), out)  # a new draw on the next call


def test_training_gates_draw_from_their_own_generator_or_switch_noise_off():
    edit = random_edit(JoLAConfig(2, 16, 3)).train()
    z = torch.randn(2, 3, 16, 3)
    edit.noise_generator = torch.Generator().manual_seed(7)
    torch.manual_seed(0)
    first = edit(z, 1)
    # by hand: one uniform per head from the generator, multiplicative gates first, then additive
    c, reference = edit.config, torch.Generator().manual_seed(7)
    g_m, g_a = (hc.sample_gates(edit.gate_logits(kind)[1].detach(), c.beta, c.gamma, c.zeta, c.eps,
                                generator=reference) for kind in ("multiplicative", "additive"))
    expected = (1 + g_m[:, None] * edit.multiplicative[1]) * z + g_a[:, None] * edit.additive[1]
    torch.testing.assert_close(first, expected)
    edit.noise_generator = torch.Generator().manual_seed(7)
    torch.manual_seed(1)  # the global stream no longer matters
    assert torch.equal(edit(z, 1), first)

    edit.sample_training_gates = False
    eval_out = edit.eval()(z, 1)
    assert torch.equal(edit.train()(z, 1), eval_out)  # noise off: training mode uses the evaluation gates
    edit.sample_training_gates = True
    assert not torch.equal(edit(z, 1), eval_out)


def test_only_edit_parameters_receive_gradients(tiny_model):
    edit = JoLAEdit.for_model(tiny_model, seed=0).train()
    ids = torch.randint(0, 120, (2, 9))
    with edit.attached(tiny_model):
        loss = tiny_model(ids).logits.logsumexp(-1).mean() + edit.penalty(0.1)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in edit.parameters())
    assert all(p.grad is None for p in tiny_model.parameters())


def test_save_load_round_trip_is_exact(tmp_path):
    edit = random_edit(JoLAConfig(3, 4, 8, layers=(1, 2), base_model="tiny", architecture="llama"))
    edit.save_pretrained(tmp_path / "edit")
    assert sorted(p.name for p in (tmp_path / "edit").iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    record = json.loads((tmp_path / "edit" / CONFIG_NAME).read_text())
    assert record["base_model"] == "tiny" and record["layers"] == [1, 2] and "library_version" in record
    loaded = JoLAEdit.from_pretrained(tmp_path / "edit")
    assert loaded.config == edit.config and not loaded.training
    for (name, a), (_, b) in zip(edit.named_parameters(), loaded.named_parameters()):
        assert torch.equal(a, b), name
    z = torch.randn(2, 3, 4, 8)
    assert torch.equal(loaded(z, 2), edit(z, 2))


def test_loading_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="jola_config.json"):
        JoLAEdit.from_pretrained(tmp_path)
    edit = random_edit(JoLAConfig(2, 4, 8))
    edit.save_pretrained(tmp_path)
    (tmp_path / CONFIG_NAME).write_text((tmp_path / CONFIG_NAME).read_text().replace('"d_head": 8', '"d_head": 16'))
    with pytest.raises(ValueError, match="holds tensors"):
        JoLAEdit.from_pretrained(tmp_path)


def test_edit_for_another_model_names_both_shapes(tiny_model):
    edit = JoLAEdit(JoLAConfig(n_layers=30, n_heads=9, d_head=64, base_model="HuggingFaceTB/SmolLM2-135M-Instruct"))
    with pytest.raises(EditShapeError, match=r"\(30, 9, 64\).*\(2, 4, 16\)"):
        edit.attach(tiny_model)


@pytest.mark.parametrize("config_class", [JoLAConfig, TrainConfig])
def test_config_files_with_unknown_fields_are_refused(config_class):
    with pytest.raises(ValueError, match=rf"unknown {config_class.__name__} fields \['bogus'\]; known: \["):
        config_class.from_dict({"bogus": 1})


def test_removed_dead_code_stays_removed():
    import jola_lens
    from jola_lens import merge

    assert not hasattr(JoLAConfig, "to_json") and not hasattr(JoLAEdit, "merge_into")
    assert not hasattr(jola_lens, "save_merged") and not hasattr(merge, "save_merged")


# ---- pruning to the top-k gates --------------------------------------------------------------------------
def test_pruned_keeps_the_heads_with_the_highest_gate_logits_and_leaves_the_rest_unedited():
    edit = JoLAEdit(JoLAConfig(n_layers=2, n_heads=3, d_head=4), generator=torch.Generator().manual_seed(0)).eval()
    with torch.no_grad():
        edit.additive.normal_()
        edit.multiplicative.normal_()
        edit.additive_gate_logits.copy_(torch.tensor([[3.0, -1.0, 2.0], [0.5, 4.0, -2.0]]))
        edit.multiplicative_gate_logits.copy_(torch.tensor([[-3.0, 1.0, 0.0], [2.0, -1.0, 3.0]]))
    pruned = edit.pruned(2)
    assert pruned.config.heads == {"additive": ((0, 0), (1, 1)), "multiplicative": ((1, 0), (1, 2))}
    z = torch.randn(2, 5, 3, 4)
    gates = edit.gates()
    keep = {kind: torch.zeros(2, 3) for kind in gates}
    keep["additive"][0, 0] = keep["additive"][1, 1] = 1
    keep["multiplicative"][1, 0] = keep["multiplicative"][1, 2] = 1
    for layer in (0, 1):  # the edit's formula by hand, with the gates of the other heads at 0
        g_a, g_m = (gates[k][layer] * keep[k][layer] for k in ("additive", "multiplicative"))
        expected = (1 + g_m[:, None] * edit.multiplicative[layer]) * z + g_a[:, None] * edit.additive[layer]
        assert torch.allclose(pruned(z, layer), expected, atol=1e-6)
    assert torch.equal(pruned(z, 0)[:, :, 1], z[:, :, 1])  # head 1 of layer 0 is in neither kept set: bit-exact
    assert all(torch.equal(a, b) for a, b in zip(pruned.parameters(), edit.parameters()))


def test_pruned_takes_a_share_ranks_within_a_head_set_and_is_idempotent():
    edit = JoLAEdit(JoLAConfig(n_layers=4, n_heads=5, d_head=2), generator=torch.Generator().manual_seed(1))
    half = edit.pruned(0.5)
    assert all(len(heads) == 10 for heads in half.config.heads.values())  # half of 20 heads
    assert edit.pruned(10).config.heads == half.config.heads
    assert half.pruned(10).config.heads == half.config.heads  # pruning a pruned edit again changes nothing
    assert half.pruned(3).config.heads == edit.pruned(3).config.heads  # the top 3 lie inside the top 10
    with pytest.raises(ValueError, match=r"keep \(additive heads this edit may edit\) must be a number of heads in "
                                         r"\[1, 10\] \(the edited heads\) or a share of them in \(0, 1\), got 11"):
        half.pruned(11)


def test_pruning_an_ungated_edit_says_what_to_do_instead():
    edit = JoLAEdit(JoLAConfig(n_layers=2, n_heads=3, d_head=4, gated=False))
    with pytest.raises(ValueError, match=r"this edit has no gates \(gated=False\): restrict it with JoLAConfig.heads"):
        edit.pruned(2)
