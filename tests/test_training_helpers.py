"""Shared builders for the training, evaluation and CLI tests: a tiny synthetic task and model folder."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import build_tiny_model

from jola_lens.tasks import get_task
from jola_lens.tasks.encoding import encode_example

LABELS = ("w10", "w11")
CUES = {"w10": "w1", "w11": "w2"}


def write_tiny_task(path: Path, n: int = 120, seed: int = 0) -> Path:
    """A JSONL classification task over the tiny tokenizer's words: the first word gives the answer away."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(n):
            label = rng.choice(LABELS)
            words = " ".join(f"w{rng.randrange(20, 120)}" for _ in range(6))
            record = {"instruction": f"{CUES[label]} {words}\n\nAnswer format: {'/'.join(LABELS)}", "answer": label}
            handle.write(json.dumps(record) + "\n")
    return path


def encoded_splits(tokenizer, task_path: Path, train_size: int = 32, val_size: int = 16, seed: int = 42):
    """(train, validation) EncodedExamples of the tiny task with plain prompts."""
    task = get_task(str(task_path))
    splits = task.splits(train_size=train_size, val_size=val_size, seed=seed)
    return tuple([encode_example(tokenizer, task.prompt(e, "plain"), e.target, 64) for e in examples]
                 for examples in (splits.train, splits.validation))


@pytest.fixture(scope="session")
def tiny_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_task(tmp_path_factory.mktemp("tiny_task") / "task.jsonl")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> Path:
    """A saved tiny llama + tokenizer folder that load_model (and so the CLI) can read."""
    directory = tmp_path_factory.mktemp("tiny_model")
    build_tiny_model("llama").save_pretrained(directory)
    tiny_tokenizer.save_pretrained(directory)
    return directory
