"""Seed groups: runs that share task, model and settings and differ only in their seed.

Stability and consensus are measured within a group; task comparisons are made between groups. Runs of one task
and model whose settings differ in more than the seed are split into one group per setting, each named by the
settings that tell it apart (``commonsense/ARC-c [train.gate_init=-0.5]``), and :func:`group_notes` says which.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from jola_lens.analysis.sources import EditSource, SourceLike, load_sources
from jola_lens.analysis.tables import head_table
from jola_lens.run_folder import flatten

SEED_KEY = "train.seed"
BOOKKEEPING = ("task", "task_name", "model", "model_name", "edit.base_model", "device", "library_version",
               "data_dir", "task_source", "n_train", "n_validation")
"""Flattened config.json keys that are not settings: the task and model (compared on their own), where data and
device were, and counts derived from the data. ``edit.metadata.*`` is skipped too."""
SEEDS_ADVICE = ("Train each task with at least 3 seeds and the same other settings (`jola-lens train --task TASK "
                "--preset localize --seed 1`, then `--seed 2`, `--seed 3`; each writes its own runs/<task>-seed<S>; "
                "`localize` trains without gate noise, which is what makes the selection reproduce across seeds) and "
                "analyse the runs together: `jola-lens analyze runs/* --output DIR`.")


NOISE_ADVICE = ("trained with the gates' Hard-Concrete noise (the spec's default), which their seed draws: in "
                "analysis/results/localization_stability/ one seed's noise made its runs of different tasks keep the "
                "same heads, more than one task's runs under different seeds. For a selection that reproduces across "
                "seeds and follows the task, train with `--preset localize` (no gate noise, 30% of the heads kept).")


def gate_noise_runs(sources: Iterable[EditSource]) -> list[str]:
    """Labels of the gated edits whose run folder says they were trained with sampled gate noise
    (``train.gate_noise`` "sample", the default of runs saved before the setting existed)."""
    return [source.label for source in sources
            if source.edit.config.gated and source.run is not None and source.run.config.is_file()
            and source.run.read_config().get("train", {}).get("gate_noise", "sample") == "sample"]


class SeedGroupError(ValueError):
    """A seed group cannot give what was asked of it (too few runs, no group at all)."""


@dataclass(frozen=True)
class SeedGroup:
    """Runs (labels) of one task and model with equal settings; ``seeds`` per run (None: unknown, no run folder)."""

    name: str
    task: str
    model: str
    runs: tuple[str, ...]
    seeds: tuple[int | None, ...]
    split_on: dict[str, Any] = field(default_factory=dict)
    """For a task whose runs were split: this group's values of the settings that differ between the splits."""

    @property
    def n_runs(self) -> int:
        return len(self.runs)


def run_settings(source: EditSource) -> tuple[dict[str, Any], int | None]:
    """(settings, seed) of one run: its flattened config.json without the seed and :data:`BOOKKEEPING`
    keys; for an edit without a run folder, its edit config (seed unknown)."""
    if source.run is not None and source.run.config.is_file():
        config = flatten(source.run.read_config())
    else:
        config = {f"edit.{key}": value for key, value in flatten(source.edit.config.to_dict()).items()}
    seed = config.pop(SEED_KEY, None)
    settings = {key: value for key, value in config.items()
                if key not in BOOKKEEPING and not key.startswith("edit.metadata.")}
    return settings, None if seed is None else int(seed)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def seed_groups(items: SourceLike | Iterable[SourceLike]) -> list[SeedGroup]:
    """Group runs by task, model and settings, in the order the tasks first appear."""
    sources = load_sources(items)
    by_task: dict[tuple[str, str], list[tuple[EditSource, dict[str, Any], int | None]]] = {}
    for source in sources:
        settings, seed = run_settings(source)
        by_task.setdefault((source.task, source.model), []).append((source, settings, seed))
    several_models = {task for task, _ in by_task if sum(t == task for t, _ in by_task) > 1}
    groups = []
    for (task, model), members in by_task.items():
        base = f"{task} @ {model}" if task in several_models else task
        variants: dict[str, list[tuple[EditSource, dict[str, Any], int | None]]] = {}
        for member in members:
            variants.setdefault(_canonical(member[1]), []).append(member)
        keys = sorted({key for _, settings, _ in members for key in settings})
        differing = [key for key in keys
                     if len({_canonical(settings.get(key)) for _, settings, _ in members}) > 1]
        for variant in variants.values():
            settings = variant[0][1]
            split_on = {key: settings.get(key) for key in differing}
            name = base if not split_on else f"{base} [{', '.join(f'{k}={v}' for k, v in split_on.items())}]"
            groups.append(SeedGroup(name, task, model, tuple(s.label for s, _, _ in variant),
                                    tuple(seed for _, _, seed in variant), split_on))
    return groups


def group_notes(groups: list[SeedGroup]) -> list[str]:
    """Plain-words notes: tasks split because their runs differ in more than the seed, and repeated seeds."""
    notes = []
    split: dict[tuple[str, str], list[SeedGroup]] = {}
    for group in groups:
        if group.split_on:
            split.setdefault((group.task, group.model), []).append(group)
    for (task, _), parts in split.items():
        keys = ", ".join(parts[0].split_on)
        notes.append(f"The runs of {task} differ in more than the seed ({keys}): split into {len(parts)} groups "
                     f"({'; '.join(f'{g.name}: {g.n_runs} run(s)' for g in parts)}); seeds are compared only within "
                     "a group.")
    for group in groups:
        known = [seed for seed in group.seeds if seed is not None]
        repeated = sorted({seed for seed in known if known.count(seed) > 1})
        if repeated:
            notes.append(f"{group.name}: several runs share seed {', '.join(map(str, repeated))}; such runs repeat "
                         "each other and make the selection look more stable than it is.")
    return notes


def grouped_table(items: pd.DataFrame | SourceLike | Iterable[SourceLike]) -> pd.DataFrame:
    """The head table (:func:`~jola_lens.analysis.tables.head_table`) with ``group`` and ``seed`` columns.

    A head table without them (e.g. a committed ``heads.csv``) is grouped by task and model, as if its runs
    differed only in seed (its settings cannot be checked); its seeds are unknown.
    """
    if isinstance(items, pd.DataFrame):
        if "group" in items.columns:
            return items
        table = items.copy()
        several = table.groupby("task")["model"].nunique()
        table["group"] = [f"{t} @ {m}" if several[t] > 1 else t for t, m in zip(table["task"], table["model"])]
        table["seed"] = pd.NA
        return table
    sources = load_sources(items)
    return add_groups(head_table(sources), seed_groups(sources))


def add_groups(table: pd.DataFrame, groups: list[SeedGroup]) -> pd.DataFrame:
    """``table`` (a head table of the groups' runs) with ``group`` and ``seed`` columns after ``run``."""
    group_of = {run: group.name for group in groups for run in group.runs}
    seed_of = {run: seed for group in groups for run, seed in zip(group.runs, group.seeds)}
    missing = sorted(set(table["run"]) - set(group_of))
    if missing:
        raise ValueError(f"runs {missing} are in no seed group; make the groups from the same runs as the table")
    table = table.drop(columns=[c for c in ("group", "seed") if c in table.columns])
    table.insert(1, "group", table["run"].map(group_of))
    table.insert(2, "seed", table["run"].map(seed_of).astype("Int64"))
    return table


def table_groups(table: pd.DataFrame) -> dict[str, list[str]]:
    """``{group: [run, ...]}`` of a grouped table, in order of appearance."""
    return {name: list(dict.fromkeys(rows["run"])) for name, rows in table.groupby("group", sort=False)}


def require_seeds(group: str, runs: list[str]) -> None:
    """Raise :class:`SeedGroupError` unless ``group`` has at least 2 runs."""
    if len(runs) < 2:
        raise SeedGroupError(
            f"stability needs at least 2 runs (better 3 or more) of one task that differ only in the seed; "
            f"{group} has {len(runs)} ({', '.join(runs)}). {SEEDS_ADVICE}")

