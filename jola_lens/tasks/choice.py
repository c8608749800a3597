"""Classification tasks: items with labelled options, the two answer formulations, parsing and accuracy.

Formulations (the `formulation` argument of every classification task):
* "label": the target is the option's label ("answer2", "true", "solution1", "C"); `choices` are the labels.
* "text": the target is the option's text after the listed options; `choices` are the option texts, and the
  instruction's final "Answer format: ..." line asks for the text of the correct option instead. Tasks whose
  labels are their texts (BoolQ true/false, SST-2, RTE) are identical in both formulations.
* "cloze": the target is the option's text, and the instruction is the question alone: no listed options, no
  answer-format line (as lm-eval scores multiple choice). With likelihood scoring this removes the bias towards
  the first listed option that small models show; tasks whose labels are their texts keep their instruction.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

from jola_lens.tasks.base import CLASSIFICATION_MAX_NEW_TOKENS, Task
from jola_lens.tasks.examples import Example
from jola_lens.tasks.formats import ANSWER_FORMAT, cloze_instruction, text_instruction
from jola_lens.tasks.parsing import parse_label, parse_option_text
from jola_lens.tasks.scoring import score_choices

FORMULATIONS = ("label", "text", "cloze")


@dataclass(frozen=True)
class ChoiceItem:
    """A classification item before formulation: the label-formulation instruction and both option views.
    ``question``: the instruction without its options, for the cloze formulation (default: cut from
    ``instruction``, see `formats.cloze_instruction`)."""

    id: str
    instruction: str
    labels: tuple[str, ...]
    texts: tuple[str, ...]
    answer_index: int
    question: str | None = None

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.texts) or len(self.labels) < 2:
            raise ValueError(f"{self.id}: need >= 2 options with as many labels as texts")
        if not 0 <= self.answer_index < len(self.labels):
            raise ValueError(f"{self.id}: answer index {self.answer_index} out of range")

    def to_example(self, formulation: str) -> Example:
        instruction = self.instruction
        if formulation == "cloze" and self.labels != self.texts:
            instruction = self.question or cloze_instruction(instruction, self.labels)
        elif formulation == "text" and self.labels != self.texts and ANSWER_FORMAT in instruction:
            instruction = text_instruction(instruction)
        choices = self.labels if formulation == "label" else self.texts
        target = choices[self.answer_index]
        return Example(id=self.id, instruction=instruction, target=target, choices=choices,
                       answer_index=self.answer_index, references=(target,))


def check_formulation(formulation: str) -> str:
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}")
    return formulation


def check_no_template(task: str, template: str | None) -> None:
    if template is not None:
        raise ValueError(f"{task} has a single prompt format; template= is only for GEM tasks")


class ChoiceTask(Task):
    """Base of the classification tasks: subclasses provide `ChoiceItem`s per split."""

    kind = "classification"
    max_new_tokens = CLASSIFICATION_MAX_NEW_TOKENS

    def __init__(self, formulation: str = "label") -> None:
        super().__init__()
        self.formulation = check_formulation(formulation)

    @abstractmethod
    def _items(self, split: str) -> list[ChoiceItem]:
        """The items of one available split."""

    def _load(self, split: str) -> list[Example]:
        return [item.to_example(self.formulation) for item in self._items(split)]

    def parse(self, response: str, example: Example) -> str | None:
        """The first option label (label formulation) or option text (text, cloze) in the response's
        first line, see `jola_lens.tasks.parsing`."""
        if self.formulation == "label":
            return parse_label(response, example.choices)
        return parse_option_text(response, example.choices)

    def score(self, responses: list[str], examples: list[Example]) -> tuple[dict[str, float], list[dict]]:
        """Accuracy (percent) of the parsed answers, see `scoring.score_choices`."""
        return score_choices(self.parse, responses, examples)

