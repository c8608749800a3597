"""Integration on the embedded SmolLM2-135M-Instruct: loading, both routes, generation and merge."""

import pytest
import torch
from test_backends import strong_edit
from transformers import AutoModelForCausalLM

from jola_lens import boot_bridge, load_model, merge_edit
from jola_lens.models import DEFAULT_MODEL

pytestmark = pytest.mark.slow


def test_default_model_is_smollm2_frozen_in_eval_mode(smollm2):
    model, tokenizer = smollm2
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == 30
    assert (model.config.num_attention_heads, model.config.num_key_value_heads) == (9, 3)
    assert model.config._name_or_path == DEFAULT_MODEL
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert tokenizer.pad_token is not None
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids.shape[1]:])


def test_half_written_cache_is_rebuilt(tmp_path, monkeypatch, caplog):
    from jola_lens import models

    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    directory = models._default_cache_dir(torch.float32)
    directory.mkdir(parents=True)
    (directory / models._COMPLETE_MARKER).write_text("x")
    (directory / "config.json").write_text("{ not json")
    model, _ = load_model()
    assert "rebuilding" in caplog.text
    assert model.config.num_hidden_layers == 30
    assert (directory / "model.safetensors").stat().st_size > 100_000_000


def test_routes_agree_and_merge_is_exact_on_smollm2(tmp_path):
    model, tokenizer = load_model()
    edit = strong_edit(model, seed=0)
    with torch.no_grad():
        edit.additive.mul_(0.2)
    batch = tokenizer(["Below is an instruction.", "Paris is the capital of"], return_tensors="pt", padding=True)
    with edit.attached(model):
        hf_logits = model(**batch).logits
        hf_tokens = model.generate(**batch, max_new_tokens=6, do_sample=False)
    bridge = boot_bridge(model, tokenizer)
    tl_logits = bridge.run_with_hooks(batch.input_ids, attention_mask=batch.attention_mask, return_type="logits",
                                      fwd_hooks=edit.fwd_hooks())
    mask = batch.attention_mask.bool()
    torch.testing.assert_close(tl_logits[mask], hf_logits[mask], atol=1e-4, rtol=1e-4)
    prompt = batch.input_ids[1:]
    with edit.attached(bridge):
        tl_tokens = bridge.generate(prompt, max_new_tokens=6, do_sample=False, verbose=False, return_type="tokens")
    assert torch.equal(tl_tokens[0], hf_tokens[1])

    merged = merge_edit(model, edit)
    merged_logits = merged(**batch).logits
    rel = ((merged_logits - hf_logits)[mask].norm() / hf_logits[mask].norm()).item()
    assert rel < 1e-5
    merged.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    rel = ((reloaded(**batch).logits - hf_logits)[mask].norm() / hf_logits[mask].norm()).item()
    assert rel < 1e-5
