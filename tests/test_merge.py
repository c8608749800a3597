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
