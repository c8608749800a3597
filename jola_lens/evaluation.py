"""Evaluate an edit (or the bare model) on task examples, by generation and/or option likelihood.

- generation: the paper's decoding (4-beam search, no sampling, ``task.max_new_tokens`` new tokens, first
  line kept), parsed with ``task.parse`` and scored with ``task.score``.
- likelihood: each option is ranked by the summed log-probability of its tokens after its prompt (``acc``) and
  by that sum divided by the option's length in characters, without the one space that separates a cloze option
  from its prompt (``acc_norm``, lm-evaluation-harness's ``len(choice)``). The prompt of ``batch_size`` items
  goes through the model once per item, see :mod:`jola_lens.scoring`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jola_lens.backends.route import Route
from jola_lens.scoring import Edit, generate_responses, generation_config, option_logprobs, option_requests
from jola_lens.tasks.base import Task
from jola_lens.tasks.examples import Example

__all__ = ["SCORINGS", "EvalResult", "evaluate", "generate_responses", "generation_config", "option_logprobs",
           "scoring_methods", "top_answer_share"]

SCORINGS = ("generation", "likelihood", "both")
LABEL_SET_MAX = 5
"""Tasks whose gold answers take at most this many distinct values answer from a label set (positive/negative)."""


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


def evaluate(backend: Route, tokenizer: Any, task: Task, examples: Sequence[Example], edit: Edit = None,
             *, scoring: str = "generation", prompt_style: str = "alpaca", batch_size: int = 1,
             max_length: int = 400, progress: bool = True) -> EvalResult:
    """Score ``edit`` (None: the bare model; a JoLA edit or a method's adapter) on ``examples`` of ``task``.
    The edit runs in eval mode (deterministic gates) and is left in the mode it was found in."""
    methods = scoring_methods(scoring)
    if "likelihood" in methods and any(len(e.choices) < 2 for e in examples):
        raise ValueError(f"likelihood scoring ranks answer options, but {task.name} items have no choices "
                         f"(a {task.kind} task); use --scoring generation")
    if "generation" in methods and any(e.option_instructions for e in examples):
        raise ValueError(f"{task.name} ({task.formulation} formulation) puts each option in its own prompt "
                         "(lm-eval's partial scoring), so a generated answer would follow the gold option; "
                         "use --scoring likelihood")
    start = time.monotonic()
    was_training = edit is not None and edit.training
    if edit is not None:
        edit.eval()
    try:
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
            requests = [option_requests(task, e, prompt_style, tokenizer) for e in examples]
            logprobs = option_logprobs(backend, tokenizer, requests, edit, ids=[e.id for e in examples],
                                       batch_size=batch_size, max_length=max_length, progress=progress)
            metrics["likelihood"] = _rank_options(examples, requests, logprobs, records,
                                                  fill_prediction="generation" not in methods)
    finally:
        if was_training:
            edit.train()
    baseline = getattr(task, "majority_rate", None)  # user classification data: the majority-class rate
    rate = baseline(list(examples)) if baseline is not None else None
    if rate is not None:
        for values in metrics.values():
            values["majority_rate"] = rate
    return EvalResult(metrics, records, time.monotonic() - start)


def top_answer_share(records: Sequence[dict[str, Any]]) -> float | None:
    """Share (%) of the items given the most frequent prediction: near 100 means the model answers the same label
    whatever the input (a collapse that accuracy alone hides when the labels are unbalanced). None when the gold
    answers are not a small label set (at most LABEL_SET_MAX values: option texts differ per item) or no records."""
    if not records or len({str(r["gold"]) for r in records}) > LABEL_SET_MAX:
        return None
    counts = Counter(str(r["prediction"]) for r in records)
    return 100.0 * max(counts.values()) / len(records)


def option_length(option: str) -> int:
    """Characters ``acc_norm`` divides by: the option without the one space before a cloze option (at least 1)."""
    return max(len(option.removeprefix(" ")), 1)


def _rank_options(examples: Sequence[Example], requests: Sequence[Sequence[tuple[str, str]]],
                  logprobs: list[list[float]], records: list[dict[str, Any]], fill_prediction: bool) -> dict[str, float]:
    correct, correct_norm = [], []
    for example, pairs, sums, record in zip(examples, requests, logprobs, records):
        normalized = [s / option_length(option) for s, (_, option) in zip(sums, pairs)]
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
