"""Seeded train/validation sampling: deterministic, disjoint, clear errors."""

from __future__ import annotations

import pytest

from jola_lens.tasks import Example, check_no_overlap, get_task, task_from_file
from jola_lens.tasks.splits import carve, sample_splits


def _examples(n: int, prefix: str = "q") -> list[Example]:
    return [Example(f"{prefix}{i}", f"{prefix} question {i}?", "yes", references=("yes",)) for i in range(n)]


def test_same_seed_same_examples(data_dir):
    first = get_task("commonsense/ARC-c", data_dir=data_dir).splits(train_size=20, val_size=10, seed=42)
    again = get_task("arc_challenge", data_dir=data_dir).splits(train_size=20, val_size=10, seed=42)
    other = get_task("commonsense/ARC-c", data_dir=data_dir).splits(train_size=20, val_size=10, seed=7)
    assert [e.id for e in first.train] == [e.id for e in again.train]
    assert [e.id for e in first.validation] == [e.id for e in again.validation]
    assert [e.id for e in first.train] != [e.id for e in other.train]
    assert not {e.id for e in first.train} & {e.id for e in first.validation}
    assert len(first.test) == 1172
    check_no_overlap(first.train + first.validation, first.test)


def test_pool_items_that_occur_in_test_are_dropped(caplog):
    pool, test = _examples(10), _examples(3)  # q0..q2 occur in both
    splits = sample_splits("toy", pool, test, train_size=5, val_size=2, seed=0)
    assert {e.id for e in splits.train + splits.validation} <= {f"q{i}" for i in range(3, 10)}
    assert "dropped 3 training-pool item(s)" in caplog.text


def test_duplicate_inputs_never_straddle_train_and_validation():
    pool = [Example(f"p{i}", f"input {i // 3}", f"ref {i}", references=(f"ref {i}",)) for i in range(30)]
    splits = sample_splits("toy", pool, _examples(1, "t"), train_size=6, val_size=4, seed=1)
    inputs = [e.instruction for e in splits.train + splits.validation]
    assert len(set(inputs)) == 10


def test_too_large_train_size_says_how_many_exist(data_dir):
    with pytest.raises(ValueError, match=r"training pool has 190 distinct examples.*train_size=200"):
        get_task("mmlu_pro/history", data_dir=data_dir).splits(train_size=200, val_size=200)
    assert len(get_task("mmlu_pro/history", data_dir=data_dir).splits(100, 90).validation) == 90


@pytest.mark.parametrize(("train_size", "val_size"), [(0, 1), (-1, 5), (5, -1), (2.5, 1), (True, 1)])
def test_invalid_sizes(train_size, val_size):
    with pytest.raises(ValueError, match="must be"):
        sample_splits("toy", _examples(10), _examples(1, "t"), train_size=train_size, val_size=val_size, seed=0)


def test_empty_split_is_a_clear_error(tmp_path):
    path = tmp_path / "tiny.jsonl"
    path.write_text('{"instruction": "a", "output": "b", "split": "train"}\n'
                    '{"instruction": "c", "output": "d", "split": "test"}\n')
    task = task_from_file(path)
    assert task.available_splits() == ("train", "test")
    with pytest.raises(ValueError, match="has no 'validation' split"):
        task.load_split("validation")
    with pytest.raises(ValueError, match="training pool has 1 distinct examples, fewer than train_size=2"):
        task.splits(train_size=2, val_size=1)
    assert task.splits(train_size=1, val_size=1).validation == []  # validation shrinks to what is left
    four = tmp_path / "four.jsonl"  # carved 70/10/20: 3 train, 0 validation, 1 test
    four.write_text("".join(f'{{"input": "q{i}", "output": "a{i}"}}\n' for i in range(4)))
    with pytest.raises(ValueError, match="'validation' split from local:.* is empty"):
        task_from_file(four).load_split("validation")


def test_carve_is_fixed_and_complete():
    items = list(range(100))
    pool, rest = carve(items, 30)
    assert carve(items, 30) == (pool, rest) and sorted(pool + rest) == items and len(pool) == 30
    assert pool == sorted(pool) and rest == sorted(rest)
