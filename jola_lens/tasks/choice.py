"""Classification tasks: items with labelled options, the two answer formulations, parsing and accuracy.

Formulations (the `formulation` argument of every classification task):
* "label": the target is the option's label ("answer2", "true", "solution1", "C"); `choices` are the labels.
* "text": the target is the option's text after the listed options; `choices` are the option texts, and the
  instruction's final "Answer format: ..." line asks for the text of the correct option instead. Tasks whose
  labels are their texts (BoolQ true/false, SST-2, RTE) are identical in both formulations.
* "cloze": the item as lm-evaluation-harness 0.4.13 defines it, for tasks that give their items a `Cloze`
  (the commonsense tasks, see `commonsense.py`): the instruction is lm-eval's prompt (``doc_to_text``, e.g.
  "Question: <q>\nAnswer:") and each option is lm-eval's continuation, target delimiter included (" <text>");
  WinoGrande scores the rest of the sentence after each option (``option_instructions``). Tasks without a
  `Cloze` show the question alone (no listed options, no answer-format line) and the option text after it;
  tasks whose labels are their texts keep their instruction. With likelihood scoring this removes the bias
  towards the first listed option that small models show.
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
class Cloze:
    """An item as lm-evaluation-harness scores it (``output_type: multiple_choice``), one entry per option in
    one of the two fields and a single shared entry in the other:

    * ``contexts``: the prompt (``doc_to_text``), shared; or one per option where the option goes into the
      prompt (WinoGrande: the sentence up to the blank, filled with the option);
    * ``continuations``: the scored text after the prompt with the target delimiter (" " + option), one per
      option; or shared (WinoGrande: " " + the rest of the sentence after the blank).
    """

    contexts: tuple[str, ...]
    continuations: tuple[str, ...]

    def __post_init__(self) -> None:
        sizes = (len(self.contexts), len(self.continuations))
        if min(sizes) != 1 or max(sizes) < 2:
            raise ValueError(f"a Cloze needs one shared context or one shared continuation and one entry per "
                             f"option (>= 2) in the other field; got {sizes[0]} context(s) and {sizes[1]} "
                             "continuation(s)")

    @property
    def n_options(self) -> int:
        return max(len(self.contexts), len(self.continuations))


@dataclass(frozen=True)
class ChoiceItem:
    """A classification item before formulation: the label-formulation instruction and both option views.
    ``question``: the instruction without its options, for the cloze formulation of tasks without a ``cloze``
    (default: cut from ``instruction``, see `formats.cloze_instruction`); ``cloze``: the item as lm-eval
    defines it (the cloze formulation then follows it)."""

    id: str
    instruction: str
    labels: tuple[str, ...]
    texts: tuple[str, ...]
    answer_index: int
    question: str | None = None
    cloze: Cloze | None = None

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.texts) or len(self.labels) < 2:
            raise ValueError(f"{self.id}: need >= 2 options with as many labels as texts")
        if not 0 <= self.answer_index < len(self.labels):
            raise ValueError(f"{self.id}: answer index {self.answer_index} out of range")
        if self.cloze is not None and self.cloze.n_options != len(self.labels):
            raise ValueError(f"{self.id}: {len(self.labels)} options but the cloze form has {self.cloze.n_options}")

    def to_example(self, formulation: str) -> Example:
        if formulation == "cloze" and self.cloze is not None:
            return self._cloze_example(self.cloze)
        instruction = self.instruction
        if formulation == "cloze" and self.labels != self.texts:
            instruction = self.question or cloze_instruction(instruction, self.labels)
        elif formulation == "text" and self.labels != self.texts and ANSWER_FORMAT in instruction:
            instruction = text_instruction(instruction)
        choices = self.labels if formulation == "label" else self.texts
        target = choices[self.answer_index]
        return Example(id=self.id, instruction=instruction, target=target, choices=choices,
                       answer_index=self.answer_index, references=(target,))

    def _cloze_example(self, cloze: Cloze) -> Example:
        if len(cloze.contexts) == 1:
            target = cloze.continuations[self.answer_index]
            return Example(id=self.id, instruction=cloze.contexts[0], target=target, choices=cloze.continuations,
                           answer_index=self.answer_index, references=(target,))
        target = cloze.continuations[0]
        return Example(id=self.id, instruction=cloze.contexts[self.answer_index], target=target, choices=self.texts,
                       answer_index=self.answer_index, references=(target,), option_instructions=cloze.contexts)


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

