"""Metrics against hand-computed values, multi-reference behaviour, and task scoring records."""

from __future__ import annotations

import math

import pytest

from jola_lens.tasks import Example
from jola_lens.tasks.metrics import generation_metrics, rouge
from jola_lens.tasks.scoring import score_choices, score_generation


def test_identical_texts_score_100():
    corpus, items = generation_metrics(["the cat sat on the mat"], [["the cat sat on the mat"]])
    assert corpus == pytest.approx({"bleu": 100.0, "chrf": 100.0, "rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0})
    assert items[0]["bleu"] == pytest.approx(100.0)


def test_bleu_by_hand():
    # clipped n-gram precisions 5/6, 3/5, 2/4, 1/3; equal lengths so no brevity penalty
    corpus, _ = generation_metrics(["the cat sat on the mat"], [["the cat sat on a mat"]])
    expected = 100 * math.exp((math.log(5 / 6) + math.log(3 / 5) + math.log(2 / 4) + math.log(1 / 3)) / 4)
    assert corpus["bleu"] == pytest.approx(expected, abs=1e-6)


def test_rouge_by_hand():
    scores = rouge("the cat sat", ["the cat ran"])
    # unigrams: 2 of 3 both ways; bigrams: 1 of 2; LCS "the cat" = 2 of 3
    assert scores == pytest.approx({"rouge1": 200 / 3, "rouge2": 50.0, "rougeL": 200 / 3})


def test_every_reference_counts():
    predictions = ["the black cat sat on the mat", "a small dog barked at the moon"]
    references = [["a cat was lying on a rug", "the black cat sat on the mat"], ["a small dog barked at the moon"]]
    corpus, items = generation_metrics(predictions, references)
    assert corpus["bleu"] == pytest.approx(100.0)  # sacrebleu counts n-grams against every reference
    assert corpus["chrf"] == pytest.approx(100.0)
    assert items[0]["rouge1"] == pytest.approx(100.0)  # rouge takes the best reference
    single, _ = generation_metrics(predictions, [references[0][:1], references[1]])
    assert single["bleu"] < corpus["bleu"]


def test_score_records():
    examples = [Example("a", "q1", "answer1", ("answer1", "answer2"), 0, ("answer1",)),
                Example("b", "q2", "answer2", ("answer1", "answer2"), 1, ("answer2",)),
                Example("c", "q3", "answer1", ("answer1", "answer2"), 0, ("answer1",))]
    from jola_lens.tasks.parsing import parse_label

    metrics, records = score_choices(lambda r, e: parse_label(r, e.choices), ["answer1", "answer1", "no idea"],
                                     examples)
    assert metrics == {"accuracy": pytest.approx(100 / 3), "n": 3.0, "unparsed": 1.0}
    assert [r["correct"] for r in records] == [True, False, False]
    assert records[1] == {"id": "b", "response": "answer1", "prediction": "answer1", "gold": "answer2",
                          "correct": False}
    generated = [Example("g", "x", "a b c", references=("a b c", "x y z"))]
    metrics, records = score_generation(lambda r, e: r.strip(), ["a b c\nignored"], generated)
    assert metrics["n"] == 1.0 and records[0]["references"] == ["a b c", "x y z"]
    with pytest.raises(ValueError, match="responses"):
        score_choices(lambda r, e: r, ["x"], examples)
