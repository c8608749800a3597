"""Scoring parsed responses: exact-match accuracy (classification), BLEU/chrF/ROUGE (generation).

Both return (corpus metrics, per-item records); metrics are percentages (0-100) plus counts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from jola_lens.tasks.examples import Example
from jola_lens.tasks.metrics import accuracy, generation_metrics

Parse = Callable[[str, Example], "str | None"]


def _check_lengths(responses: Sequence[str], examples: Sequence[Example]) -> None:
    if len(responses) != len(examples):
        raise ValueError(f"got {len(responses)} responses for {len(examples)} examples")


def score_choices(parse: Parse, responses: Sequence[str], examples: Sequence[Example]
                  ) -> tuple[dict[str, float], list[dict]]:
    """Accuracy of `parse(response)` against each example's target; records hold id, response, prediction,
    gold and correct. Metrics: accuracy, n, unparsed (responses with no valid answer)."""
    _check_lengths(responses, examples)
    records = []
    for response, example in zip(responses, examples):
        prediction = parse(response, example)
        records.append({"id": example.id, "response": response, "prediction": prediction,
                        "gold": example.target, "correct": prediction == example.target})
    metrics = {"accuracy": accuracy([r["correct"] for r in records]), "n": float(len(records)),
               "unparsed": float(sum(r["prediction"] is None for r in records))}
    return metrics, records


def score_generation(parse: Parse, responses: Sequence[str], examples: Sequence[Example]
                     ) -> tuple[dict[str, float], list[dict]]:
    """Corpus BLEU, chrF and mean ROUGE-1/2/L of `parse(response)` against all references of each example;
    records hold id, response, prediction, gold, references and sentence-level scores."""
    _check_lengths(responses, examples)
    predictions = [parse(r, e) or "" for r, e in zip(responses, examples)]
    corpus, per_item = generation_metrics(predictions, [e.references for e in examples])
    records = [{"id": e.id, "response": r, "prediction": p, "gold": e.target, "references": list(e.references),
                **scores} for r, p, e, scores in zip(responses, predictions, examples, per_item)]
    return dict(corpus, n=float(len(examples))), records
