"""Turning a generated response into an answer.

As in the paper, only the first line of a response is read (`first_line`: the first non-empty one). Then:
* `parse_label`: the first of the labels (answer1, true, solution2, ...) found as a whole word, any case;
* `parse_letter`: a multiple-choice letter, read from "answer is (C)" / "Answer: C" first, then from a
  letter that opens the line ("C", "(C)", "C)", "C.", "C:"), then from the first "(C)" anywhere - never from
  an arbitrary capital letter;
* `parse_option_text`: the option whose normalized text equals the normalized response, else the option
  found earliest in it (as whole words; a longer option wins a tie, so "not entailment" beats "entailment").
Each returns the matching entry of its candidate list, or None.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_NON_WORD = re.compile(r"[^0-9a-z]+")


def first_line(response: str) -> str:
    """The first non-empty line of `response`, stripped ("" when there is none)."""
    return next((line.strip() for line in response.splitlines() if line.strip()), "")


def normalize_answer(text: str) -> str:
    """Lowercase words with punctuation and extra whitespace removed."""
    return " ".join(_NON_WORD.split(text.lower())).strip()


def parse_label(response: str, labels: Sequence[str]) -> str | None:
    """The first label of `labels` that occurs as a whole word in the response's first line."""
    if not labels:
        return None
    by_lower = {label.lower(): label for label in labels}
    alternatives = "|".join(re.escape(label) for label in sorted(by_lower, key=len, reverse=True))
    match = re.search(rf"(?<![0-9a-z])(?:{alternatives})(?![0-9a-z])", first_line(response).lower())
    return by_lower[match.group(0)] if match else None


def parse_letter(response: str, letters: Sequence[str]) -> str | None:
    """The option letter (one of `letters`) chosen by the response's first line, see the module doc."""
    valid = "".join(letter for letter in letters if len(letter) == 1 and letter.isupper())
    if not valid:
        return None
    cls = f"[{re.escape(valid)}]"
    line = first_line(response)
    patterns = (
        rf"(?i:answer)(?:\s+(?i:is))?\s*[:\-]?\s*[*\"']*\(?({cls})\)?(?![0-9A-Za-z])",
        rf"^[\s*\"'\[]*\(?({cls})(?:[).:,\]*\"']|\s*$)",
        rf"\(({cls})\)",
    )
    for pattern in patterns:
        match = re.search(pattern, line)
        if match:
            return match.group(1)
    return None


def parse_option_text(response: str, options: Sequence[str]) -> str | None:
    """The option (one of `options`) named by the response's first line, see the module doc."""
    text = normalize_answer(first_line(response))
    if not text:
        return None
    normalized = [normalize_answer(option) for option in options]
    for option, norm in zip(options, normalized):
        if norm and norm == text:
            return option
    padded = f" {text} "
    best: tuple[int, int, str] | None = None
    for option, norm in zip(options, normalized):
        position = padded.find(f" {norm} ") if norm else -1
        if position >= 0 and (best is None or (position, -len(norm)) < (best[0], best[1])):
            best = (position, -len(norm), option)
    return best[2] if best else None
