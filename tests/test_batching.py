"""Length-grouped epoch batches: deterministic per seed and epoch, every example once, less padding."""

from __future__ import annotations

import random

import pytest

from jola_lens.batching import GROUP_BATCHES, chunks, epoch_batches, epoch_order, padding_share

_RNG = random.Random(3)
LENGTHS = [_RNG.randint(20, 300) for _ in range(1000)]


@pytest.mark.parametrize("group", [False, True])
def test_every_example_once_per_epoch_and_deterministic(group):
    for epoch in (1, 2):
        batches = epoch_batches(LENGTHS, 8, seed=42, epoch=epoch, group_by_length=group)
        assert sorted(i for batch in batches for i in batch) == list(range(len(LENGTHS)))
        assert [len(b) for b in batches].count(8) >= len(LENGTHS) // 8 - GROUP_BATCHES
        assert batches == epoch_batches(LENGTHS, 8, seed=42, epoch=epoch, group_by_length=group)
    assert (epoch_batches(LENGTHS, 8, seed=42, epoch=1, group_by_length=group)
            != epoch_batches(LENGTHS, 8, seed=42, epoch=2, group_by_length=group))
    assert (epoch_batches(LENGTHS, 8, seed=42, epoch=1, group_by_length=group)
            != epoch_batches(LENGTHS, 8, seed=7, epoch=1, group_by_length=group))


def test_without_grouping_the_batches_are_the_seeded_order():
    assert epoch_batches(LENGTHS, 8, seed=42, epoch=3) == chunks(epoch_order(len(LENGTHS), 42, 3), 8)


def test_grouping_pads_less_and_keeps_batches_random():
    plain = epoch_batches(LENGTHS, 8, seed=42, epoch=1)
    grouped = epoch_batches(LENGTHS, 8, seed=42, epoch=1, group_by_length=True)
    assert padding_share(LENGTHS, grouped) < padding_share(LENGTHS, plain) / 5
    firsts = [LENGTHS[batch[0]] for batch in grouped]
    assert firsts != sorted(firsts) and firsts != sorted(firsts, reverse=True)  # batch order is shuffled
    # each batch comes from one run of GROUP_BATCHES * 8 consecutive examples of the seeded order
    position = {i: k for k, i in enumerate(epoch_order(len(LENGTHS), 42, 1))}
    assert all(len({position[i] // (8 * GROUP_BATCHES) for i in batch}) == 1 for batch in grouped)


def test_padding_share_by_hand():
    assert padding_share([2, 4, 3, 3], [[0, 1], [2, 3]]) == pytest.approx(1 - 12 / 14)
