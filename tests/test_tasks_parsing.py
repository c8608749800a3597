"""Answer parsing: labels, MMLU-Pro letters and option texts."""

from __future__ import annotations

import pytest

from jola_lens.tasks.parsing import first_line, parse_label, parse_letter, parse_option_text

LETTERS = tuple("ABCDEFGHIJ")


@pytest.mark.parametrize(("response", "letter"), [
    ("The answer is (C)", "C"), ("the answer is C.", "C"), ("Answer: C", "C"), ("Answer: (D) because", "D"),
    ("C) 42", "C"), ("(C)", "C"), ("C. the mitochondria", "C"), ("C", "C"), (" **B**", "B"), ("[E]", "E"),
    ("I think the answer is B", "B"), ("A good choice is (D)", "D"), ("I believe (J) is right", "J"),
    ("The correct answer is: H", "H"), ("\n\nAnswer: G\nThe answer is (A)", "G"),
])
def test_letter_parser(response, letter):
    assert parse_letter(response, LETTERS) == letter


@pytest.mark.parametrize("response", ["I am not sure", "A good question.", "Because of DNA", "", "The answer is (K)"])
def test_letter_parser_refuses_stray_capitals(response):
    assert parse_letter(response, LETTERS) is None


def test_letter_parser_respects_the_item_options():
    assert parse_letter("The answer is (E)", LETTERS[:4]) is None
    assert parse_letter("The answer is (E), no, (B)", LETTERS[:4]) == "B"


@pytest.mark.parametrize(("response", "labels", "expected"), [
    ("the correct answer is answer3", ("answer1", "answer2", "answer3", "answer4"), "answer3"),
    ("Answer2 and answer1", ("answer1", "answer2"), "answer2"),
    ("True.", ("true", "false"), "true"),
    ("it is false, not true", ("true", "false"), "false"),
    ("untrue", ("true", "false"), None),
    ("solution2\nsolution1", ("solution1", "solution2"), "solution2"),
    ("ending10", ("ending1", "ending2"), None),
])
def test_label_parser_takes_the_first_label(response, labels, expected):
    assert parse_label(response, labels) == expected


@pytest.mark.parametrize(("response", "expected"), [
    ("Not entailment.", "not entailment"), ("entailment", "entailment"),
    ("I'd say: the Sun!", "the sun"), ("the moon or the sun", "the moon"), ("mars", None),
])
def test_option_text_parser(response, expected):
    options = ("entailment", "not entailment", "the moon", "the sun")
    assert parse_option_text(response, options) == expected


def test_first_line_skips_blank_lines():
    assert first_line("\n  \n answer1 \nanswer2") == "answer1"
    assert first_line("   ") == ""
