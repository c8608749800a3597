"""Merged weights equal hooks, and merged models save and reload with stock transformers."""

import logging

import pytest
import torch
from conftest import build_tiny_model
from test_backends import ids, strong_edit
from transformers import AutoModelForCausalLM

from jola_lens import merge_edit


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_merged_logits_equal_hooked_logits(arch):
    model = build_tiny_model(arch)
    edit = strong_edit(model)
    with edit.attached(model):
        hooked = model(ids()).logits
    merged = merge_edit(model, edit)
    assert merged is model
    assert not any(module._forward_pre_hooks for module in merged.modules())
    assert relative_error(merged(ids()).logits, hooked) < 1e-5


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_merged_model_reloads_with_stock_transformers(arch, tmp_path):
    model = build_tiny_model(arch)
    edit = strong_edit(model)
    with edit.attached(model):
        hooked = model(ids()).logits
    merge_edit(model, edit).save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert relative_error(reloaded(ids()).logits, hooked) < 1e-5


def test_merge_without_a_bias_switch_warns(caplog):
    model = build_tiny_model("qwen2")
    with caplog.at_level(logging.WARNING):
        merge_edit(model, strong_edit(model))
    assert "no config switch for an attention output bias" in caplog.text


def test_merging_a_bridged_model_returns_a_plain_savable_copy(tiny_tokenizer, tmp_path):
    from jola_lens import boot_bridge

    model = build_tiny_model("llama")
    edit = strong_edit(model)
    with edit.attached(model):
        hooked = model(ids()).logits
    bridge = boot_bridge(model, tiny_tokenizer)
    merged = merge_edit(bridge, edit)
    assert merged is not model
    assert not any(type(m).__module__.startswith("transformer_lens") for m in merged.modules())
    merged.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert relative_error(reloaded(ids()).logits, hooked) < 1e-5


@pytest.mark.parametrize("fields", [{"layers": (1,)}, {"multiplicative": False}, {"additive": False},
                                    {"gated": False}], ids=["layer-subset", "additive-only",
                                                             "multiplicative-only", "ungated"])
@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_merge_of_each_kind_of_edit_equals_its_hooks(arch, fields, tmp_path):
    model = build_tiny_model(arch)
    edit = strong_edit(model, **fields)
    with edit.attached(model):
        hooked = model(ids()).logits
    assert relative_error(hooked, model(ids()).logits) > 1e-3  # the edit does something
    before = {key: value.clone() for key, value in model.state_dict().items()}
    merged = merge_edit(model, edit)
    assert relative_error(merged(ids()).logits, hooked) < 1e-5
    after = merged.state_dict()
    changed = {key for key in before if not torch.equal(after[key], before[key])}
    added = set(after) - set(before)
    # what holds the edit: changed tensors, and added biases that are not zero (the zero q/k/v/o biases the
    # config's attention_bias switch needs on every layer carry nothing)
    touched = changed | {key for key in added if after[key].any()}
    assert {int(key.split(".")[2]) for key in touched} == set(edit.config.edited_layers)  # model.layers.N / h.N
    assert all(key.split(".")[-2] in ("o_proj", "c_proj") for key in touched)
    if not edit.config.additive:  # a pure scaling needs no bias: only weights change, nothing is added
        assert not added and all(key.endswith("weight") for key in changed)
    merged.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert relative_error(reloaded(ids()).logits, hooked) < 1e-5


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_half_precision_forward_on_every_route_and_merge(dtype, tiny_tokenizer):
    import copy

    from nnsight.modeling.transformers import TransformersModel

    from jola_lens import boot_bridge
    from jola_lens.backends import hf as hf_backend
    from jola_lens.backends import nnsight as nn_backend
    from jola_lens.backends import transformer_lens as tl_backend

    reference_model = build_tiny_model("llama")
    model = build_tiny_model("llama").to(dtype)
    edit = strong_edit(reference_model)  # float32 parameters, as training keeps them
    reference = hf_backend.forward(reference_model, edit, ids())
    hooked = hf_backend.forward(model, edit, ids())
    tolerance = 2e-2 if dtype == torch.bfloat16 else 5e-3
    assert hooked.dtype == dtype and relative_error(hooked.float(), reference) < tolerance
    bridge = boot_bridge(build_tiny_model("llama").to(dtype), tiny_tokenizer)
    nn_model = TransformersModel(build_tiny_model("llama").to(dtype), tokenizer=copy.deepcopy(tiny_tokenizer))
    for logits in (tl_backend.forward(bridge, edit, ids()), nn_backend.forward(nn_model, edit, ids())):
        assert logits.dtype == dtype and relative_error(logits.float(), reference) < tolerance
    merged = merge_edit(model, edit)
    assert all(p.dtype == dtype for p in merged.parameters())
    assert relative_error(merged(ids()).logits.float(), reference) < tolerance
    assert relative_error(merged(ids()).logits.float(), hooked.float()) < tolerance
