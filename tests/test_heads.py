"""Head sets: parsing and errors, and edits restricted to them leaving every other head bit-exactly unedited."""

import copy
import json

import pytest
import torch
from conftest import build_tiny_model
from nnsight.modeling.transformers import TransformersModel

from jola_lens import JoLAConfig, JoLAEdit, boot_bridge, merge_edit
from jola_lens.backends import hf as hf_backend
from jola_lens.backends import nnsight as nnsight_backend
from jola_lens.backends import transformer_lens as tl_backend
from jola_lens.heads import (
    HeadSpecError,
    heads_spec,
    parse_heads,
    read_head_file,
    resolve_heads_argument,
    write_head_file,
)

HEADS = "L0H1,L1H3"


def test_spec_forms_agree():
    mask = torch.zeros(2, 4, dtype=torch.bool)
    mask[0, 1] = mask[1, 3] = True
    expected = ((0, 1), (1, 3))
    assert parse_heads(HEADS, 2, 4) == expected
    assert parse_heads(" l1h3 , L0H1,", 2, 4) == expected
    assert parse_heads([(1, 3), (0, 1), (0, 1)], 2, 4) == expected
    assert parse_heads(["L0H1", "L1H3"], 2, 4) == expected
    assert parse_heads(mask, 2, 4) == expected
    assert parse_heads(mask.int().tolist(), 2, 4) == expected


@pytest.mark.parametrize("spec,message", [
    ("L40H3", r"^L40H3, but the model has 30 layers \(0-29\)$"),
    ("L2H9", r"^L2H9, but the model has 9 heads per layer \(0-8\)$"),
    ("", r"^the head set is empty: name at least one head"),
    ([], r"^the head set is empty"),
    ("L2-H3", r"^cannot read head 'L2-H3': write heads as L<layer>H<head>"),
    (torch.ones(3, 3), r"^a head mask must have shape \[layers, heads\] = \[30, 9\], got \[3, 3\]$"),
])
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(HeadSpecError, match=message):
        parse_heads(spec, 30, 9)


def test_config_checks_kinds_and_layers_and_round_trips():
    config = JoLAConfig(n_layers=2, n_heads=4, d_head=8, heads={"multiplicative": HEADS})
    assert config.heads == {"multiplicative": ((0, 1), (1, 3))}
    assert JoLAConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    every_kind = JoLAConfig(n_layers=2, n_heads=4, d_head=8, heads=HEADS)
    assert set(every_kind.heads) == {"additive", "multiplicative"}
    with pytest.raises(HeadSpecError, match=r"names edit kinds \['additive'\], but this edit has \['multiplicative'\]"):
        JoLAConfig(n_layers=2, n_heads=4, d_head=8, additive=False, heads={"additive": HEADS})
    with pytest.raises(HeadSpecError, match=r"L0H1 lie in layers this edit does not edit \(layers=\[1\]\)"):
        JoLAConfig(n_layers=2, n_heads=4, d_head=8, layers=(1,), heads=HEADS)


def test_head_file_of_another_model_is_refused(tmp_path):
    path = tmp_path / "heads.json"
    write_head_file(path, {"multiplicative": ((0, 1),)}, n_layers=30, n_heads=9, base_model="smollm2")
    assert read_head_file(path, n_layers=30, n_heads=9) == {"multiplicative": ["L0H1"]}
    assert resolve_heads_argument(str(path), n_layers=30, n_heads=9) == {"multiplicative": ["L0H1"]}
    assert resolve_heads_argument("L3H1", n_layers=30, n_heads=9) == "L3H1"
    many = ",".join(f"L{layer}H{head}" for layer in range(30) for head in range(9))  # longer than a file name
    assert resolve_heads_argument(many, n_layers=30, n_heads=9) == many
    with pytest.raises(HeadSpecError, match=r"made for a model with \(layers, heads\) = \(30, 9\) \(base model "
                                             r"'smollm2'\), but this model has \(2, 4\)"):
        read_head_file(path, n_layers=2, n_heads=4)


def test_an_inline_spec_gives_each_edit_kind_its_own_set_and_round_trips():
    sets = {"additive": ((0, 1), (2, 3)), "multiplicative": ((12, 3),)}
    spec = heads_spec(sets)
    assert spec == "additive:L0H1,L2H3;multiplicative:L12H3"
    resolved = resolve_heads_argument(spec, n_layers=30, n_heads=9)
    assert resolved == {"additive": "L0H1,L2H3", "multiplicative": "L12H3"}
    assert JoLAConfig(n_layers=30, n_heads=9, d_head=8, heads=resolved).heads == sets
    assert heads_spec({"additive": ((0, 1),), "multiplicative": ((0, 1),)}) == "L0H1"  # one set: the plain form
    assert resolve_heads_argument(" multiplicative : L1H2 ;", n_layers=30, n_heads=9) == {"multiplicative": " L1H2 "}
    with pytest.raises(HeadSpecError, match=r"^cannot read ':L1H2': write one head set per edit kind as "
                                            r"'additive:L0H1,L2H3;multiplicative:L12H3'$"):
        resolve_heads_argument("additive:L0H1;:L1H2", n_layers=30, n_heads=9)
    with pytest.raises(HeadSpecError, match=r"^the head spec names 'additive' twice"):
        resolve_heads_argument("additive:L0H1;additive:L1H2", n_layers=30, n_heads=9)
    with pytest.raises(HeadSpecError, match=r"names edit kinds \['addtive'\], but this edit has"):
        JoLAConfig(n_layers=30, n_heads=9, d_head=8, heads=resolve_heads_argument("addtive:L0H1", n_layers=30,
                                                                                  n_heads=9))


def masked_and_zeroed(model, gated=True):
    """A strong edit restricted to HEADS, and the same edit unrestricted with its vectors zeroed outside HEADS."""
    masked = JoLAEdit.for_model(model, seed=0, heads=HEADS, gated=gated)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in masked.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (3.0 if "gate" in name else 0.5))
    zeroed = JoLAEdit(masked.config.replace(heads=None))
    zeroed.load_state_dict(masked.state_dict())
    keep = torch.zeros(2, 4, 1)
    keep[0, 1] = keep[1, 3] = 1
    with torch.no_grad():
        zeroed.additive.mul_(keep)
        zeroed.multiplicative.mul_(keep)
    return masked.eval(), zeroed.eval()


def ids():
    return torch.randint(0, 120, (2, 7), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_heads_outside_the_set_are_bit_exactly_unedited_on_every_route(arch, tiny_tokenizer):
    hf_model = build_tiny_model(arch)
    masked, zeroed = masked_and_zeroed(hf_model)
    mask = torch.ones(2, 7, dtype=torch.long)
    bare = hf_model(ids(), attention_mask=mask).logits
    expected = hf_backend.forward(hf_model, zeroed, ids(), mask)
    assert not torch.allclose(expected, bare, atol=1e-3)  # the heads inside the set are edited
    assert torch.equal(hf_backend.forward(hf_model, masked, ids(), mask), expected)
    bridge = boot_bridge(build_tiny_model(arch), tiny_tokenizer)
    assert torch.equal(tl_backend.forward(bridge, masked, ids(), mask), tl_backend.forward(bridge, zeroed, ids(), mask))
    traced = TransformersModel(build_tiny_model(arch), tokenizer=copy.deepcopy(tiny_tokenizer))
    assert torch.equal(nnsight_backend.forward(traced, masked, ids(), mask),
                       nnsight_backend.forward(traced, zeroed, ids(), mask))


def test_training_mode_edit_leaves_other_heads_untouched_and_gets_no_gradient_there():
    model = build_tiny_model("llama")
    masked, _ = masked_and_zeroed(model)
    masked.train()
    z = torch.randn(2, 5, 4, 16)
    out = masked(z, 0)
    assert torch.equal(out[:, :, [0, 2, 3]], z[:, :, [0, 2, 3]])
    assert not torch.equal(out[:, :, 1], z[:, :, 1])
    (masked(z, 0).sum() + masked(z, 1).sum() + masked.penalty(0.1)).backward()
    assert masked.additive.grad[0, [0, 2, 3]].abs().sum() == 0 and masked.additive.grad[0, 1].abs().sum() > 0
    assert masked.multiplicative_gate_logits.grad[0, [0, 2, 3]].abs().sum() == 0


def test_masked_heads_are_never_selected_and_add_no_penalty():
    model = build_tiny_model("llama")
    masked, _ = masked_and_zeroed(model)
    with torch.no_grad():
        masked.additive_gate_logits.fill_(5.0)
        masked.multiplicative_gate_logits.fill_(5.0)
    selected = masked.selected_heads()
    assert selected["additive"].nonzero().tolist() == [[0, 1], [1, 3]]
    p = torch.sigmoid(torch.tensor(5.0) + 0.33 * torch.log(torch.tensor(11.0))).item()
    lam = 0.25
    assert masked.penalty(lam).item() == pytest.approx((lam * 2 * p / 4 + (1 - lam) * 2 * p / 4) / 8, rel=1e-6)


@pytest.mark.parametrize("gated", [True, False])
def test_merge_and_save_load_keep_other_heads_unedited(gated, tmp_path):
    model = build_tiny_model("llama")
    masked, zeroed = masked_and_zeroed(model, gated=gated)
    original = model.model.layers[0].self_attn.o_proj.weight.clone()
    merged = merge_edit(copy.deepcopy(model), masked)
    weight = merged.model.layers[0].self_attn.o_proj.weight
    outside = [c for c in range(64) if not 16 <= c < 32]  # head 1 of layer 0 is columns 16..31
    assert torch.equal(weight[:, outside], original[:, outside])
    assert not torch.equal(weight[:, 16:32], original[:, 16:32])
    reference = merge_edit(copy.deepcopy(model), zeroed)
    for ours, theirs in zip(merged.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(ours, theirs)
    masked.save_pretrained(tmp_path / "edit")
    restored = JoLAEdit.from_pretrained(tmp_path / "edit")
    assert restored.config.heads == masked.config.heads
    z = torch.randn(1, 3, 4, 16)
    assert torch.equal(restored(z, 1), masked(z, 1))
