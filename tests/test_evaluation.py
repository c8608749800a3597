"""Evaluation: likelihood ranking of options, beam-search generation with the edit, records and metrics."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_model
from test_training_helpers import tiny_task  # noqa: F401  (fixture)

from jola_lens import JoLAEdit
from jola_lens.backends.route import make_route
from jola_lens.evaluation import evaluate, generate_responses, generation_config, option_logprobs
from jola_lens.tasks import get_task
from jola_lens.tasks.encoding import encode_example


def pairs(prompts, choices):
    return [[(prompt, option) for option in options] for prompt, options in zip(prompts, choices)]


@pytest.fixture(scope="module")
def backend(tiny_tokenizer):
    return make_route("hf", build_tiny_model("llama"), tiny_tokenizer)


@pytest.fixture(scope="module")
def strong_edit(backend):
    edit = JoLAEdit.for_model(backend.hf_model, seed=0, init_std=0.5).eval()
    with torch.no_grad():
        edit.additive_gate_logits.fill_(3.0)
    return edit


@pytest.fixture(scope="module")
def task(tiny_task):  # noqa: F811
    return get_task(str(tiny_task))


def test_option_logprobs_match_a_plain_forward_and_do_not_depend_on_batching(backend, tiny_tokenizer, strong_edit):
    prompts = ["w1 w30 w31", "w2 w40", "w1 w50 w51 w52 w53"]
    choices = [("w10", "w11"), ("w10 w12", "w11"), ("w13", "w14", "w15")]
    one = option_logprobs(backend, tiny_tokenizer, pairs(prompts, choices), strong_edit, batch_size=1, progress=False)
    three = option_logprobs(backend, tiny_tokenizer, pairs(prompts, choices), strong_edit, batch_size=3, progress=False)
    assert [len(x) for x in one] == [2, 2, 3]
    for a, b in zip(one, three):
        assert a == pytest.approx(b, abs=1e-4)
    encoded = encode_example(tiny_tokenizer, prompts[1], "w10 w12", add_eos=False)
    ids = torch.tensor([encoded.input_ids])
    with torch.no_grad(), strong_edit.attached(backend.hf_model):
        logprobs = backend.hf_model(ids).logits.log_softmax(-1)[0]
    n = len(encoded.input_ids)
    expected = logprobs[n - 3, encoded.input_ids[n - 2]] + logprobs[n - 2, encoded.input_ids[n - 1]]
    assert one[1][0] == pytest.approx(expected.item(), abs=1e-4)
    bare = option_logprobs(backend, tiny_tokenizer, pairs(prompts, choices), None, progress=False)
    assert bare[0] != pytest.approx(one[0], abs=1e-3)


def test_generation_is_the_papers_beam_search_with_the_edit_applied(backend, tiny_tokenizer, strong_edit):
    config = generation_config(tiny_tokenizer, 5)
    assert (config.num_beams, config.do_sample, config.max_new_tokens) == (4, False, 5)
    prompts = ["w1 w30 w31", "w2 w40"]
    edited = generate_responses(backend, tiny_tokenizer, prompts, strong_edit, max_new_tokens=5, progress=False)
    bare = generate_responses(backend, tiny_tokenizer, prompts, None, max_new_tokens=5, progress=False)
    assert edited != bare
    ids = torch.tensor([tiny_tokenizer(prompts[0])["input_ids"]])
    with torch.no_grad(), strong_edit.attached(backend.hf_model):
        out = backend.hf_model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config)
    assert edited[0] == tiny_tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
    batched = generate_responses(backend, tiny_tokenizer, prompts, strong_edit, max_new_tokens=5, batch_size=2,
                                 progress=False)
    assert batched == edited
    assert not strong_edit.training


@pytest.mark.parametrize("name", ["tl", "nnsight"])
def test_every_backend_generates_and_scores_alike(name, backend, tiny_tokenizer, strong_edit):
    other = make_route(name, build_tiny_model("llama"), tiny_tokenizer)
    prompts, choices = ["w1 w30 w31", "w2 w40"], [("w10", "w11"), ("w12", "w13")]
    kwargs = dict(max_new_tokens=5, batch_size=2, progress=False)
    assert (generate_responses(other, tiny_tokenizer, prompts, strong_edit, **kwargs)
            == generate_responses(backend, tiny_tokenizer, prompts, strong_edit, **kwargs))
    a = option_logprobs(other, tiny_tokenizer, pairs(prompts, choices), strong_edit, batch_size=2, progress=False)
    b = option_logprobs(backend, tiny_tokenizer, pairs(prompts, choices), strong_edit, batch_size=2, progress=False)
    for x, y in zip(a, b):
        assert x == pytest.approx(y, abs=1e-4)


def test_evaluate_both_records_every_field(backend, tiny_tokenizer, strong_edit, task):
    examples = task.load_split("test")[:6]
    result = evaluate(backend, tiny_tokenizer, task, examples, strong_edit, scoring="both", prompt_style="plain",
                      batch_size=4, progress=False)
    assert set(result.metrics) == {"generation", "likelihood"}
    assert set(result.metrics["likelihood"]) == {"acc", "acc_norm", "n", "majority_rate"}  # a user file's task
    gold = [e.answer_index for e in examples]
    majority = 100 * max(gold.count(i) for i in set(gold)) / 6
    assert result.metrics["likelihood"]["majority_rate"] == result.metrics["generation"]["majority_rate"] == majority
    assert result.metrics["likelihood"]["n"] == 6 and result.metrics["generation"]["n"] == 6
    record = result.records[0]
    assert {"id", "prompt", "response", "prediction", "gold", "correct", "option_logprobs", "likelihood_prediction",
            "likelihood_correct", "likelihood_correct_norm"} <= record.keys()
    assert record["id"] == examples[0].id and record["gold"] == examples[0].target
    assert len(record["option_logprobs"]) == len(examples[0].choices)
    acc = 100 * sum(r["likelihood_correct"] for r in result.records) / 6
    assert result.metrics["likelihood"]["acc"] == pytest.approx(acc)


def test_likelihood_only_fills_prediction_from_the_options(backend, tiny_tokenizer, task):
    examples = task.load_split("test")[:3]
    result = evaluate(backend, tiny_tokenizer, task, examples, None, scoring="likelihood", prompt_style="plain",
                      progress=False)
    assert set(result.metrics) == {"likelihood"}
    for record in result.records:
        assert record["prediction"] == record["likelihood_prediction"]
        assert record["correct"] == record["likelihood_correct"]


def test_likelihood_needs_options_and_scoring_is_checked(backend, tiny_tokenizer, task):
    from jola_lens.tasks.examples import Example

    with pytest.raises(ValueError, match="no choices"):
        evaluate(backend, tiny_tokenizer, task, [Example("x", "w1", "w10")], scoring="likelihood", progress=False)
    with pytest.raises(ValueError, match="unknown scoring"):
        evaluate(backend, tiny_tokenizer, task, task.load_split("test")[:1], scoring="vibes", progress=False)


def test_evaluate_restores_the_mode_it_found(backend, tiny_tokenizer, task):
    examples = task.load_split("test")[:4]
    edit = JoLAEdit.for_model(backend.hf_model, seed=1, init_std=0.5)
    kwargs = {"scoring": "likelihood", "prompt_style": "plain", "batch_size": 2, "progress": False}
    scored_in_eval = evaluate(backend, tiny_tokenizer, task, examples, edit.eval(), **kwargs)
    assert not edit.training
    edit.train()
    scored_from_train = evaluate(backend, tiny_tokenizer, task, examples, edit, **kwargs)
    assert edit.training  # the caller's training mode is back
    assert ([r["option_logprobs"] for r in scored_from_train.records]
            == [r["option_logprobs"] for r in scored_in_eval.records])  # scored with deterministic gates


def test_items_whose_options_go_into_the_prompt_score_the_shared_continuation(backend, tiny_tokenizer, task,
                                                                               strong_edit):
    from jola_lens.tasks.examples import Example

    example = Example("wino", "w1 w2 w3", " w7 w8", choices=("w3", "w4"), answer_index=0, references=(" w7 w8",),
                      option_instructions=("w1 w2 w3", "w1 w2 w4"))
    result = evaluate(backend, tiny_tokenizer, task, [example], strong_edit, scoring="likelihood",
                      prompt_style="plain", progress=False)
    expected = option_logprobs(backend, tiny_tokenizer, [[("w1 w2 w3", " w7 w8"), ("w1 w2 w4", " w7 w8")]],
                               strong_edit, progress=False)[0]
    record = result.records[0]
    assert record["option_logprobs"] == pytest.approx(expected, abs=1e-5) and expected[0] != expected[1]
    assert record["likelihood_prediction"] == ("w3", "w4")[max((0, 1), key=expected.__getitem__)]
    assert result.metrics["likelihood"]["acc"] == result.metrics["likelihood"]["acc_norm"]
    with pytest.raises(ValueError, match="puts each option in its own prompt .* use --scoring likelihood"):
        evaluate(backend, tiny_tokenizer, task, [example], strong_edit, scoring="both", progress=False)


def test_acc_norm_divides_by_the_option_without_its_delimiter():
    from jola_lens.evaluation import option_length

    # lm-eval divides by len(choice); the continuation it scores is " " + choice
    assert [option_length(o) for o in (" The nervous system", "answer1", "  Many", " ", "")] == [18, 7, 5, 1, 1]


def test_top_answer_share_counts_the_most_frequent_prediction_of_a_label_set():
    from jola_lens.evaluation import top_answer_share

    labels = [{"gold": g, "prediction": p} for g, p in
              [("yes", "yes"), ("no", "yes"), ("no", "yes"), ("yes", "no")]]
    assert top_answer_share(labels) == 75.0  # "yes" for 3 of 4 items
    texts = [{"gold": f"option {i}", "prediction": "option 0"} for i in range(6)]  # 6 distinct gold answers
    assert top_answer_share(texts) is None and top_answer_share([]) is None
