"""The data types every task produces: `Example` and `TaskSplits`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """One item of a task, independent of any prompt template or tokenizer.

    `instruction` is the task text without the prompt template (the LLM-Adapters 'instruction');
    `target` is the training target for the task's formulation. Classification items list their candidate
    targets in `choices` (same formulation as `target`) with `answer_index` pointing at the gold one;
    generation items list every reference in `references` (classification items: `(target,)`).
    `option_instructions` (empty for most tasks) gives each option its own instruction, for items whose options
    go into the prompt and are all scored on the same continuation `target` (WinoGrande's partial scoring in
    the cloze formulation); `instruction` is then the gold option's one and `choices` name the options.
    """

    id: str
    instruction: str
    target: str
    choices: tuple[str, ...] = ()
    answer_index: int | None = None
    references: tuple[str, ...] = ()
    option_instructions: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskSplits:
    """A training sample, a validation sample (both from the training pool) and the full test set."""

    train: list[Example]
    validation: list[Example]
    test: list[Example]
