"""Sweep files: read a YAML sweep, check every setting against ``jola-lens train``'s flags, expand it into trials.

A sweep file has up to three sections; every key in them is a ``jola-lens train`` flag without its dashes::

    settings:            # shared by every trial
      task: extra/SST-2
      num_epoch: 3
    grid:                # every combination of these values
      seed: [1, 2, 3]
      gate_lr: [0.01, 0.1]
    trials:              # more trials, one mapping each (added after the grid's)
      - {task: commonsense/ARC-e, seed: 1}
      - {name: arc-e/seed2, task: commonsense/ARC-e, seed: 2}   # name: its run folder's name (else derived)

Everything is checked here, before any trial starts: unknown sections and settings (named with their line), values
of the wrong type or outside a flag's choices, an empty grid, tasks that do not exist, repeated trials, and the
settings each trial builds (``RunSpec``, ``TrainConfig``, ``MethodConfig`` validate themselves).
Relative paths (a task file, ``data_path``, a head file, a local ``base_model_name`` folder) are read relative to
the sweep file's folder.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from jola_lens.training.config import parse_target_heads

SECTIONS = ("settings", "grid", "trials")
NOT_SWEPT = {
    "output_dir": "the sweep names each trial's run folder",
    "overwrite": "pass --overwrite to `jola-lens sweep`",
    "resume": "a sweep always resumes its unfinished trials",
    "output_file_name": "the sweep writes results.csv",
    "hf_cache_dir": "set HF_HUB_CACHE in the environment",
    "quiet": "pass --quiet to `jola-lens sweep`",
    "help": "",
}
"""``jola-lens train`` flags a sweep file cannot set, and why."""
PATH_SETTINGS = ("task", "data_path", "heads", "base_model_name")


class SweepFileError(ValueError):
    """A sweep file that cannot run: what is wrong, where (file and line), and what to do."""


@dataclass(frozen=True)
class Setting:
    """One ``jola-lens train`` flag as a sweep setting: its value check and default."""

    name: str
    default: Any
    check: Callable[[Any], Any]
    expects: str


@dataclass(frozen=True)
class Trial:
    """One grid point: its folder name and the settings the sweep file gives it (all other flags: defaults).
    ``named``: the name was given in the file (it is kept as it is), not derived from the settings."""

    name: str
    settings: dict[str, Any]
    line: int
    named: bool = False


@dataclass(frozen=True)
class SweepFile:
    """A checked sweep file: where it is, its text, and its trials in order."""

    path: Path
    text: str
    trials: tuple[Trial, ...]
    varying: tuple[str, ...]


# ---- the settings: jola-lens train's flags ------------------------------------------------------------
def _checker(action: argparse.Action) -> tuple[Callable[[Any], Any], str]:
    """A function that returns the checked (and normalised) value, or raises TypeError naming what it expects."""
    if isinstance(action, (argparse._StoreTrueAction, argparse.BooleanOptionalAction)):
        return _typed(lambda v: isinstance(v, bool), "true or false"), "true or false"
    kind = action.type
    if kind is int:
        base, expects = _typed(lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"), "an integer"
    elif kind is float:
        def base(value: Any) -> Any:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError("a number")
            return float(value)
        expects = "a number"
    elif kind is None:
        base, expects = _typed(lambda v: isinstance(v, str), "a string"), "a string"
    elif kind is parse_target_heads:
        def base(value: Any) -> Any:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError("a number of heads or a share of them")
            return value
        expects = "a number of heads or a share of them"
    else:  # a parsing function such as the comma-separated module lists
        def base(value: Any) -> Any:
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return tuple(value)
            if isinstance(value, str):
                return kind(value)
            raise TypeError("a string or a list of strings")
        expects = "a string or a list of strings"
    choices = tuple(action.choices) if action.choices is not None else None

    def check(value: Any) -> Any:
        if value is None:
            if action.default is None:
                return None
            raise TypeError(expects)
        value = base(value)
        if choices is not None and value not in choices:
            raise TypeError(f"one of {', '.join(map(str, choices))}")
        return value

    return check, expects + (f" (one of {', '.join(map(str, choices))})" if choices else "")


def _typed(test: Callable[[Any], bool], expects: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not test(value):
            raise TypeError(expects)
        return value
    return check


@cache
def train_parser() -> argparse.ArgumentParser:
    """The ``jola-lens train`` argument parser, on its own."""
    from jola_lens.cli import add_train_parser

    return add_train_parser(argparse.ArgumentParser(allow_abbrev=False).add_subparsers())


@cache
def sweep_settings() -> dict[str, Setting]:
    """Every setting a sweep file may give: ``jola-lens train``'s flags (their dest names) except :data:`NOT_SWEPT`."""
    settings = {}
    for action in train_parser()._actions:
        if action.dest in NOT_SWEPT or action.dest in settings:
            continue
        check, expects = _checker(action)
        settings[action.dest] = Setting(action.dest, action.default, check, expects)
    return settings


# ---- reading the file ---------------------------------------------------------------------------------
def _lines(node: yaml.Node, path: tuple, out: dict[tuple, int], where: str) -> None:
    """Record the 1-based line of every key and list item under ``node``; refuse repeated keys."""
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key.value)
            line = key.start_mark.line + 1
            if name in seen:
                raise SweepFileError(f"{where}:{line}: {'.'.join(map(str, (*path, name)))} is given twice (first on "
                                     f"line {seen[name]}); keep one")
            seen[name] = line
            out[(*path, name)] = line
            _lines(value, (*path, name), out, where)
            out[(*path, name)] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out, where)


def read_sweep(path: str | os.PathLike) -> SweepFile:
    """Read and check a sweep file (see the module docstring); :class:`SweepFileError` on any problem."""
    path = Path(path)
    if not path.is_file():
        raise SweepFileError(f"sweep file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    return parse_sweep(text, path)


def parse_sweep(text: str, path: Path) -> SweepFile:
    """Check sweep-file ``text`` (read from ``path``, which anchors its relative paths) and expand its trials."""
    where = str(path)
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SweepFileError(f"{where} is not valid YAML: {error}") from error
    lines: dict[tuple, int] = {}
    if node is not None:
        _lines(node, (), lines, where)
    if not isinstance(data, dict):
        raise SweepFileError(f"{where}: a sweep file is a mapping with sections {', '.join(SECTIONS)}; got "
                             f"{type(data).__name__}")

    def at(*key: Any) -> str:
        return f"{where}:{lines.get(key, 1)}"

    for section in data:
        if section not in SECTIONS:
            raise SweepFileError(f"{at(section)}: unknown section {section!r}; a sweep file has {', '.join(SECTIONS)}")
    shared = _section(data, "settings", dict, at)
    grid = _section(data, "grid", dict, at)
    extra = _section(data, "trials", list, at)
    if not grid and not extra:
        raise SweepFileError(f"{where}: the sweep has no trials: give a grid: section (setting: [values, ...]) "
                             "or a trials: list")
    base = {name: _value(name, value, at("settings", name), path) for name, value in shared.items()}
    axes = {}
    for name, values in grid.items():
        if not isinstance(values, list):
            raise SweepFileError(f"{at('grid', name)}: grid: {name} must be a list of values, e.g. [1, 2]; "
                                 f"got {values!r}")
        if not values:
            raise SweepFileError(f"{at('grid', name)}: grid: {name} is an empty list, so the grid is empty; give it "
                                 "at least one value")
        axes[name] = [_value(name, v, at("grid", name, i), path) for i, v in enumerate(values)]
    points = [(dict(zip(axes, combo)), lines.get(("grid",), 1)) for combo in itertools.product(*axes.values())]
    if not axes:
        points = []
    given: dict[int, str] = {}
    for i, entry in enumerate(extra):
        if not isinstance(entry, dict) or not entry:
            raise SweepFileError(f"{at('trials', i)}: each entry of trials: is a mapping of settings, e.g. "
                                 f"{{task: extra/SST-2, seed: 1}}; got {entry!r}")
        if "name" in entry:
            given[len(points)] = _folder_name(entry["name"], at("trials", i, "name"))
        points.append(({name: _value(name, value, at("trials", i, name), path) for name, value in entry.items()
                        if name != "name"}, lines.get(("trials", i), 1)))
    trials = [base | point for point, _ in points]
    varying = varying_settings(trials, first=tuple(dict.fromkeys(key for point, _ in points for key in point)))
    every = _names([{key: t.get(key) for key in varying} for t in trials])
    derived = unique_names([name for i, name in enumerate(every) if i not in given], taken=set(given.values()))
    seen: dict[str, int] = {}
    names_seen: dict[str, int] = {}
    result = []
    for i, (trial, (_, line)) in enumerate(zip(trials, points)):
        key = repr(sorted(trial.items()))
        if key in seen:
            raise SweepFileError(f"{where}:{line}: this trial repeats the one on line {seen[key]} "
                                 f"({_describe(trial)}); remove one of them")
        seen[key] = line
        name = given[i] if i in given else derived.pop(0)
        if name in names_seen:
            raise SweepFileError(f"{where}:{line}: trial name {name!r} is also the name on line {names_seen[name]}; "
                                 "names must differ")
        names_seen[name] = line
        result.append(Trial(name, trial, line, named=i in given))
    for trial in result:
        check_trial(trial, where)
    return SweepFile(path, text, tuple(result), varying)


def varying_settings(trials: list[dict[str, Any]], first: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The settings whose value is not the same in every trial (a setting missing from a trial counts as None),
    those in ``first`` first."""
    keys = dict.fromkeys([*first, *(key for trial in trials for key in trial)])
    return tuple(key for key in keys if len({repr(trial.get(key)) for trial in trials}) > 1)


def _section(data: dict, name: str, kind: type, at: Callable[..., str]) -> Any:
    value = data.get(name)
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise SweepFileError(f"{at(name)}: {name}: must be a {'mapping' if kind is dict else 'list'}, got "
                             f"{type(value).__name__}")
    return value


def _value(name: Any, value: Any, where: str, sweep_path: Path) -> Any:
    """``value`` checked against the flag ``name`` (paths made absolute against the sweep file's folder)."""
    settings = sweep_settings()
    if name not in settings:
        if name in NOT_SWEPT:
            raise SweepFileError(f"{where}: {name} cannot be set in a sweep file: {NOT_SWEPT[name]}")
        import difflib

        close = difflib.get_close_matches(str(name), list(settings), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise SweepFileError(f"{where}: unknown setting {name!r}: sweep settings are `jola-lens train` flags without "
                             f"their dashes.{hint} See `jola-lens train --help`.")
    setting = settings[name]
    try:
        value = setting.check(value)
    except TypeError as error:
        raise SweepFileError(f"{where}: {name} must be {error}, got {value!r} ({type(value).__name__})") from None
    if name in PATH_SETTINGS and isinstance(value, str):
        value = _anchored(name, value, sweep_path.parent)
    return value


def _anchored(name: str, value: str, folder: Path) -> str:
    """A path setting read relative to the sweep file's folder: always for data_path and task files, for a model
    or head file only when it exists there (else it is a hub id or a head list)."""
    from jola_lens.tasks.registry import FILE_SUFFIXES

    path = Path(value.removeprefix("file:")).expanduser()
    always = name == "data_path" or name == "task" and (value.startswith("file:") or
                                                          path.suffix.lower() in FILE_SUFFIXES)
    if path.is_absolute() or not (always or (folder / path).exists()):
        return value
    return str((folder / path).resolve())


def _describe(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items()) or "no settings"


def _name_part(value: Any) -> str:
    text = str(value)
    if isinstance(value, str) and (os.path.isabs(text) or text.startswith((".", "~"))):
        text = Path(text).name
    return re.sub(r"[^A-Za-z0-9_.+=-]+", "-", text) or "none"


def _folder_name(value: Any, where: str) -> str:
    """A trial's own ``name``: a relative folder path (``/`` nests folders), no ``..``, nothing odd."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.+=,-]+(/[A-Za-z0-9_.+=,-]+)*", value) or any(
            part in (".", "..") for part in value.split("/")):
        raise SweepFileError(f"{where}: name must be a relative folder name of letters, digits and _.+=,- (with / "
                             f"between folders, no . or ..), got {value!r}")
    return value


def _names(varying: list[dict[str, Any]]) -> list[str]:
    """Folder names from the settings that vary (``lr=0.1,seed=1``), not yet made unique.

    A setting is left out of the names when the settings before it already tell its trials apart (a task's
    formulation, a method's learning rate), and so is a setting a trial does not give (None).
    """
    keys: list[str] = []
    groups = {(): list(range(len(varying)))}
    for key in dict.fromkeys(k for point in varying for k in point):
        finer: dict[tuple, list[int]] = {}
        for label, members in groups.items():
            for i in members:
                finer.setdefault((*label, repr(varying[i].get(key))), []).append(i)
        if len(finer) > len(groups):
            keys.append(key)
            groups = finer
        else:
            groups = {(*label, None): members for label, members in groups.items()}
    return [",".join(f"{k}={_name_part(point[k])}" for k in keys if point.get(k) is not None) or "trial"
            for point in varying]


def unique_names(names: list[str], taken: set[str]) -> list[str]:
    """``names`` with ``-2``, ``-3``, ... appended where a name repeats or is in ``taken``."""
    out = []
    used = set(taken)
    for name in names:
        candidate, n = name, 1
        while candidate in used:
            n += 1
            candidate = f"{name}-{n}"
        used.add(candidate)
        out.append(candidate)
    return out


# ---- what one trial runs ------------------------------------------------------------------------------
def trial_args(settings: dict[str, Any]) -> argparse.Namespace:
    """The parsed ``jola-lens train`` flags of a trial: the parser's defaults with the trial's settings on top."""
    args = train_parser().parse_args([])
    for name, value in settings.items():
        setattr(args, name, value)
    return args


def check_trial(trial: Trial, where: str) -> None:
    """Build the trial's run settings (which validate themselves) and check that its task exists."""
    from jola_lens.cli import train_settings as build
    from jola_lens.methods.cli_flags import method_config

    args = trial_args(trial.settings)
    try:
        if args.run_mode == "eval":
            raise ValueError("run_mode eval scores a run that exists already; a sweep trains its trials: use "
                             "train or train_eval")
        build(args)
        method_config(args)
        check_task(args.task, args.subtask)
    except ValueError as error:
        raise SweepFileError(f"{where}:{trial.line}: trial {trial.name}: {error}") from None


def check_task(task: str, subtask: str | None) -> None:
    """ValueError unless ``task`` (with ``subtask``) names a registered task or existing user data (a data file or
    folder; ``hf:`` datasets are checked when a trial loads them)."""
    from jola_lens.tasks.registry import FILE_SUFFIXES, resolve_name

    full = f"{task}/{subtask}" if subtask else task
    if full.startswith("hf:"):
        return
    path = Path(full.removeprefix("file:")).expanduser()
    if full.startswith("file:") or path.suffix.lower() in FILE_SUFFIXES:
        if not path.exists():
            raise ValueError(f"task file {path} does not exist")
        return
    if not path.is_dir():
        resolve_name(full)
