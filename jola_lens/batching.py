"""Batches of prompt + target sequences: right padding, labels -100 on prompt and padding, seeded order.

With length grouping (`epoch_batches(..., group_by_length=True)`) each epoch's seeded order is cut into runs of
`GROUP_BATCHES` batches, each run sorted by length before it is cut into batches, and the batches are then
shuffled: every example once per epoch, a pure function of (seed, epoch), much less padding.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Int
from torch import Tensor

from jola_lens.tasks.encoding import IGNORE_INDEX, EncodedExample

GROUP_BATCHES = 16
"""How many batches' worth of examples are sorted by length together when batches are grouped by length."""


@dataclass(frozen=True)
class Batch:
    """Right-padded token ids, their attention mask, and labels (-100 wherever no loss is taken)."""

    input_ids: Int[Tensor, "batch pos"]
    attention_mask: Int[Tensor, "batch pos"]
    labels: Int[Tensor, "batch pos"]

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device))


def collate(encoded: Sequence[EncodedExample], pad_token_id: int) -> Batch:
    """Stack encoded examples into one right-padded batch; padding gets label -100 and attention 0."""
    if not encoded:
        raise ValueError("cannot collate an empty batch")
    width = max(len(e.input_ids) for e in encoded)
    input_ids = torch.full((len(encoded), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, example in enumerate(encoded):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.as_tensor(example.input_ids)
        labels[row, :n] = torch.as_tensor(example.labels)
        attention_mask[row, :n] = 1
    return Batch(input_ids, attention_mask, labels)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled example order of one epoch: a pure function of (seed, epoch), so a resumed run
    replays exactly the order an uninterrupted one would have used."""
    order = list(range(n))
    random.Random(f"jola-epoch:{seed}:{epoch}").shuffle(order)
    return order


def chunks(indices: Sequence[int], size: int) -> list[list[int]]:
    """Consecutive groups of ``size`` indices (the last one may be shorter)."""
    return [list(indices[i:i + size]) for i in range(0, len(indices), size)]


def epoch_batches(lengths: Sequence[int], size: int, seed: int, epoch: int,
                  group_by_length: bool = False) -> list[list[int]]:
    """The batches (example indices) of one epoch: consecutive ``size`` examples of `epoch_order`, or with
    ``group_by_length`` examples of similar length together (see the module doc)."""
    order = epoch_order(len(lengths), seed, epoch)
    if not group_by_length:
        return chunks(order, size)
    runs = chunks(order, size * GROUP_BATCHES)
    batches = [batch for run in runs for batch in chunks(sorted(run, key=lengths.__getitem__), size)]
    random.Random(f"jola-length-groups:{seed}:{epoch}").shuffle(batches)
    return batches


def padding_share(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Share of padding among the token slots of ``batches`` (each padded to its longest example)."""
    slots = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    return 1 - sum(lengths[i] for batch in batches for i in batch) / slots


def length_groups(lengths: Sequence[int], size: int) -> list[list[int]]:
    """Indices grouped ``size`` at a time in order of length, so each batch pads little."""
    return chunks(sorted(range(len(lengths)), key=lengths.__getitem__), size)
