"""The plain-HF and TransformerLens routes: exact identity when the edit is off, equal logits when on."""

import copy

import pytest
import torch
from conftest import build_tiny_model
from torch import nn

from jola_lens import JoLAConfig, JoLAEdit, UnsupportedModelError, boot_bridge
from jola_lens.backends import transformer_lens as tl_backend

ARCHS = ("llama", "qwen2", "gpt2")


def strong_edit(model, seed=0, **fields) -> JoLAEdit:
    """An eval-mode edit with large random vectors and a mix of open and closed gates."""
    edit = JoLAEdit.for_model(model, seed=seed, **fields)
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for name, p in edit.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (3.0 if "gate" in name else 0.5))
    return edit.eval()


def ids(batch=2, pos=9, seed=0):
    return torch.randint(0, 120, (batch, pos), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", ARCHS)
def test_hf_route_is_exact_identity_when_edit_is_off(arch):
    model = build_tiny_model(arch)
    reference = model(ids()).logits
    edit = strong_edit(model)
    with torch.no_grad():
        edit.additive_gate_logits.fill_(-20)
        edit.multiplicative_gate_logits.fill_(-20)
    with edit.attached(model):
        assert torch.equal(model(ids()).logits, reference)
    zero = JoLAEdit.for_model(model, seed=1).eval()
    with torch.no_grad():
        zero.additive.zero_()
        zero.multiplicative.zero_()
    with zero.attached(model):
        assert torch.equal(model(ids()).logits, reference)
    with strong_edit(model).attached(model):
        assert not torch.allclose(model(ids()).logits, reference, atol=1e-3)
    assert torch.equal(model(ids()).logits, reference)  # detached again


@pytest.mark.parametrize("arch", ARCHS)
def test_transformer_lens_route_equals_hf_route(arch, tiny_tokenizer):
    hf_model = build_tiny_model(arch)
    bridge = boot_bridge(build_tiny_model(arch), tiny_tokenizer)
    edit = strong_edit(hf_model)
    mask = torch.ones(2, 9, dtype=torch.long)
    with edit.attached(hf_model):
        expected = hf_model(ids(), attention_mask=mask).logits
    via_hooks = bridge.run_with_hooks(ids(), return_type="logits", fwd_hooks=edit.fwd_hooks())
    torch.testing.assert_close(via_hooks, expected, atol=1e-5, rtol=1e-5)
    with edit.attached(bridge):
        attached = bridge(ids(), return_type="logits")
    torch.testing.assert_close(attached, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tl_backend.forward(bridge, edit, ids(), mask), expected, atol=1e-5, rtol=1e-5)
    bare = bridge(ids(), return_type="logits")
    torch.testing.assert_close(bare, build_tiny_model(arch)(ids()).logits, atol=1e-5, rtol=1e-5)


def test_transformer_lens_attachment_survives_reset_hooks_and_shows_in_cache(tiny_tokenizer):
    bridge = boot_bridge(build_tiny_model("llama"), tiny_tokenizer)
    edit = strong_edit(bridge)
    _, clean_cache = bridge.run_with_cache(ids())
    attachment = edit.attach(bridge)
    bridge.reset_hooks()  # user code often calls this; the edit stays until removed
    _, cache = bridge.run_with_cache(ids())
    z_clean = clean_cache["blocks.0.attn.hook_z"]  # layer 0: nothing upstream of it is edited
    torch.testing.assert_close(cache["blocks.0.attn.hook_z"], edit(z_clean, 0))
    attachment.remove()
    assert not attachment.active
    _, after = bridge.run_with_cache(ids())
    torch.testing.assert_close(after["blocks.0.attn.hook_z"], z_clean)
    torch.testing.assert_close(after["blocks.1.attn.hook_z"], clean_cache["blocks.1.attn.hook_z"])


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_every_generated_token_is_edited(arch, tiny_tokenizer):
    hf_model = build_tiny_model(arch)
    bridge = boot_bridge(build_tiny_model(arch), tiny_tokenizer)
    edit = strong_edit(hf_model, seed=3)
    with torch.no_grad():
        edit.additive.mul_(8)  # strong enough to change a tiny random model's greedy choice
    prompt = ids(batch=1, pos=5)
    with edit.attached(hf_model):
        expected = hf_model.generate(prompt, max_new_tokens=8, do_sample=False, pad_token_id=127)
    with edit.attached(bridge):
        generated = bridge.generate(prompt, max_new_tokens=8, do_sample=False, verbose=False, return_type="tokens")
    unedited = hf_model.generate(prompt, max_new_tokens=8, do_sample=False, pad_token_id=127)
    assert torch.equal(generated, expected)
    assert not torch.equal(expected, unedited)
    # the KV-cached generation edits each new token exactly as a full forward pass does
    with edit.attached(hf_model):
        full = hf_model(expected).logits[0, 4:-1].argmax(-1)
    assert torch.equal(full, expected[0, 5:])


def test_unsupported_architecture_lists_what_is_supported():
    class Config:
        model_type = "mystery"

    class Mystery(nn.Module):
        config = Config()

    with pytest.raises(UnsupportedModelError, match=r"model_type='mystery'.*llama.*register_architecture"):
        JoLAEdit(JoLAConfig(2, 4, 16)).attach(Mystery())
    with pytest.raises(UnsupportedModelError, match="is not a Hugging Face model"):
        JoLAEdit(JoLAConfig(2, 4, 16)).attach(object())


def test_layer_subset_only_touches_those_layers():
    model = build_tiny_model("llama")
    edit = strong_edit(model, layers=(1,))
    seen = []
    handle = model.model.layers[0].self_attn.o_proj.register_forward_pre_hook(lambda m, a: seen.append(a[0].clone()))
    model(ids())
    with edit.attached(model):
        model(ids())
    handle.remove()
    assert torch.equal(seen[0], seen[1])
    assert copy.deepcopy(edit).config.layers == (1,)


def test_one_name_per_route(tiny_tokenizer):
    from nnsight.modeling.transformers import TransformersModel

    from jola_lens.backends import ROUTES, backend_name

    hf_model = build_tiny_model("llama")
    models = {"hf": hf_model, "tl": boot_bridge(build_tiny_model("llama"), tiny_tokenizer),
              "nnsight": TransformersModel(build_tiny_model("llama"), tokenizer=copy.deepcopy(tiny_tokenizer))}
    assert ROUTES == tuple(models) == ("hf", "tl", "nnsight")
    for name, model in models.items():
        assert backend_name(model) == name
        attachment = strong_edit(hf_model).attach(model)
        assert attachment.backend == name and repr(attachment) == f"Attachment(backend={name!r}, active=True)"
        attachment.remove()
