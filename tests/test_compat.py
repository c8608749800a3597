"""Each private internal of nnsight and TransformerLens that jola_lens touches (all in backends/_compat.py), checked
by name, so that an upgrade that changes one fails here with its name and not somewhere deep in a route."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import build_tiny_model
from nnsight.modeling.transformers import TransformersModel
from test_backends import ids

from jola_lens import boot_bridge
from jola_lens.backends import _compat


@pytest.fixture
def bridge(tiny_tokenizer):
    return boot_bridge(build_tiny_model("llama"), tiny_tokenizer)


@pytest.fixture
def nn_model(tiny_tokenizer):
    return TransformersModel(build_tiny_model("llama"), tokenizer=copy.deepcopy(tiny_tokenizer))


def test_transformer_lens_bridge_original_model(bridge):
    """TransformerBridge.original_model: the HF model a bridge wraps."""
    inner = _compat.hf_model_inside(bridge)
    assert type(inner).__name__ == "LlamaForCausalLM" and inner is bridge.original_model


def test_transformer_lens_linear_bridge_original_component(bridge):
    """LinearBridge.original_component: the nn.Linear a booted bridge wraps in the HF model's module tree."""
    o_proj = bridge.original_model.model.layers[0].self_attn.o_proj
    assert type(o_proj).__module__.startswith("transformer_lens")
    assert isinstance(_compat.wrapped_module(o_proj), torch.nn.Linear)
    linear = torch.nn.Linear(2, 2)
    assert _compat.wrapped_module(linear) is linear


def test_transformer_lens_state_dict_names_original_component(bridge):
    """A bridged HF model's state dict names the wrapped modules '<path>._original_component.<param>'."""
    assert _compat.is_bridged(bridge.original_model) and not _compat.is_bridged(build_tiny_model("llama"))
    raw = bridge.original_model.state_dict()
    assert any("._original_component." in key for key in raw)
    plain = _compat.plain_state_dict(bridge.original_model)
    stock = build_tiny_model("llama").state_dict()  # the same seed: the weights the bridge wraps
    assert set(stock) <= set(plain)
    assert all(torch.equal(plain[key], value) for key, value in stock.items())


def test_transformer_lens_permanent_hook_removal(bridge):
    """HookPoint.add_hook(..., is_permanent=True) returns a handle whose .hook.remove() and HookPoint.fwd_hooks
    jola_lens uses to take one permanent hook off again (reset_hooks keeps permanent hooks)."""
    seen = []
    hook_point = bridge.hook_dict["blocks.0.attn.hook_z"]
    remove = _compat.add_permanent_hook(hook_point, lambda z, hook: seen.append(z.shape) or z)
    bridge.reset_hooks()
    bridge(ids(), return_type="logits")
    assert len(seen) == 1
    remove()
    bridge(ids(), return_type="logits")
    assert len(seen) == 1 and not hook_point.fwd_hooks


def test_transformer_lens_adapter_registration(monkeypatch):
    """TransformerLens 4.3 picks an adapter from architecture_adapter_factory.SUPPORTED_ARCHITECTURES (and
    ArchitectureAdapterFactory._adapters); jola_lens registers a family's adapter in both."""
    from transformer_lens.factories import architecture_adapter_factory as factory
    from transformer_lens.model_bridge.sources._hf_format import determine_architecture_from_hf_config
    from transformer_lens.model_bridge.supported_architectures.llama import LlamaArchitectureAdapter

    monkeypatch.setattr(factory, "SUPPORTED_ARCHITECTURES", dict(factory.SUPPORTED_ARCHITECTURES))
    monkeypatch.setattr(factory.ArchitectureAdapterFactory, "_adapters", dict(factory.ArchitectureAdapterFactory._adapters))
    _compat.register_tl_adapter("JolaCompatForCausalLM", LlamaArchitectureAdapter)
    config = build_tiny_model("llama").config
    config.architectures = ["JolaCompatForCausalLM"]
    config.model_type = "jola_compat"
    assert determine_architecture_from_hf_config(config) == "JolaCompatForCausalLM"
    assert factory.ArchitectureAdapterFactory._adapters["JolaCompatForCausalLM"] is LlamaArchitectureAdapter


def test_nnsight_envoy_module(nn_model):
    """Envoy._module: the HF model an nnsight model wraps."""
    assert _compat.hf_model_inside(nn_model) is nn_model._module


def test_nnsight_stored_edits_are_kept_in_envoy_edits(nn_model):
    """Envoy.edit(inplace=True) appends to Envoy._edits, replayed on every trace; jola_lens removes its own."""
    seen = []

    def body() -> None:
        seen.append(nn_model.model.layers[0].self_attn.o_proj.input.shape)

    remove = _compat.store_nnsight_edit(nn_model, body)
    assert len(nn_model._edits) == 1
    with nn_model.trace(ids()):
        nn_model.output.logits.save()
    remove()
    assert not nn_model._edits and seen


def test_nnsight_every_step_iterator(nn_model):
    """nnsight.intervention.iterator.Iterations()[:] (what tracer.all() returns) and OutOfOrderError."""
    steps = []
    with nn_model.generate(ids(batch=1, pos=4), max_new_tokens=3, do_sample=False, pad_token_id=127):
        o_proj = nn_model.model.layers[0].self_attn.o_proj
        try:
            for _ in _compat.every_step():
                steps.append(o_proj.input.shape[1])
        except _compat.OutOfOrderError:
            pass
    assert steps == [4, 1, 1]  # the prompt, then one new token per step


def test_a_missing_internal_is_named():
    with pytest.raises(_compat.CompatError, match=r"nnsight Envoy\._edits.*backends/_compat\.py"):
        _compat.store_nnsight_edit(object(), lambda: None)
    with pytest.raises(_compat.CompatError, match=r"TransformerLens HookPoint\.add_hook"):
        _compat.add_permanent_hook(object(), lambda z, hook: z)
