"""One record per model family, used by every route, merge and the logit lens; register_architecture teaches a
family of one's own to all of them."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import build_tiny_model
from nnsight.modeling.transformers import TransformersModel
from test_backends import ids, strong_edit
from torch import nn
from transformers import GenerationMixin, LlamaConfig, LlamaForCausalLM, LlamaModel
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.models.llama.modeling_llama import LlamaPreTrainedModel
from transformers.pytorch_utils import Conv1D

from jola_lens import (
    Architecture,
    JoLAEdit,
    UnsupportedModelError,
    boot_bridge,
    find_head_sites,
    merge_edit,
    register_architecture,
)
from jola_lens import architectures as arch_module
from jola_lens.analysis import additive_logit_lens
from jola_lens.architectures import ARCHITECTURES, architecture_of, out_in_weight
from jola_lens.backends import hf as hf_backend
from jola_lens.backends import nnsight as nn_backend
from jola_lens.backends import transformer_lens as tl_backend

FAMILY = "jola_test_family"


# ---- a model family of our own: a Llama decoder under other names (backbone.*, head) ---------------------
class FamilyConfig(LlamaConfig):
    model_type = FAMILY


class FamilyForCausalLM(LlamaPreTrainedModel, GenerationMixin):
    config_class = FamilyConfig
    base_model_prefix = "backbone"

    def __init__(self, config: FamilyConfig) -> None:
        super().__init__(config)
        self.backbone = LlamaModel(config)
        self.head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.backbone.embed_tokens

    def get_output_embeddings(self) -> nn.Module:
        return self.head

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, use_cache=None, **kwargs) -> CausalLMOutputWithPast:
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                            past_key_values=past_key_values, inputs_embeds=inputs_embeds, use_cache=use_cache,
                            **kwargs)
        return CausalLMOutputWithPast(logits=self.head(out.last_hidden_state), past_key_values=out.past_key_values)


def family_adapter():
    """A TransformerLens adapter for the family: Llama's, with the family's module names."""
    from transformer_lens.model_bridge.supported_architectures.llama import LlamaArchitectureAdapter

    class FamilyAdapter(LlamaArchitectureAdapter):
        def __init__(self, cfg) -> None:
            super().__init__(cfg)
            for component in self.component_mapping.values():
                component.name = component.name.replace("model.", "backbone.").replace("lm_head", "head")

    return FamilyAdapter


def family_and_llama() -> tuple[FamilyForCausalLM, LlamaForCausalLM]:
    """A family model and a stock Llama holding the same weights (the reference for every route)."""
    torch.manual_seed(0)
    config = FamilyConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    config.architectures = ["FamilyForCausalLM"]
    family = FamilyForCausalLM(config).eval().requires_grad_(False)
    with torch.no_grad():
        family.backbone.norm.weight.uniform_(0.5, 2.0)  # so the logit lens sees the final norm applied
    llama = LlamaForCausalLM(build_tiny_model("llama").config).eval().requires_grad_(False)
    llama.load_state_dict({key.replace("backbone.", "model.").replace("head.", "lm_head."): value
                           for key, value in family.state_dict().items()})
    for model in (family, llama):
        model.set_attn_implementation("eager")
    return family, llama


@pytest.fixture
def clean_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo every registration a test makes: jola_lens' records and TransformerLens' adapter tables."""
    from transformer_lens.factories import architecture_adapter_factory as factory

    monkeypatch.setattr(arch_module, "ARCHITECTURES", dict(ARCHITECTURES))
    monkeypatch.setattr(factory, "SUPPORTED_ARCHITECTURES", dict(factory.SUPPORTED_ARCHITECTURES))
    monkeypatch.setattr(factory.ArchitectureAdapterFactory, "_adapters", dict(factory.ArchitectureAdapterFactory._adapters))


def test_an_unknown_family_is_refused_until_registered(clean_registries):
    family, _ = family_and_llama()
    with pytest.raises(UnsupportedModelError, match=rf"model_type='{FAMILY}'.*register_architecture\('{FAMILY}'"):
        JoLAEdit.for_model(family)
    record = register_architecture(FAMILY, "backbone.layers", "self_attn.o_proj")  # the three-argument form
    assert record == Architecture(FAMILY, "backbone.layers", "self_attn.o_proj")
    assert record.final_norm_path is None and record.lm_head_path == "lm_head" and record.norm_offset == 0.0
    assert find_head_sites(family).shape == (2, 4, 16)


def test_register_architecture_checks_its_fields(clean_registries):
    with pytest.raises(ValueError, match=r"Architecture.layers_path must be a dotted attribute path, got ''"):
        register_architecture(FAMILY, "", "self_attn.o_proj")
    with pytest.raises(ValueError, match=r"Architecture.norm_offset must be 0.0 \(w\) or 1.0 \(Gemma's 1 \+ w\)"):
        register_architecture(FAMILY, "backbone.layers", "self_attn.o_proj", norm_offset=2.0)
    with pytest.raises(TypeError, match=r"register_architecture takes an Architecture or a model_type"):
        register_architecture(3)


def test_a_family_of_our_own_on_every_route_merge_and_logit_lens(clean_registries, tiny_tokenizer, tmp_path):
    family, llama = family_and_llama()
    register_architecture(FAMILY, "backbone.layers", "self_attn.o_proj", final_norm_path="backbone.norm",
                          lm_head_path="head", tl_adapter=family_adapter())
    edit = strong_edit(family)
    assert edit.config.architecture == FAMILY
    mask = torch.ones(2, 9, dtype=torch.long)
    expected = hf_backend.forward(llama, edit, ids(), mask)
    assert not torch.allclose(expected, llama(ids()).logits, atol=1e-3)
    routes = {
        "hf": (hf_backend, family),
        "nnsight": (nn_backend, TransformersModel(family, tokenizer=copy.deepcopy(tiny_tokenizer))),
        "tl": (tl_backend, boot_bridge(copy.deepcopy(family), tiny_tokenizer)),
    }
    for name, (backend, model) in routes.items():
        torch.testing.assert_close(backend.forward(model, edit, ids(), mask), expected, atol=1e-5, rtol=1e-5,
                                   msg=lambda m, name=name: f"route {name}: {m}")
        with edit.attached(model):  # and as a lasting attachment
            pass
    lens = additive_logit_lens(edit, family, tiny_tokenizer, heads=3, tokens=4)
    reference = additive_logit_lens(edit, llama, tiny_tokenizer, heads=3, tokens=4)
    assert lens.drop(columns="run").equals(reference.drop(columns="run"))
    merged = merge_edit(copy.deepcopy(family), edit)
    torch.testing.assert_close(merged(ids()).logits, expected, atol=1e-5, rtol=1e-5)
    merged.save_pretrained(tmp_path)
    reloaded = FamilyForCausalLM.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(reloaded(ids()).logits, expected, atol=1e-5, rtol=1e-5)


def test_every_record_resolves_on_its_tiny_model():
    for arch, final_norm in (("llama", "model.norm"), ("qwen2", "model.norm"), ("gpt2", "transformer.ln_f")):
        model = build_tiny_model(arch)
        record = architecture_of(model)
        assert record.final_norm_path == final_norm
        assert record.final_norm(model) is model.get_submodule(final_norm)
        assert record.lm_head(model) is model.lm_head
    assert ARCHITECTURES["gemma"].norm_offset == ARCHITECTURES["gemma2"].norm_offset == 1.0
    assert ARCHITECTURES["llama"].norm_offset == 0.0


def test_conv1d_is_recognised_by_type_not_by_name():
    class RenamedConv1D(Conv1D):
        pass

    class Conv1DLookalike(nn.Module):  # named like it, but not transformers' Conv1D
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(64, 64))

    model = build_tiny_model("gpt2")
    original = model.transformer.h[0].attn.c_proj
    renamed = RenamedConv1D(64, 64)
    renamed.load_state_dict(original.state_dict())
    model.transformer.h[0].attn.c_proj = renamed
    edit = strong_edit(model)
    with edit.attached(model):
        hooked = model(ids()).logits
    assert torch.equal(out_in_weight(renamed), renamed.weight.T)
    torch.testing.assert_close(merge_edit(model, edit)(ids()).logits, hooked, atol=1e-5, rtol=1e-5)
    lookalike = Conv1DLookalike()
    lookalike.__class__.__name__ = "Conv1D"
    model = build_tiny_model("gpt2")
    model.transformer.h[0].attn.c_proj = lookalike
    with pytest.raises(UnsupportedModelError, match="unsupported output projection type Conv1D"):
        find_head_sites(model)
