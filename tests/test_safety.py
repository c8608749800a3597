"""An edit never applies twice by accident, and bad input gets a clear error: double attach, double merge,
stacking only when asked, layers and shapes the edit does not fit, damaged and non-finite files, safe merge."""

from __future__ import annotations

import copy
import re

import pytest
import torch
from conftest import build_tiny_model
from nnsight.modeling.transformers import TransformersModel
from safetensors.torch import load_file, save_file
from test_backends import ids, strong_edit
from transformers import AutoModelForCausalLM

from jola_lens import AlreadyAppliedError, EditShapeError, JoLAConfig, JoLAEdit, boot_bridge, merge_edit
from jola_lens.backends import hf as hf_backend
from jola_lens.backends import nnsight as nn_backend
from jola_lens.backends import transformer_lens as tl_backend
from jola_lens.edit import LayerNotEditedError, NonFiniteEditError
from jola_lens.merge import merged_edits
from jola_lens.serialization import CONFIG_NAME, WEIGHTS_NAME, EditFileError

ROUTES = ("hf", "tl", "nnsight")
FORWARD = {"hf": hf_backend.forward, "tl": tl_backend.forward, "nnsight": nn_backend.forward}


def route_model(route: str, hf_model: torch.nn.Module, tokenizer) -> object:
    if route == "hf":
        return hf_model
    if route == "tl":
        return boot_bridge(hf_model, tokenizer)
    return TransformersModel(hf_model, tokenizer=copy.deepcopy(tokenizer))


def logits(route: str, model: object, tokens: torch.Tensor) -> torch.Tensor:
    if route == "hf":
        return model(tokens).logits
    if route == "tl":
        return model(tokens, return_type="logits")
    with model.trace(tokens):
        out = model.output.logits.save()
    return out


def ungated(model: torch.nn.Module, seed: int, **fields) -> JoLAEdit:
    """A strong edit with every gate fixed at 1 (gated=False), so its affine terms are its raw vectors."""
    return strong_edit(model, seed=seed, gated=False, **fields)


# ---- 1. no double application ------------------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES)
def test_second_attach_of_the_same_edit_is_refused(route, tiny_tokenizer):
    hf_model = build_tiny_model("llama")
    model = route_model(route, hf_model, tiny_tokenizer)
    edit = strong_edit(hf_model)
    with edit.attached(model):
        once = logits(route, model, ids())
        for again in (lambda: edit.attach(model), lambda: edit.attach(model, stack=True)):
            with pytest.raises(AlreadyAppliedError, match=r"this JoLA edit is already attached to LlamaForCausalLM "
                                                          r"\(route '(hf|tl|nnsight)'\).*remove it first"):
                again()
        with pytest.raises(AlreadyAppliedError, match="already attached"):
            FORWARD[route](model, edit, ids())
        torch.testing.assert_close(logits(route, model, ids()), once)  # still applied once
    with edit.attached(model):  # detached cleanly: attaches again
        torch.testing.assert_close(logits(route, model, ids()), once)


def test_a_bridge_and_its_hf_model_count_as_one(tiny_tokenizer):
    hf_model = build_tiny_model("llama")
    bridge = boot_bridge(hf_model, tiny_tokenizer)
    edit = strong_edit(hf_model)
    with edit.attached(bridge), pytest.raises(AlreadyAppliedError, match=r"route 'tl'"):
        edit.attach(hf_model)
    nn_model = TransformersModel(hf_model, tokenizer=copy.deepcopy(tiny_tokenizer))
    with edit.attached(hf_model), pytest.raises(AlreadyAppliedError, match=r"route 'hf'"):
        edit.attach(nn_model)


@pytest.mark.parametrize("route", ROUTES)
def test_a_different_edit_stacks_only_when_asked(route, tiny_tokenizer):
    hf_model = build_tiny_model("llama")
    model = route_model(route, hf_model, tiny_tokenizer)
    first, second = ungated(hf_model, seed=1), ungated(hf_model, seed=2)
    # the composition by hand: z -> (1 + m2) * ((1 + m1) * z + a1) + a2
    both = JoLAEdit(first.config).eval()
    with torch.no_grad():
        both.multiplicative.copy_((1 + first.multiplicative) * (1 + second.multiplicative) - 1)
        both.additive.copy_((1 + second.multiplicative) * first.additive + second.additive)
    with both.attached(model):
        expected = logits(route, model, ids())
    with first.attached(model):
        with pytest.raises(AlreadyAppliedError, match=r"another JoLA edit is already attached.*stack=True"):
            second.attach(model)
        with second.attached(model, stack=True):
            stacked = logits(route, model, ids())
    torch.testing.assert_close(stacked, expected, atol=1e-4, rtol=1e-4)


def test_second_merge_of_the_same_edit_is_refused():
    model = build_tiny_model("llama")
    edit = strong_edit(model)
    merged = merge_edit(model, edit)
    weights = merged.model.layers[0].self_attn.o_proj.weight.clone()
    with pytest.raises(AlreadyAppliedError, match=rf"already merged into LlamaForCausalLM \(fingerprint "
                                                  rf"{edit.fingerprint()[:12]}"):
        merge_edit(merged, edit)
    assert torch.equal(merged.model.layers[0].self_attn.o_proj.weight, weights)
    assert [record["fingerprint"] for record in merged_edits(merged)] == [edit.fingerprint()]
    merge_edit(merged, strong_edit(model, seed=5))  # a different edit merges on top
    assert len(merged_edits(merged)) == 2


@pytest.mark.parametrize("route", ROUTES)
def test_merge_record_survives_save_and_reload(route, tmp_path, tiny_tokenizer):
    model = build_tiny_model("llama")
    edit = strong_edit(model)
    merge_edit(model, edit).save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    record = merged_edits(reloaded)[0]
    assert record["fingerprint"] == edit.fingerprint() and record["layers"] == [0, 1]
    assert record["kinds"] == ["additive", "multiplicative"]
    with pytest.raises(AlreadyAppliedError, match="already merged"):
        merge_edit(reloaded, edit)
    edit.save_pretrained(tmp_path / "edit")
    loaded_copy = JoLAEdit.from_pretrained(tmp_path / "edit")  # the same config and tensors: the same edit
    assert loaded_copy.fingerprint() == edit.fingerprint() != strong_edit(model, seed=7).fingerprint()
    target = route_model(route, reloaded, tiny_tokenizer)
    with pytest.raises(AlreadyAppliedError, match=r"already merged into LlamaForCausalLM.*attaching it would apply "
                                                  r"it twice"):
        loaded_copy.attach(target)
    with strong_edit(reloaded, seed=7).attached(target):  # another edit attaches
        pass


def test_merging_an_attached_edit_is_refused():
    model = build_tiny_model("llama")
    edit = strong_edit(model)
    with edit.attached(model), pytest.raises(AlreadyAppliedError, match="attached.*remove the attachment"):
        merge_edit(model, edit)


def test_merging_a_bridge_leaves_the_bridge_unmerged(tiny_tokenizer):
    model = build_tiny_model("llama")
    bridge = boot_bridge(model, tiny_tokenizer)
    edit = strong_edit(model)
    plain = merge_edit(bridge, edit)
    assert merged_edits(plain) and not merged_edits(bridge)
    with edit.attached(bridge):  # the bridge's weights are untouched, so the edit attaches there
        pass


# ---- 2. clear errors ----------------------------------------------------------------------------------
def test_edit_on_a_layer_it_does_not_cover_names_the_edited_layers():
    edit = JoLAEdit(JoLAConfig(n_layers=3, n_heads=4, d_head=5, layers=(0, 2)))
    z = torch.randn(2, 3, 4, 5)
    for call in (lambda: edit(z, 1), lambda: edit.affine_terms(1)):
        with pytest.raises(LayerNotEditedError, match=r"does not edit layer 1; it edits layers \[0, 2\]"):
            call()


@pytest.mark.parametrize("shape", [(2, 3, 5, 5), (2, 3, 4, 6), (20,)])
def test_wrong_z_shape_names_both_shapes(shape):
    edit = JoLAEdit(JoLAConfig(n_layers=3, n_heads=4, d_head=5))
    with pytest.raises(EditShapeError, match=re.escape(f"z of shape [..., heads=4, d_head=5], got {list(shape)}")):
        edit(torch.randn(*shape), 0)


def test_damaged_weights_file_names_the_file(tmp_path):
    edit = strong_edit(build_tiny_model("llama"))
    edit.save_pretrained(tmp_path)
    weights = tmp_path / WEIGHTS_NAME
    for damage in (b"\x03", weights.read_bytes()[:40], b"not a safetensors file at all, just text"):
        weights.write_bytes(damage)
        with pytest.raises(EditFileError, match=rf"{re.escape(str(weights))} is damaged.*save_pretrained"):
            JoLAEdit.from_pretrained(tmp_path)


def test_non_finite_edit_is_refused_by_save(tmp_path):
    edit = strong_edit(build_tiny_model("llama"))
    with torch.no_grad():
        edit.multiplicative[1, 2, 3] = float("nan")
        edit.additive_gate_logits[0, 1] = float("inf")
    with pytest.raises(NonFiniteEditError, match=r"'additive_gate_logits' holds 1 NaN/inf.*\(0, 1\).*"
                                                 r"'multiplicative' holds 1 NaN/inf.*\(1, 2, 3\)"):
        edit.save_pretrained(tmp_path / "edit")
    assert not (tmp_path / "edit" / WEIGHTS_NAME).exists() and not (tmp_path / "edit" / CONFIG_NAME).exists()


def test_non_finite_file_is_refused_by_load(tmp_path):
    edit = strong_edit(build_tiny_model("llama"))
    edit.save_pretrained(tmp_path)
    tensors = load_file(str(tmp_path / WEIGHTS_NAME))
    tensors["additive"][0, 0, 0] = float("-inf")
    save_file(tensors, str(tmp_path / WEIGHTS_NAME), metadata={"format": "jola_lens", "format_version": "1"})
    with pytest.raises(NonFiniteEditError, match=rf"{re.escape(str(tmp_path / WEIGHTS_NAME))}: parameter 'additive' holds 1 NaN/inf"):
        JoLAEdit.from_pretrained(tmp_path)


def test_merge_refuses_non_finite_parameters_unless_told_not_to():
    model = build_tiny_model("llama")
    edit = strong_edit(model)
    with torch.no_grad():
        edit.additive[1, 0, 0] = float("nan")
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(NonFiniteEditError, match=r"refusing to merge: parameter 'additive' holds 1 NaN/inf.*"
                                                 r"safe_merge=False"):
        merge_edit(model, edit)
    assert all(torch.equal(value, model.state_dict()[key]) for key, value in before.items())
    assert not merged_edits(model)
    merged = merge_edit(model, edit, safe_merge=False)
    assert not torch.isfinite(merged.model.layers[1].self_attn.o_proj.bias).all()


def test_merge_refuses_weights_that_overflow_and_leaves_the_model_untouched():
    model = build_tiny_model("llama").to(torch.float16)
    edit = strong_edit(model, layers=(0, 1))
    with torch.no_grad():
        edit.multiplicative_gate_logits.fill_(10.0)
        edit.multiplicative[1].fill_(1e6)  # layer 1's weights overflow float16
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(NonFiniteEditError, match=r"layer 1's merged output projection.*not finite.*float16"):
        merge_edit(model, edit)
    assert all(torch.equal(value, model.state_dict()[key]) for key, value in before.items())
