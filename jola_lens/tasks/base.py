"""The `Task` base class: split loading and caching, seeded train/validation sampling, prompting."""

from __future__ import annotations

from abc import ABC, abstractmethod

from jola_lens.tasks.examples import Example, TaskSplits
from jola_lens.tasks.prompts import render_prompt
from jola_lens.tasks.splits import sample_splits

SPLIT_NAMES = ("train", "validation", "test")
CLASSIFICATION_MAX_NEW_TOKENS = 16
GENERATION_MAX_NEW_TOKENS = 64


class Task(ABC):
    """A benchmark task: loads examples from one data source, parses and scores model responses.

    Subclasses set the attributes below and implement `available_splits`, `_load`, `parse` and `score`.
    A task reads all its splits from the one source it was built with, so sources never mix inside a task.
    """

    name: str
    family: str
    kind: str
    formulation: str
    source: str
    max_new_tokens: int

    def __init__(self) -> None:
        self._cache: dict[str, tuple[Example, ...]] = {}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r}, "
                f"formulation={self.formulation!r}, source={self.source!r})")

    @abstractmethod
    def available_splits(self) -> tuple[str, ...]:
        """The split names `load_split` accepts for this task and source."""

    @abstractmethod
    def _load(self, split: str) -> list[Example]:
        """Read one available split (called once per split; the result is cached)."""

    @abstractmethod
    def parse(self, response: str, example: Example) -> str | None:
        """The answer predicted by `response` (normalized), or None when no valid answer is found."""

    @abstractmethod
    def score(self, responses: list[str], examples: list[Example]) -> tuple[dict[str, float], list[dict]]:
        """Corpus metrics (percentages, 0-100) and one record per item."""

    def load_split(self, split: str) -> list[Example]:
        """All examples of `split` ("train", "validation" or "test") as a new list."""
        if split not in SPLIT_NAMES:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLIT_NAMES}")
        available = self.available_splits()
        if split not in available:
            raise ValueError(f"{self.name} has no {split!r} split from {self.source}; "
                             f"available: {', '.join(available)}")
        if split not in self._cache:
            examples = tuple(self._load(split))
            if not examples:
                raise ValueError(f"{self.name}: the {split!r} split from {self.source} is empty")
            self._cache[split] = examples
        return list(self._cache[split])

    def splits(self, train_size: int = 200, val_size: int = 200, seed: int = 42) -> TaskSplits:
        """`train_size` training and `val_size` validation examples drawn (disjoint, seeded) from the
        training pool, plus the full test set. Pool items whose instruction also occurs in the test set are
        dropped first, so no split overlaps the test set."""
        return sample_splits(self.name, self.load_split("train"), self.load_split("test"),
                             train_size=train_size, val_size=val_size, seed=seed)

    def prompt(self, example: Example, style: str = "alpaca", tokenizer=None) -> str:
        """`example.instruction` wrapped in a prompt template (see `render_prompt`)."""
        return render_prompt(example.instruction, style=style, tokenizer=tokenizer)
