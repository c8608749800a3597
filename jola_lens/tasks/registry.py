"""Task names a user can type: canonical names ("commonsense/ARC-c"), lenient aliases, close-match errors.

Names are matched after lowercasing and dropping everything but letters and digits, so "ARC-Challenge",
"arc_challenge" and "commonsense/arc-c" all find "commonsense/ARC-c". A bare subtask name ("boolq",
"history") works when only one family has it. User data needs no registration: "hf:NAME[:CONFIG][@SPLIT]",
"file:<path>", a .csv/.tsv/.json/.jsonl/.parquet path or a `save_to_disk` folder loads it with `task_from_file`.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jola_lens.tasks.base import Task
from jola_lens.tasks.files import RECORD_SUFFIXES

logger = logging.getLogger(__name__)

TaskFactory = Callable[..., Task]

FAMILY_ALIASES = {"commonsensereasoning": "commonsense", "cs": "commonsense", "mmlu": "mmlupro",
                  "extras": "extra", "embedded": "extra"}
FILE_SUFFIXES = RECORD_SUFFIXES  # data files a task name may be
REGISTERED_DATA_OPTIONS = ("on_bad_record", "template")  # the data options registered tasks accept

_FACTORIES: dict[str, TaskFactory] = {}
_FULL: dict[str, str] = {}
_BARE: dict[str, set[str]] = {}


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _full_key(family: str, sub: str) -> str:
    family_key = _key(family)
    return f"{FAMILY_ALIASES.get(family_key, family_key)}/{_key(sub)}"


def register_task(name: str, factory: TaskFactory) -> None:
    """Make `get_task(name)` call `factory`. The factory receives those of the keyword arguments
    data_dir, source, formulation, template and on_bad_record that its signature accepts."""
    register_aliases(name, factory, ())


def register_aliases(name: str, factory: TaskFactory, aliases: Iterable[str]) -> None:
    """`register_task` plus alternative subtask spellings (e.g. "arc_challenge" for "commonsense/ARC-c")."""
    if not name or not _key(name):
        raise ValueError(f"invalid task name {name!r}")
    if name in _FACTORIES:
        logger.warning("task %s is registered again; the new factory replaces the old one", name)
    _FACTORIES[name] = factory
    family, _, sub = name.rpartition("/")
    for alias in (sub, *aliases):
        _FULL[_full_key(family, alias)] = name
        _BARE.setdefault(_key(alias), set()).add(name)


def list_tasks() -> list[str]:
    """Canonical names of all registered tasks, in registration order."""
    return list(_FACTORIES)


def resolve_name(name: str) -> str:
    """The canonical name for `name`; ValueError listing close matches when there is none."""
    if name in _FACTORIES:
        return name
    family, slash, sub = name.partition("/")
    if slash:
        found = _FULL.get(_full_key(family, sub))
        if found:
            return found
    else:
        candidates = _BARE.get(_key(name), set())
        if len(candidates) == 1:
            return next(iter(candidates))
        if candidates:
            raise ValueError(f"task name {name!r} is ambiguous: {', '.join(sorted(candidates))}")
    close = difflib.get_close_matches(name.lower(), [n.lower() for n in _FACTORIES], n=5, cutoff=0.5)
    close += difflib.get_close_matches(name.split("/")[-1].lower(),
                                       [n.rpartition("/")[2].lower() for n in _FACTORIES], n=5, cutoff=0.6)
    suggestions = list(dict.fromkeys(n for n in _FACTORIES for c in close
                                     if c in (n.lower(), n.rpartition("/")[2].lower())))
    hint = f" Did you mean: {', '.join(suggestions[:5])}?" if suggestions else ""
    raise ValueError(f"unknown task {name!r}.{hint} See list_tasks() for all names.")


def get_task(name: str, *, subtask: str | None = None, data_dir: str | os.PathLike | None = None,
             source: str = "auto", formulation: str = "label", template: str | None = None,
             on_bad_record: str = "error", data_options: Mapping[str, Any] | None = None) -> Task:
    """Build a task by name (`get_task("commonsense", subtask="ARC-c")` == `get_task("commonsense/ARC-c")`).

    source: "auto" (local files under data_dir/$JOLA_DATA_DIR, else the embedded copy, else the hub),
    "local", "embedded" or "hub". formulation: "label", "text" or "cloze" (classification tasks, see `choice.py`).
    template: a PromptSource template name (GEM tasks). on_bad_record: "error" raises on a malformed record,
    "skip" leaves it out and counts it. User data (see the module docstring) takes the `task_from_file`
    keywords in `data_options` (`DataOptions`: text_field, label_field, choices, ...); registered tasks take only
    its on_bad_record and template.
    """
    from jola_lens.tasks.user_sources import is_user_data

    full = f"{name}/{subtask}" if subtask else name
    options = dict(data_options or {})
    if is_user_data(full):
        from jola_lens.tasks.custom import task_from_file

        if template is not None:
            options.setdefault("template", template)
        return task_from_file(full, formulation=formulation, **({"on_bad_record": on_bad_record} | options))
    canonical = resolve_name(full)
    misplaced = sorted(set(options) - set(REGISTERED_DATA_OPTIONS))
    if misplaced:
        raise ValueError(f"{', '.join('--' + k for k in misplaced)}: for your own data (a file, a save_to_disk "
                         f"folder or hf:NAME); {canonical} is a registered task that reads its own fields")
    return _call(_FACTORIES[canonical], {"data_dir": data_dir, "source": source, "formulation": formulation,
                                         "template": options.get("template", template),
                                         "on_bad_record": options.get("on_bad_record", on_bad_record)})


_DEFAULTS = {"data_dir": None, "source": "auto", "formulation": "label", "template": None, "on_bad_record": "error"}


def _call(factory: TaskFactory, kwargs: dict) -> Task:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return factory(**kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return factory(**kwargs)
    unsupported = [k for k, v in kwargs.items() if k not in parameters and v != _DEFAULTS[k]]
    if unsupported:
        raise ValueError(f"this task's factory does not accept {', '.join(unsupported)}")
    return factory(**{k: v for k, v in kwargs.items() if k in parameters})
