"""Tasks: loading benchmark data, prompts, answer targets, parsing and scoring.

Everything a caller needs is re-exported here:
    get_task("commonsense/ARC-c") / get_task("commonsense", subtask="ARC-c"), list_tasks(), register_task()
    task.splits(train_size=200, val_size=200, seed=42) -> TaskSplits(train, validation, test) of Example
    render_prompt(example.instruction) (the paper's Alpaca template), encode_example(tokenizer, prompt, target)
    task.parse(response, example), task.score(responses, examples)
    task_from_file("my.jsonl") for user data, check_no_overlap(train, test) across sources.
To add a task in code, subclass `Task` (or `ChoiceTask` for classification) and `register_task` a factory.
"""

from jola_lens.tasks import commonsense, extras, gem, mmlu_pro  # noqa: F401  (importing registers the tasks)
from jola_lens.tasks.base import Task
from jola_lens.tasks.choice import ChoiceItem, ChoiceTask
from jola_lens.tasks.custom import task_from_file
from jola_lens.tasks.encoding import EncodedExample, encode_example
from jola_lens.tasks.examples import Example, TaskSplits
from jola_lens.tasks.files import BadRecordError
from jola_lens.tasks.hf_data import HubUnavailableError
from jola_lens.tasks.prompts import ALPACA_TEMPLATE, render_prompt
from jola_lens.tasks.registry import get_task, list_tasks, register_task
from jola_lens.tasks.splits import check_no_overlap

__all__ = [
    "ALPACA_TEMPLATE",
    "BadRecordError",
    "ChoiceItem",
    "ChoiceTask",
    "EncodedExample",
    "Example",
    "HubUnavailableError",
    "Task",
    "TaskSplits",
    "check_no_overlap",
    "encode_example",
    "get_task",
    "list_tasks",
    "register_task",
    "render_prompt",
    "task_from_file",
]
