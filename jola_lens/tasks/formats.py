"""The LLM-Adapters instruction format (Hu et al. 2023), rendered from fields and parsed back.

An instruction is `lead + body`, then the options (`Answer1: text Answer2: text`, each label capitalized),
then `Answer format: answer1/answer2`. The separators differ per task exactly as in the LLM-Adapters files:

    ARC / OBQA / SIQA:  "<lead><question>\\n\\nAnswer1: a Answer2: b\\n\\nAnswer format: answer1/answer2"
    PIQA:               options separated by "\\n\\n" ("Solution1: a\\n\\nSolution2: b")
    WinoGrande:         a space, not "\\n\\n", before "Answer format"
    BoolQ:              no options ("...question: <q>?\\n\\nAnswer format: true/false")
    HellaSwag:          "Please choose the correct ending to complete the given sentence: <activity>: <ctx>"
                        "\\n\\nEnding1: a Ending2: b Ending3: c Ending4: d\\n\\nAnswer format: ending1/.../ending4"

The HellaSwag template is the one of the LLM-Adapters HellaSwag files (their file could not be obtained; the
template is the one their published outputs show). The same format is used for the extra tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ANSWER_FORMAT = "Answer format: "
TEXT_ANSWER_FORMAT = "Answer format: the text of the correct option"

LEAD_ANSWER = "Please choose the correct answer to the question: "
LEAD_SOLUTION = "Please choose the correct solution to the question: "
LEAD_ENDING = "Please choose the correct ending to complete the given sentence: "
LEAD_BLANK = "Please choose the correct answer to fill in the blank to complete the given sentence: "
LEAD_TRUE_FALSE = "Please answer the following question with true or false, question: "


@dataclass(frozen=True)
class Layout:
    """Separators of one task's LLM-Adapters format."""

    lead: str
    option_sep: str = " "
    format_sep: str = "\n\n"


ANSWER_LAYOUT = Layout(LEAD_ANSWER)
SOLUTION_LAYOUT = Layout(LEAD_SOLUTION, option_sep="\n\n")
ENDING_LAYOUT = Layout(LEAD_ENDING)
BLANK_LAYOUT = Layout(LEAD_BLANK, format_sep=" ")
TRUE_FALSE_LAYOUT = Layout(LEAD_TRUE_FALSE)


def numbered_labels(prefix: str, n: int) -> tuple[str, ...]:
    """("answer1", ..., "answerN") for prefix "answer"."""
    return tuple(f"{prefix}{i}" for i in range(1, n + 1))


def render(layout: Layout, body: str, labels: Sequence[str], texts: Sequence[str] | None = None) -> str:
    """An LLM-Adapters instruction; the options are listed when `texts` is given."""
    parts = [layout.lead + body]
    if texts is not None:
        if len(texts) != len(labels):
            raise ValueError(f"{len(labels)} labels but {len(texts)} option texts")
        options = (f"{_display(label)}: {text}" for label, text in zip(labels, texts))
        parts.append("\n\n" + layout.option_sep.join(options))
    parts.append(layout.format_sep + ANSWER_FORMAT + "/".join(labels))
    return "".join(parts)


def answer_labels(instruction: str) -> tuple[str, ...]:
    """The labels of the final "Answer format: a/b/c" line."""
    _, sep, tail = instruction.rpartition(ANSWER_FORMAT)
    labels = tuple(label.strip() for label in tail.split("/"))
    if not sep or len(labels) < 2 or not all(labels):
        raise ValueError("no 'Answer format: a/b' line at the end of the instruction")
    return labels


def option_texts(instruction: str, labels: Sequence[str]) -> tuple[str, ...]:
    """The option texts listed after "Label1: " ... markers, parsed back from a rendered instruction."""
    end = instruction.rfind(ANSWER_FORMAT)
    markers = [f"{_display(label)}: " for label in labels]
    start = instruction.rfind("\n\n" + markers[0], 0, end)
    if start < 0:
        raise ValueError(f"option {markers[0]!r} not found in the instruction")
    positions = []
    cursor = start
    for marker in markers:
        cursor = instruction.find(marker, cursor, end)
        if cursor < 0:
            raise ValueError(f"option {marker!r} not found in the instruction")
        positions.append(cursor)
        cursor += len(marker)
    bounds = positions[1:] + [end]
    return tuple(instruction[p + len(m):b].strip() for p, m, b in zip(positions, markers, bounds))


def parse_instruction(instruction: str, answer: str) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    """(labels, option texts, answer index) of an LLM-Adapters instruction and its answer label. Tasks
    without listed options (BoolQ) get their labels as texts."""
    labels = answer_labels(instruction)
    if answer not in labels:
        raise ValueError(f"answer {answer!r} is not one of {labels}")
    has_options = instruction.rfind("\n\n" + _display(labels[0]) + ": ") >= 0
    texts = option_texts(instruction, labels) if has_options else labels
    return labels, texts, labels.index(answer)


def cloze_instruction(instruction: str, labels: Sequence[str]) -> str:
    """The instruction for the cloze formulation: the question alone, its listed options and answer-format line
    cut off, so the model scores each option text as a continuation (lm-eval style; no first-option bias from
    the listing). Instructions that list no options (BoolQ true/false) or have no answer-format line (a user's
    own prompt) are kept whole."""
    end = instruction.rfind(ANSWER_FORMAT)
    start = instruction.rfind("\n\n" + _display(labels[0]) + ": ", 0, end) if end >= 0 else -1
    return instruction[:start].rstrip() if start > 0 else instruction


def text_instruction(instruction: str) -> str:
    """The instruction for the text formulation: the final answer-format line asks for the option text."""
    head, sep, _ = instruction.rpartition(ANSWER_FORMAT)
    if not sep:
        raise ValueError("no 'Answer format:' line in the instruction")
    return head + TEXT_ANSWER_FORMAT


def _display(label: str) -> str:
    return label[:1].upper() + label[1:]
