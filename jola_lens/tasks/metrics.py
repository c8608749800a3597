"""Metrics, all as percentages (0-100): accuracy; BLEU and chrF (sacrebleu) and ROUGE-1/2/L F-measure
(rouge-score, Porter stemming) against all references of each item."""

from __future__ import annotations

import functools
from collections.abc import Sequence

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def accuracy(correct: Sequence[bool]) -> float:
    """Share of True values, in percent (0.0 for an empty list)."""
    return 100.0 * sum(correct) / len(correct) if correct else 0.0


@functools.lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """ROUGE-1/2/L F-measure of one prediction: the best over its references."""
    scores = _rouge_scorer().score_multi(list(references), prediction)
    return {name: 100.0 * scores[name].fmeasure for name in ROUGE_TYPES}


def _reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacrebleu's layout: stream k holds every item's k-th reference (None where an item has fewer)."""
    width = max(len(refs) for refs in references)
    return [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]


def generation_metrics(predictions: Sequence[str], references: Sequence[Sequence[str]]
                       ) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Corpus BLEU, chrF and mean ROUGE, plus per-item sentence BLEU, chrF and ROUGE."""
    from sacrebleu.metrics import BLEU, CHRF

    if len(predictions) != len(references) or not predictions:
        raise ValueError(f"need as many predictions as reference lists, got {len(predictions)} and {len(references)}")
    if any(not refs for refs in references):
        raise ValueError("every item needs at least one reference")
    bleu, chrf = BLEU(), CHRF()
    sentence_bleu = BLEU(effective_order=True)
    per_item = []
    for prediction, refs in zip(predictions, references):
        item = rouge(prediction, refs)
        item["bleu"] = sentence_bleu.sentence_score(prediction, list(refs)).score
        item["chrf"] = chrf.sentence_score(prediction, list(refs)).score
        per_item.append(item)
    streams = _reference_streams(references)
    corpus = {"bleu": bleu.corpus_score(list(predictions), streams).score,
              "chrf": chrf.corpus_score(list(predictions), streams).score}
    corpus.update({name: sum(item[name] for item in per_item) / len(per_item) for name in ROUGE_TYPES})
    return corpus, per_item
