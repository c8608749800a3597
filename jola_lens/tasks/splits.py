"""Deterministic data partitioning: fixed carving of test sets, seeded train/validation sampling, overlap checks.

Two different seeds are involved. `CARVE_SEED` fixes once and for all which items of a source that has no
separate training data (HellaSwag, MMLU-Pro, XSum, the embedded copies, custom files) form the training pool;
the rest is the test set, identical for every run. The `seed` of `Task.splits` then draws the train and
validation samples from that pool.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence
from typing import TypeVar

from jola_lens.tasks.examples import Example, TaskSplits

logger = logging.getLogger(__name__)

CARVE_SEED = 0
T = TypeVar("T")

_WIKIHOW_MARKERS = re.compile(r"\[(?:header|title|step|substeps)\]", re.IGNORECASE)
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalize_instruction(text: str) -> str:
    """Lowercase alphanumeric words of `text`, with HellaSwag's WikiHow markers ([header], [step], ...) removed.

    Two renderings of the same source item (e.g. the embedded HF copy and a local LLM-Adapters file) map to
    the same key even when they differ in whitespace, punctuation or those markers."""
    return " ".join(_NON_WORD.split(_WIKIHOW_MARKERS.sub(" ", text).lower())).strip()


def carve(items: Sequence[T], pool_size: int, seed: int = CARVE_SEED) -> tuple[list[T], list[T]]:
    """Split `items` into a training pool of `pool_size` items (seeded choice) and the rest, both in
    their original order."""
    if not 0 <= pool_size <= len(items):
        raise ValueError(f"cannot carve a pool of {pool_size} from {len(items)} items")
    chosen = set(random.Random(seed).sample(range(len(items)), pool_size))
    pool = [item for i, item in enumerate(items) if i in chosen]
    rest = [item for i, item in enumerate(items) if i not in chosen]
    return pool, rest


def capped_half(n: int, cap: int) -> int:
    """Training-pool size for a carved source of `n` items: at most `cap`, and at most half of the items."""
    return min(cap, n // 2)


def check_no_overlap(train: Sequence[Example], test: Sequence[Example]) -> None:
    """Raise ValueError if any `train` item has the same normalized instruction as a `test` item.

    Use it whenever training and evaluation examples come from different tasks or sources: e.g. the embedded
    BoolQ/PIQA/SIQA/WinoGrande/HellaSwag items are the very items of the LLM-Adapters test files."""
    test_ids = {normalize_instruction(e.instruction): e.id for e in test}
    clashes = [(e.id, test_ids[key]) for e in train if (key := normalize_instruction(e.instruction)) in test_ids]
    if clashes:
        shown = "; ".join(f"{a} == {b}" for a, b in clashes[:5])
        raise ValueError(f"{len(clashes)} training item(s) also occur in the test set (same instruction), "
                         f"e.g. {shown}. Do not train on one source and test on another copy of the same "
                         f"items (e.g. source='embedded' vs the local LLM-Adapters test files).")


def sample_splits(name: str, pool: Sequence[Example], test: Sequence[Example], *, train_size: int,
                  val_size: int, seed: int) -> TaskSplits:
    """Draw disjoint train/validation samples from `pool` with `random.Random(seed)`; keep all of `test`.

    When the pool holds `train_size` examples but not `val_size` more, the validation sample takes what is left
    (with a warning): it only picks the checkpoint. Too few for `train_size` is an error.

    Pool items whose instruction occurs in `test` are dropped. Pool items sharing one instruction (e.g. the
    several references of one GEM input) count as one candidate, represented by its first item, so the
    train and validation samples never share an input."""
    if isinstance(train_size, bool) or not isinstance(train_size, int) or train_size < 1:
        raise ValueError(f"train_size must be a positive integer, got {train_size!r}")
    if isinstance(val_size, bool) or not isinstance(val_size, int) or val_size < 0:
        raise ValueError(f"val_size must be a non-negative integer, got {val_size!r}")
    test_keys = {normalize_instruction(e.instruction) for e in test}
    groups: dict[str, Example] = {}
    dropped = 0
    for example in pool:
        key = normalize_instruction(example.instruction)
        if key in test_keys:
            dropped += 1
        else:
            groups.setdefault(key, example)
    if dropped:
        logger.warning("%s: dropped %d training-pool item(s) whose instruction also occurs in the test set",
                       name, dropped)
    candidates = list(groups.values())
    if train_size > len(candidates):
        raise ValueError(f"{name}: the training pool has {len(candidates)} distinct examples"
                         f"{f' (after dropping {dropped} that overlap the test set)' if dropped else ''}, fewer "
                         f"than train_size={train_size}; ask for at most {len(candidates)}")
    if train_size + val_size > len(candidates):
        logger.warning("%s: the training pool has %d examples; the validation sample shrinks from %d to %d",
                       name, len(candidates), val_size, len(candidates) - train_size)
        val_size = len(candidates) - train_size
    drawn = random.Random(seed).sample(candidates, train_size + val_size)
    return TaskSplits(train=drawn[:train_size], validation=drawn[train_size:], test=list(test))
