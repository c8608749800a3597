"""The causal check, run end to end: does a seed group's consensus head selection matter for its task?

From the runs of one task that differ only in seed, rank the heads by their consensus over seeds
(:func:`~jola_lens.analysis.consensus.consensus_grid`), build the top-k, bottom-k and random-k head sets
(:func:`~jola_lens.analysis.causal.causal_head_sets`), train one run per set through the ordinary pipeline with
the group's settings (its lowest seed; each edit kind restricted to its own set, or both kinds to one shared set,
a sparsity target or pruning larger than the set lowered to its size: :func:`restricted_config`), and score every
run, the group's run of that seed ("full") and the bare model ("zero-shot") on the same test items. Per-item
correctness is read from each run's predictions.jsonl and compared by :func:`~jola_lens.analysis.causal.causal_table`.

Layout of ``output_dir``::

    runs/<set>/        one run folder per head set (top, bottom, random-<i>)
    runs/zero-shot/    the bare model's predictions
    runs/full/         the full edit's predictions, only when the group's run was scored otherwise
    causal.csv         the comparisons (test, accuracies, difference, p)
    causal.md          how the check was made, the runs, the comparisons and the verdict

Resumable: a run whose settings and scoring match is reused, an interrupted one resumes, and a folder holding a
run on other head sets is refused (the sets follow the group's runs, ``k``, ``n_random`` and ``seed``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from jola_lens import atomic
from jola_lens.analysis.causal import ALPHA, causal_head_sets, causal_table
from jola_lens.analysis.consensus import consensus_grid, consensus_table
from jola_lens.analysis.groups import SEEDS_ADVICE, SeedGroupError, add_groups, group_notes, seed_groups
from jola_lens.analysis.sources import EditSource, SourceLike, load_sources
from jola_lens.analysis.summary import to_markdown
from jola_lens.analysis.tables import head_table
from jola_lens.config import EDIT_KINDS
from jola_lens.heads import HeadSet, head_count, heads_spec
from jola_lens.methods import MethodConfig
from jola_lens.run_folder import RunFolder
from jola_lens.training.config import TrainConfig
from jola_lens.training.pipeline import RunSpec, eval_run, train_run

logger = logging.getLogger(__name__)

RANK_BY = (*EDIT_KINDS, "both", "per_kind")
"""How heads are ranked: by one edit kind's gates, by the mean over kinds (both: one set for every kind), or
per_kind: each edit kind ranked by its own gates and restricted to its own sets."""
FULL, ZERO_SHOT = "full", "zero-shot"
LIKELIHOOD_SCORINGS = ("likelihood", "both")


@dataclass(frozen=True)
class CausalCheck:
    """What :func:`run_causal_check` found: the comparisons, one row per run, the verdict and where it all is."""

    group: str
    table: pd.DataFrame
    runs: pd.DataFrame
    verdict: str
    head_sets: dict[str, dict[str, HeadSet]]
    """Per set (top, bottom, random-<i>): the heads of each edit kind."""
    correct: dict[str, dict[str, bool]]
    output_dir: Path
    trained: tuple[str, ...]
    """Names of the runs this call trained or evaluated (empty when everything was reused)."""


def run_causal_check(runs: SourceLike | Iterable[SourceLike], *, k: int, n_random: int = 3,
                     output_dir: str | os.PathLike, limit: int | None = None, scoring: str | None = None,
                     rank_by: str = "per_kind", metric: str = "mean_p_nonzero", seed: int = 0,
                     alpha: float = ALPHA, overwrite: bool = False, progress: bool = False) -> CausalCheck:
    """Train and score the causal check of one seed group (run folders of one task differing only in seed).

    Heads are ranked by the group's consensus ``metric`` of the ``rank_by`` gates ("both": the mean over the
    edit kinds; "per_kind": each kind by its own gates, into sets of its own, random draws independent per kind).
    ``limit`` and ``scoring`` default to those the group's run was scored with (else the whole test
    set, generation). ``seed`` draws the random head sets. ``overwrite`` retrains head-set folders that hold runs
    on other settings instead of refusing them.
    """
    if rank_by not in RANK_BY:
        raise ValueError(f"rank_by must be one of {RANK_BY}, got {rank_by!r}")
    sources = _group_sources(runs)
    groups = seed_groups(sources)
    if len(groups) > 1:
        raise SeedGroupError(f"the causal check takes one seed group; {' '.join(group_notes(groups))} Give the runs "
                             "of one setting.")
    group = groups[0]
    consensus = consensus_table(add_groups(head_table(sources), groups))
    present = [kind for kind in EDIT_KINDS if kind in set(consensus["kind"])]
    if rank_by == "per_kind":
        per_kind = {kind: causal_head_sets(consensus_grid(consensus, group.name, kind, metric), k, n_random, seed + i)
                    for i, kind in enumerate(present)}
        head_sets = {name: {kind: per_kind[kind][name] for kind in present} for name in per_kind[present[0]]}
    else:
        kinds = present if rank_by == "both" else [rank_by]
        scores = torch.stack([consensus_grid(consensus, group.name, kind, metric) for kind in kinds]).mean(dim=0)
        head_sets = {name: dict.fromkeys(present, heads)
                     for name, heads in causal_head_sets(scores, k, n_random, seed).items()}

    reference = min(sources, key=lambda s: _seed(s))
    saved = reference.run.read_config()
    spec = RunSpec(**{f.name: saved[f.name] for f in fields(RunSpec) if f.name in saved})
    train = TrainConfig.from_dict(saved["train"])
    if train.heads is not None:
        raise ValueError(f"the group's runs are already restricted to the heads {train.heads!r}; the causal check "
                         "ranks the heads of unrestricted edits: give runs trained on every head")
    method = MethodConfig.from_identity(saved)
    evaluated = _evaluation(reference.run.root)
    scoring = scoring or (evaluated or {}).get("scoring") or "generation"
    if limit is None and evaluated is not None:
        limit = evaluated.get("limit")
    wanted = {"scoring": scoring, "limit": limit}
    output = Path(output_dir)
    folders: dict[str, Path] = {}
    trained: list[str] = []

    n_edited = len(reference.edit.config.edited_layers) * reference.edit.config.n_heads
    for name, heads in head_sets.items():
        folder = RunFolder(output / "runs" / name)
        config = restricted_config(train, heads, n_edited)
        identity = spec.identity(config) | method.identity()
        folders[name] = folder.root
        differences = folder.settings_diff(identity) if folder.config.is_file() else []
        if differences and not overwrite:
            raise ValueError(
                f"{folder.root} holds a causal-check run on other settings ({'; '.join(differences)}): the head sets "
                "follow the group's runs, k, n_random and seed, and one of them changed since. Choose another "
                "output folder, or pass overwrite=True (--overwrite) to train these sets again.")
        if not differences and folder.is_run() and _matches(folder.root, wanted):
            continue
        logger.info("causal check %s: training on %s", name, config.heads)
        train_run(spec, config, folder.root, run_mode="train_eval", scoring=scoring, limit=limit,
                  progress=progress, method=method, overwrite=bool(differences))
        trained.append(name)

    folders[FULL] = reference.run.root
    if not _matches(reference.run.root, wanted):
        folders[FULL] = output / "runs" / FULL
        if not _matches(folders[FULL], wanted):
            logger.info("causal check: scoring the full edit %s on the check's items", reference.run.root)
            eval_run(reference.run.root, scoring=scoring, limit=limit, output_dir=folders[FULL], progress=progress)
            trained.append(FULL)
    folders[ZERO_SHOT] = output / "runs" / ZERO_SHOT
    if not _matches(folders[ZERO_SHOT], wanted | {"edit": None}):
        logger.info("causal check: scoring the bare model on the check's items")
        eval_run(None, overrides=asdict(spec), scoring=scoring, limit=limit, output_dir=folders[ZERO_SHOT],
                 eval_batch=train.eval_batch, max_length=train.max_length, progress=progress)
        trained.append(ZERO_SHOT)

    key = "likelihood_correct" if scoring in LIKELIHOOD_SCORINGS else "correct"
    correct = {name: read_correctness(folder, key) for name, folder in folders.items()}
    table, verdict = causal_table(correct, alpha)
    full_heads = ("every head" if train.keep_heads is None
                  else f"its kept heads (--keep_heads {train.keep_heads} per edit kind)")
    edited = torch.stack(list(reference.edit.selected_heads().values())).any(dim=0)
    n_heads = {FULL: int(edited.sum()), ZERO_SHOT: 0} | {name: len(set().union(*sets.values()))
                                                         for name, sets in head_sets.items()}
    all_heads = {FULL: full_heads, ZERO_SHOT: "none"}
    run_rows = pd.DataFrame([
        {"run": name, "n_heads": n_heads[name],
         "heads": heads_spec(head_sets[name]) if name in head_sets else all_heads[name],
         "accuracy": 100 * sum(correct[name].values()) / len(correct[name]), "n_items": len(correct[name]),
         "folder": _shown(folders[name], output)} for name in folders])
    check = CausalCheck(group.name, table, run_rows, verdict, head_sets, correct, output, tuple(trained))
    atomic.write_text(output / "causal.csv", table.to_csv(index=False))
    atomic.write_text(output / "causal.md", causal_markdown(check, sources, reference, rank_by=rank_by,
                                                            metric=metric, key=key, scoring=scoring, seed=seed,
                                                            alpha=alpha))
    logger.info("causal check of %s: %s", group.name, verdict)
    return check


def restricted_config(train: TrainConfig, heads: dict[str, HeadSet], n_edited: int) -> TrainConfig:
    """The group's training settings on ``heads`` (a set per edit kind): a sparsity target or final pruning
    (``target_heads``, ``keep_heads``, counts or shares of the ``n_edited`` heads the group's runs could edit)
    larger than the sets is lowered to their size, so that a k-head run keeps its k heads."""
    k = max(len(kind_heads) for kind_heads in heads.values())

    def clamped(value: float | None, what: str) -> int | None:
        return None if value is None else min(head_count(value, n_edited, what), k)

    return replace(train, heads=heads_spec(heads),
                   target_heads=clamped(train.target_heads, "the sparsity target"),
                   keep_heads=clamped(train.keep_heads, "keep_heads"))


def _group_sources(runs: SourceLike | Iterable[SourceLike]) -> list[EditSource]:
    sources = load_sources(runs)
    editless = [s.label for s in sources if s.run is None]
    if editless:
        raise ValueError(f"the causal check trains with the group's settings, which only run folders hold; "
                         f"{', '.join(editless)} are edits without a run folder (config.json)")
    tasks: dict[tuple[str, str], int] = {}
    for source in sources:
        tasks[(source.task, source.model)] = tasks.get((source.task, source.model), 0) + 1
    if len(tasks) > 1:
        found = "; ".join(f"{task} on {model}: {n} run(s)" for (task, model), n in tasks.items())
        raise ValueError(f"the causal check takes the runs of one task and model, got {len(tasks)} ({found}); "
                         "run it once per task")
    if len(sources) < 2:
        raise SeedGroupError(f"the causal check ranks heads by their consensus over seeds and needs at least 2 runs "
                             f"(better 3 or more) of one task that differ only in the seed; got 1 "
                             f"({sources[0].label}). {SEEDS_ADVICE}")
    return sources


def _seed(source: EditSource) -> int:
    return int(source.run.read_config().get("train", {}).get("seed", 0))


def _evaluation(folder: Path) -> dict[str, Any] | None:
    metrics = RunFolder(folder).metrics
    if not metrics.is_file() or not RunFolder(folder).predictions.is_file():
        return None
    return json.loads(metrics.read_text(encoding="utf-8")).get("evaluation")


def _matches(folder: Path, wanted: dict[str, Any]) -> bool:
    """True when ``folder`` holds predictions scored as ``wanted`` says (scoring, limit, ...)."""
    evaluation = _evaluation(folder)
    return evaluation is not None and all(evaluation.get(key) == value for key, value in wanted.items())


def read_correctness(folder: str | os.PathLike, key: str = "likelihood_correct") -> dict[str, bool]:
    """Item id -> correct (``key``: ``likelihood_correct`` or ``correct``) from a run's predictions.jsonl."""
    path = RunFolder(folder).predictions
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: score the run first (`jola-lens eval --edit {folder}`)")
    rows = atomic.read_jsonl(path)
    missing = [row.get("id") for row in rows if key not in row][:3]
    if missing:
        raise ValueError(f"{path} has no {key!r} for items {missing}: it was scored another way; score every run "
                         "of the check with the same --scoring")
    return {str(row["id"]): bool(row[key]) for row in rows}


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def causal_markdown(check: CausalCheck, sources: list[EditSource], reference: EditSource, *, rank_by: str,
                    metric: str, key: str, scoring: str, seed: int, alpha: float) -> str:
    """causal.md: how the sets were made and trained, the runs, the comparisons and the verdict."""
    seeds = sorted(_seed(s) for s in sources)
    k = max(len(heads) for heads in check.head_sets["top"].values())
    n_random = sum(name.startswith("random-") for name in check.head_sets)
    n_items = int(check.runs["n_items"].iloc[0])
    ranked = {"both": "the mean over edit kinds of the", "per_kind": "each edit kind's own"}.get(
        rank_by, f"the {rank_by} gates'")
    restricted = ("each edit kind restricted to its own set (random draws independent per kind)"
                  if rank_by == "per_kind" else "both edit kinds restricted to its heads")
    method = (f"Heads ranked by {ranked} consensus `{metric}` over {len(seeds)} seeds ({', '.join(map(str, seeds))}). "
              f"Head sets of k = {k}: the top-k, the bottom-k and {n_random} random draws (seed {seed}). Each set "
              f"trains the group's settings (seed {_seed(reference)}) with {restricted} (a "
              f"sparsity target or pruning above k lowered to k); "
              f"`full` is the group's run of that seed ({reference.run.root}); `zero-shot` is the bare model. Every "
              f"run is scored on the same {n_items} test items ({scoring} scoring; correctness = `{key}`).")
    tests = ("Tests: top vs each run by the exact McNemar test (two-sided binomial on the items where exactly one is "
             "right); top vs the random draws as one reference by a paired sign-flip permutation test on "
             "correct_top(i) - mean over draws of correct_random(i). The selection counts as meaningful when top-k "
             f"beats random-k with p < {alpha} and a higher accuracy.")
    lines = [f"# Causal check: {check.group}", "", method, "", tests, "", f"**Verdict:** {check.verdict}.", "",
             "## Runs", "", to_markdown(check.runs, ".4g"), "", "## Comparisons", "", to_markdown(check.table), ""]
    return "\n".join(lines)
