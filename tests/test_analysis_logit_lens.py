"""What an edit writes: the logit lens of one head by hand (Linear o_proj and GPT-2 Conv1D), and the scalings."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_model

from jola_lens import JoLAConfig, JoLAEdit
from jola_lens.analysis import additive_logit_lens, head_output_weight, multiplicative_scalings, plot_logit_lens

LAYER, HEAD = 1, 2


def _edit(model: torch.nn.Module) -> JoLAEdit:
    """Only (LAYER, HEAD) open, at logit 0 (gate 0.5), for both kinds."""
    edit = JoLAEdit.for_model(model, seed=0).eval()
    with torch.no_grad():
        edit.additive.normal_(0, 1.0)
        edit.multiplicative.normal_(0, 0.1)
        for kind in ("additive", "multiplicative"):
            edit.gate_logits(kind).fill_(-5.0)
            edit.gate_logits(kind)[LAYER, HEAD] = 0.0
    return edit


def _hand_logits(arch: str, model: torch.nn.Module, edit: JoLAEdit) -> torch.Tensor:
    d = edit.config.d_head
    a = 0.5 * edit.additive[LAYER, HEAD].detach()
    cols = slice(HEAD * d, (HEAD + 1) * d)
    if arch == "gpt2":
        written = a @ model.transformer.h[LAYER].attn.c_proj.weight[cols, :]  # Conv1D weight is [in, out]
        written = (written - written.mean()) * model.transformer.ln_f.weight
    else:
        written = model.model.layers[LAYER].self_attn.o_proj.weight[:, cols] @ a  # Linear weight is [out, in]
        written = written * model.model.norm.weight
    return model.lm_head.weight @ written


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_logit_lens_matches_hand_computation(arch, tiny_tokenizer):
    model = build_tiny_model(arch)
    final_norm = model.transformer.ln_f if arch == "gpt2" else model.model.norm
    with torch.no_grad():
        final_norm.weight.uniform_(0.5, 2.0)  # not all ones, so the test sees it applied
    edit = _edit(model)
    lens = additive_logit_lens(edit, model, tiny_tokenizer, heads=3, tokens=4)
    assert set(zip(lens["layer"], lens["head"])) == {(LAYER, HEAD)}  # closed heads write nothing
    expected = _hand_logits(arch, model, edit)
    promoted = lens[lens["direction"] == "promotes"]
    suppressed = lens[lens["direction"] == "suppresses"]
    assert promoted["token_id"].tolist() == expected.topk(4).indices.tolist()
    assert promoted["logit"].to_numpy() == pytest.approx(expected.topk(4).values.numpy(), rel=1e-5)
    assert suppressed["token_id"].tolist() == expected.topk(4, largest=False).indices.tolist()
    assert promoted["token"].iloc[0] == tiny_tokenizer.decode([promoted["token_id"].iloc[0]])
    assert lens["gate"].iloc[0] == pytest.approx(0.5)
    fig = plot_logit_lens(lens, title=f"t — tiny-{arch}")
    assert "t — tiny-" in fig.get_suptitle() and f"L{LAYER} H{HEAD}" in fig.axes[0].get_title()


def test_head_output_weight_layouts():
    llama, gpt2 = build_tiny_model("llama"), build_tiny_model("gpt2")
    o_proj = llama.model.layers[0].self_attn.o_proj
    c_proj = gpt2.transformer.h[0].attn.c_proj
    assert torch.equal(head_output_weight(o_proj, 1, 16), o_proj.weight[:, 16:32])
    assert torch.equal(head_output_weight(c_proj, 1, 16), c_proj.weight[16:32, :].T)
    z = torch.randn(64)
    assert torch.allclose(c_proj(z) - c_proj.bias, sum(head_output_weight(c_proj, h, 16) @ z[h * 16:(h + 1) * 16]
                                                       for h in range(4)), atol=1e-5)


def test_logit_lens_include_closed_and_shape_check(tiny_tokenizer):
    model = build_tiny_model("llama")
    edit = _edit(model)
    lens = additive_logit_lens(edit, model, tiny_tokenizer, heads=8, tokens=2, include_closed=True)
    assert lens.groupby(["layer", "head"]).ngroups == 8
    with pytest.raises(ValueError, match="made for a model"):
        additive_logit_lens(JoLAEdit(JoLAConfig(3, 4, 16)), model, tiny_tokenizer)


def test_multiplicative_scalings():
    model = build_tiny_model("llama")
    edit = _edit(model)
    scalings = multiplicative_scalings(edit, heads=5, dims=3)
    assert set(zip(scalings["layer"], scalings["head"])) == {(LAYER, HEAD)}
    m = edit.multiplicative[LAYER, HEAD].detach()
    top = m.abs().topk(3).indices
    assert scalings["dim"].tolist() == top.tolist()
    assert scalings["scale"].to_numpy() == pytest.approx((1 + 0.5 * m[top]).numpy())


def test_gemma_final_norm_scales_by_one_plus_w(tiny_tokenizer):
    from transformers import GemmaConfig, GemmaForCausalLM

    torch.manual_seed(0)
    model = GemmaForCausalLM(GemmaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                         max_position_embeddings=128)).eval()
    with torch.no_grad():
        model.model.norm.weight.uniform_(-0.5, 0.5)  # Gemma stores w and scales by 1 + w
    edit = _edit(model)
    lens = additive_logit_lens(edit, model, tiny_tokenizer, heads=1, tokens=4)
    a = 0.5 * edit.additive[LAYER, HEAD].detach()
    written = model.model.layers[LAYER].self_attn.o_proj.weight[:, HEAD * 16:(HEAD + 1) * 16] @ a
    expected = model.lm_head.weight @ (written * (1 + model.model.norm.weight))
    promoted = lens[lens["direction"] == "promotes"]
    assert promoted["token_id"].tolist() == expected.topk(4).indices.tolist()
    assert promoted["logit"].to_numpy() == pytest.approx(expected.topk(4).values.detach().numpy(), rel=1e-5)


def test_logit_lens_reads_a_bridged_model_like_its_hf_model(tiny_tokenizer):
    from jola_lens import boot_bridge

    model = build_tiny_model("gpt2")  # a LayerNorm final norm: centred, which a bridge's wrapper must not hide
    with torch.no_grad():
        model.transformer.ln_f.weight.uniform_(0.5, 2.0)
    edit = _edit(model)
    expected = additive_logit_lens(edit, model, tiny_tokenizer, heads=2, tokens=4)
    bridge = boot_bridge(build_tiny_model("gpt2"), tiny_tokenizer)
    with torch.no_grad():
        bridge.original_model.transformer.ln_f.weight.copy_(model.transformer.ln_f.weight)
    lens = additive_logit_lens(edit, bridge, tiny_tokenizer, heads=2, tokens=4)
    assert lens["token_id"].tolist() == expected["token_id"].tolist()
    assert lens["logit"].to_numpy() == pytest.approx(expected["logit"].to_numpy(), rel=1e-5)
