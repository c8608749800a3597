"""Evaluate an edit (or the bare model) on task examples, by generation and/or option likelihood.

- generation: the paper's decoding (4-beam search, no sampling, ``task.max_new_tokens`` new tokens, first
  line kept), parsed with ``task.parse`` and scored with ``task.score``.
- likelihood: each option of ``Example.choices`` is ranked by the summed log-probability of its tokens after
  the prompt (``acc``) and by that sum divided by the option's length in characters (``acc_norm``, as
  lm-evaluation-harness does). All options of ``batch_size`` items go through the model in one forward.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig

from jola_lens.backends.route import Route
from jola_lens.batching import collate, length_groups
from jola_lens.edit import JoLAEdit
from jola_lens.loss import sequence_logprobs
from jola_lens.tasks.base import Task
from jola_lens.tasks.encoding import encode_example
from jola_lens.tasks.examples import Example
from jola_lens.tasks.parsing import first_line

logger = logging.getLogger(__name__)

SCORINGS = ("generation", "likelihood", "both")
NUM_BEAMS = 4


@dataclass
class EvalResult:
    """Metrics per scoring method (``{"generation": {...}, "likelihood": {"acc", "acc_norm", "n"}}``),
    one record per item, and the wall time."""

    metrics: dict[str, dict[str, float]]
    records: list[dict[str, Any]]
    seconds: float


def scoring_methods(scoring: str) -> tuple[str, ...]:
    if scoring not in SCORINGS:
        raise ValueError(f"unknown scoring {scoring!r}; choose one of {SCORINGS}")
    return ("generation", "likelihood") if scoring == "both" else (scoring,)


def evaluate(backend: Route, tokenizer: Any, task: Task, examples: Sequence[Example], edit: JoLAEdit | None = None,
             *, scoring: str = "generation", prompt_style: str = "alpaca", batch_size: int = 1,
             max_length: int = 400, progress: bool = True) -> EvalResult:
    """Score ``edit`` (None: the bare model) on ``examples`` of ``task``."""
    methods = scoring_methods(scoring)
    if "likelihood" in methods and any(len(e.choices) < 2 for e in examples):
        raise ValueError(f"likelihood scoring ranks answer options, but {task.name} items have no choices "
                         f"(a {task.kind} task); use --scoring generation")
    start = time.monotonic()
    if edit is not None:
        edit.eval()
    prompts = [task.prompt(e, prompt_style, tokenizer) for e in examples]
    records = [{"id": e.id, "prompt": p, "gold": e.target} for e, p in zip(examples, prompts)]
    metrics: dict[str, dict[str, float]] = {}
    if "generation" in methods:
        responses = generate_responses(backend, tokenizer, prompts, edit, max_new_tokens=task.max_new_tokens,
                                       batch_size=batch_size, max_length=max_length, progress=progress)
        metrics["generation"], scored = task.score(responses, list(examples))
        for record, item in zip(records, scored):
            record.update(item)
    if "likelihood" in methods:
        logprobs = option_logprobs(backend, tokenizer, prompts, [e.choices for e in examples], edit,
                                   batch_size=batch_size, max_length=max_length, progress=progress)
        metrics["likelihood"] = _rank_options(examples, logprobs, records, fill_prediction="generation" not in methods)
    return EvalResult(metrics, records, time.monotonic() - start)


def generation_config(tokenizer: Any, max_new_tokens: int) -> GenerationConfig:
    """The paper's decoding: 4 beams, no sampling, at most ``max_new_tokens`` new tokens."""
    return GenerationConfig(num_beams=NUM_BEAMS, do_sample=False, max_new_tokens=max_new_tokens,
                            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)


@torch.inference_mode()
def generate_responses(backend: Route, tokenizer: Any, prompts: Sequence[str], edit: JoLAEdit | None, *,
                       max_new_tokens: int, batch_size: int = 1, max_length: int = 400,
                       progress: bool = True) -> list[str]:
    """The first line of each prompt's beam-search continuation (prompts of similar length left-padded
    together in batches)."""
    config = generation_config(tokenizer, max_new_tokens)
    encoded = [encode_example(tokenizer, p, "", max_length=max_length, add_eos=False).input_ids for p in prompts]
    responses = [""] * len(prompts)
    groups = length_groups([len(ids) for ids in encoded], batch_size)
    for group in tqdm(groups, desc="generating", leave=False, disable=not progress):
        width = max(len(encoded[i]) for i in group)
        input_ids = torch.full((len(group), width), tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(group), width), dtype=torch.long)
        for row, i in enumerate(group):
            input_ids[row, width - len(encoded[i]):] = torch.as_tensor(encoded[i])
            attention_mask[row, width - len(encoded[i]):] = 1
        output = backend.generate(edit, input_ids.to(backend.device), attention_mask.to(backend.device), config)
        for i, text in zip(group, tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)):
            responses[i] = first_line(text)
    return responses


@torch.inference_mode()
def option_logprobs(backend: Route, tokenizer: Any, prompts: Sequence[str], choices: Sequence[Sequence[str]],
                    edit: JoLAEdit | None, *, batch_size: int = 1, max_length: int = 400,
                    progress: bool = True) -> list[list[float]]:
    """Summed log-probability of each option's tokens after its prompt, per item and option (all options of
    ``batch_size`` items of similar length in one forward)."""
    encoded = [[encode_example(tokenizer, prompt, option, max_length=max_length, add_eos=False) for option in options]
               for prompt, options in zip(prompts, choices)]
    results: list[list[float]] = [[] for _ in prompts]
    groups = length_groups([max(len(e.input_ids) for e in item) for item in encoded], batch_size)
    for group in tqdm(groups, desc="scoring options", leave=False, disable=not progress):
        batch = collate([e for i in group for e in encoded[i]], tokenizer.pad_token_id).to(backend.device)
        sums = sequence_logprobs(backend.forward(edit, batch.input_ids, batch.attention_mask), batch.labels).tolist()
        for i in group:
            results[i], sums = sums[:len(choices[i])], sums[len(choices[i]):]
    return results


def _rank_options(examples: Sequence[Example], logprobs: list[list[float]], records: list[dict[str, Any]],
                  fill_prediction: bool) -> dict[str, float]:
    correct, correct_norm = [], []
    for example, sums, record in zip(examples, logprobs, records):
        normalized = [s / max(len(option), 1) for s, option in zip(sums, example.choices)]
        best = max(range(len(sums)), key=sums.__getitem__)
        best_norm = max(range(len(sums)), key=normalized.__getitem__)
        correct.append(best == example.answer_index)
        correct_norm.append(best_norm == example.answer_index)
        record.update(option_logprobs=sums, likelihood_prediction=example.choices[best],
                      likelihood_correct=correct[-1], likelihood_prediction_norm=example.choices[best_norm],
                      likelihood_correct_norm=correct_norm[-1])
        if fill_prediction:
            record.update(prediction=example.choices[best], correct=correct[-1])
    n = len(correct)
    return {"acc": 100.0 * sum(correct) / n, "acc_norm": 100.0 * sum(correct_norm) / n, "n": float(n)}
