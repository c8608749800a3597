"""Shared-prefix scoring equals full-sequence scoring; logits only at targets give the full loss and gradients."""

from __future__ import annotations

import logging

import pytest
import torch
from conftest import ARCHS, build_tiny_model

from jola_lens import JoLAEdit
from jola_lens.backends.route import ROUTES, make_route
from jola_lens.batching import collate
from jola_lens.loss import Targets, completion_loss, completion_loss_at
from jola_lens.scoring import encode_items, option_logprobs
from jola_lens.tasks.encoding import encode_example

CORPUS = ["Question: Which organ system coordinates the muscles?\nAnswer: The nervous system",
          "### Response:\n\n\nThe answer is the endocrine system.",
          "Soccer players use their muscle systems to kick a ball into a goal.",
          "Sarah was a much better surgeon than Maria so Maria always got the harder cases."]
# one batch: prompts of different lengths, one-token and multi-token options of different lengths, a prompt that
# ends in a space ("Answer: " + "The" would tokenize as "ĠThe" together), options that merge with the prompt
# ("\n" + "\n\nx"), and an item whose options go into the prompt (WinoGrande style: one shared continuation)
REQUESTS = [
    [("Question: Which organ system coordinates the muscles?\nAnswer: ", "The nervous system"),
     ("Question: Which organ system coordinates the muscles?\nAnswer: ", "x"),
     ("Question: Which organ system coordinates the muscles?\nAnswer: ", "The endocrine system is it")],
    [("### Response:\n", "\n\nx"), ("### Response:\n", "\n"), ("### Response:\n", " The answer")],
    [("Sarah was a much better surgeon than Maria so Sarah", " always got the harder cases."),
     ("Sarah was a much better surgeon than Maria so Maria", " always got the harder cases.")],
    [("Soccer", " players"), ("Soccer", " ball")],
]


@pytest.fixture(scope="module")
def bpe_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    """A small byte-level BPE tokenizer (BOS added), whose merges cross a prompt/option boundary."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(CORPUS * 20, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    raw.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    fast = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", pad_token="</s>")
    directory = tmp_path_factory.mktemp("bpe_tokenizer")
    fast.save_pretrained(directory)
    return AutoTokenizer.from_pretrained(directory)


def strong_edit(model: torch.nn.Module) -> JoLAEdit:
    edit = JoLAEdit.for_model(model, seed=0, init_std=0.5).eval()
    with torch.no_grad():
        edit.additive_gate_logits.fill_(3.0)
        edit.multiplicative_gate_logits.fill_(3.0)
    return edit


def test_the_requests_exercise_the_boundary_cases(bpe_tokenizer):
    tokens = bpe_tokenizer.convert_ids_to_tokens
    joint = bpe_tokenizer("Question: x?\nAnswer: The")["input_ids"]
    assert tokens(joint)[-1] == "ĠThe"  # tokenized together, the prompt's space joins the option
    items = encode_items(bpe_tokenizer, REQUESTS, ["a", "b", "c", "d"], max_length=400)
    for item, pairs in zip(items, REQUESTS):
        assert [o.input_ids for o in item.options] == [
            encode_example(bpe_tokenizer, p, o, add_eos=False).input_ids for p, o in pairs]
    first = items[0].options[0]
    assert tokens(first.input_ids[first.prompt_length - 1:first.prompt_length + 1]) == ["Ġ", "The"]
    assert [len(o.input_ids) - o.prompt_length for o in items[0].options] == [3, 1, 7]  # mixed option lengths
    assert tokens(bpe_tokenizer("### Response:\n\n\nx")["input_ids"])[-3:] == ["ĊĊ", "Ċ", "x"]  # merged jointly...
    assert tokens(items[1].options[0].input_ids)[-4:] == ["Ċ", "Ċ", "Ċ", "x"]  # ...but not here
    assert items[2].shared < items[2].options[0].prompt_length  # the options differ inside the prompt
    assert len({len(o.input_ids[:o.prompt_length]) for item in items for o in item.options}) > 2


@pytest.mark.parametrize("route_name", ROUTES)
@pytest.mark.parametrize("arch", ARCHS)
def test_shared_prefix_logprobs_equal_full_sequences(arch, route_name, bpe_tokenizer):
    model = build_tiny_model(arch, vocab_size=len(bpe_tokenizer))
    route = make_route(route_name, model, bpe_tokenizer)
    edit = strong_edit(model)
    full = option_logprobs(route, bpe_tokenizer, REQUESTS, edit, batch_size=4, shared_prefix=False, progress=False)
    shared = option_logprobs(route, bpe_tokenizer, REQUESTS, edit, batch_size=4, progress=False)
    one_by_one = option_logprobs(route, bpe_tokenizer, REQUESTS, edit, batch_size=1, progress=False)
    for a, b, c in zip(full, shared, one_by_one):
        assert b == pytest.approx(a, abs=1e-4) and c == pytest.approx(a, abs=1e-4)
    # the full-sequence reference itself: one option alone, the log-softmax of a plain forward with the edit
    encoded = encode_example(bpe_tokenizer, *REQUESTS[0][2], add_eos=False)
    ids = torch.tensor([encoded.input_ids])
    with torch.no_grad(), edit.attached(model):
        logprobs = model(ids).logits.log_softmax(-1)[0]
    expected = sum(logprobs[t - 1, encoded.input_ids[t]].item() for t in range(encoded.prompt_length, ids.shape[1]))
    assert full[0][2] == pytest.approx(expected, abs=1e-4)
    bare = option_logprobs(route, bpe_tokenizer, REQUESTS, None, batch_size=4, progress=False)
    assert bare[0] != pytest.approx(shared[0], abs=1e-3)  # the edit is applied in both passes


@pytest.mark.parametrize("route_name", ROUTES)
@pytest.mark.parametrize("arch", ARCHS)
def test_loss_with_logits_at_targets_equals_the_full_loss(arch, route_name, tiny_tokenizer):
    model = build_tiny_model(arch)
    route = make_route(route_name, model, tiny_tokenizer)
    edit = strong_edit(model).train()
    batch = collate([encode_example(tiny_tokenizer, p, t) for p, t in
                     [("w1 w2 w3 w4 w5", "w6 w7"), ("w8 w9", "w10"), ("w11 w12 w13", "w14 w15 w16 w17")]], 127)
    losses, grads = [], []
    for at_targets in (False, True):
        torch.manual_seed(0)  # the same Hard Concrete draw in both forwards
        if at_targets:
            targets = Targets.from_labels(batch.labels)
            loss = completion_loss_at(route.forward(edit, batch.input_ids, batch.attention_mask,
                                                    logits_at=targets.positions), targets)
        else:
            loss = completion_loss(route.forward(edit, batch.input_ids, batch.attention_mask), batch.labels)
        losses.append(loss.item())
        grads.append(torch.autograd.grad(loss, list(edit.parameters())))
    assert losses[1] == pytest.approx(losses[0], abs=1e-5)
    for full, at in zip(*grads):
        assert full.abs().max() > 0
        torch.testing.assert_close(at, full, rtol=1e-5, atol=1e-7)


def test_logits_at_read_exactly_the_requested_positions(tiny_tokenizer):
    route = make_route("hf", build_tiny_model("qwen2"), tiny_tokenizer)
    ids = torch.randint(0, 120, (2, 7))
    full = route.forward(None, ids, torch.ones_like(ids))
    targets = Targets.from_labels(torch.tensor([[-100, -100, 5, 6, -100, -100, -100], [-100] * 6 + [9]]))
    assert targets.positions.rows.tolist() == [0, 0, 1] and targets.positions.cols.tolist() == [1, 2, 5]
    at = route.forward(None, ids, torch.ones_like(ids), logits_at=targets.positions)
    torch.testing.assert_close(at, full[[0, 0, 1], [1, 2, 5]])


# ---- bad input -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def llama_route(tiny_tokenizer):
    return make_route("hf", build_tiny_model("llama"), tiny_tokenizer)


def test_an_option_empty_after_tokenization_is_refused(llama_route, tiny_tokenizer):
    with pytest.raises(ValueError, match=r"item q7: option 1 \(''\) is empty after tokenization"):
        option_logprobs(llama_route, tiny_tokenizer, [[("w1 w2", "w3"), ("w1 w2", "")]], None, ids=["q7"],
                        progress=False)


def test_an_empty_prompt_is_refused(llama_route, tiny_tokenizer):
    with pytest.raises(ValueError, match="item 0: the prompt is empty after tokenization and the tokenizer adds no BOS"):
        option_logprobs(llama_route, tiny_tokenizer, [[("", "w3"), ("", "w4")]], None, progress=False)


def test_long_prompts_are_cut_from_the_left_and_said_so_once(llama_route, tiny_tokenizer, caplog):
    long = " ".join(f"w{i % 100}" for i in range(30))
    requests = [[(long, "w1 w2"), (long, "w3")], [(long, "w4"), (long, "w5")], [("w1", "w6"), ("w1", "w7")]]
    with caplog.at_level(logging.WARNING, logger="jola_lens.scoring"):
        scores = option_logprobs(llama_route, tiny_tokenizer, requests, None, max_length=12, batch_size=3,
                                 progress=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [("4 option sequence(s) of 3 items did not fit 12 tokens: their prompts were cut from the "
                         "left by up to 20 tokens (raise max_length to keep them whole)")]
    cut = " ".join(long.split()[-11:])  # what encode_example keeps of the prompt before a one-token option
    reference = option_logprobs(llama_route, tiny_tokenizer, [[(cut, "w4"), (cut, "w5")]], None, progress=False)
    assert scores[1] == pytest.approx(reference[0], abs=1e-4)


def test_options_longer_than_max_length_or_the_context_are_refused(llama_route, tiny_tokenizer):
    with pytest.raises(ValueError, match=r"item 0: option 0 \('w1 w1 w1.*has 20 tokens, too many for max_length=12 "
                                         "after the prompt's first token; raise max_length"):
        option_logprobs(llama_route, tiny_tokenizer, [[("w2", " ".join(["w1"] * 20)), ("w2", "w3")]], None,
                        max_length=12, progress=False)
    with pytest.raises(ValueError, match="has 130 tokens, more than the model's context of 128 tokens"):
        option_logprobs(llama_route, tiny_tokenizer, [[("w2", " ".join(["w1"] * 130)), ("w2", "w3")]], None,
                        max_length=1000, progress=False)


def test_length_chunks_trade_padding_against_forwards():
    from jola_lens.scoring import length_chunks

    lengths = [20, 1, 2, 1, 19]
    assert length_chunks(lengths, overhead=4) == [[1, 3, 2], [4, 0]]  # 3 x 2 + 2 x 20 + 2 x 4 < 5 x 20 + 4
    assert length_chunks(lengths, overhead=1000) == [[1, 3, 2, 4, 0]]
    assert length_chunks(lengths, overhead=0) == [[1, 3], [2], [4], [0]]
    assert length_chunks([]) == []


@pytest.mark.parametrize(("method", "route_name"), [("jola", r) for r in ROUTES] + [("lora", "hf"), ("ia3", "hf")])
def test_every_method_scores_alike_with_and_without_the_shared_prefix(method, route_name, bpe_tokenizer):
    pytest.importorskip("peft")
    from jola_lens.methods.config import MethodConfig
    from jola_lens.methods.registry import build_adapter

    route = make_route(route_name, build_tiny_model("llama", vocab_size=len(bpe_tokenizer)), bpe_tokenizer)
    adapter = build_adapter(MethodConfig(method), route, seed=0)
    with torch.no_grad():
        for p in adapter.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    adapter.eval()
    full = option_logprobs(route, bpe_tokenizer, REQUESTS, adapter, batch_size=4, shared_prefix=False, progress=False)
    shared = option_logprobs(route, bpe_tokenizer, REQUESTS, adapter, batch_size=4, progress=False)
    bare = option_logprobs(route, bpe_tokenizer, REQUESTS, None, batch_size=4, progress=False)
    for a, b in zip(full, shared):
        assert b == pytest.approx(a, abs=1e-4)
    assert full[0] != pytest.approx(bare[0], abs=1e-3)
    adapter.remove()
