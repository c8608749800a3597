"""Which training settings make JoLA's head selection reproducible across seeds? (issue: localization you can trust)

Trains every (setting, task, seed) of a small grid on the embedded model and scores each run on the same test
items, into ``analysis/results/localization_stability/runs/<setting>/<task>-seed<S>/`` (ordinary run folders:
the same command again skips finished runs and resumes interrupted ones). ``--report`` computes the stability
measures of the finished runs and writes them beside them (measures.csv, measures.md, figures, README.md).

    python analysis/localization_stability.py --stage screen          # one task, 3 seeds, every setting
    python analysis/localization_stability.py --stage confirm --settings paper,target_const,delay_const
    python analysis/localization_stability.py --report    # measures.csv/.md, figures, README.md of finished runs

Sized for a 2-core CPU: short SST-2 style prompts, 100 training items, 5 epochs of 13 steps.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from jola_lens import atomic
from jola_lens.analysis.comparison import task_comparison
from jola_lens.analysis.consensus import consensus_table, plot_consensus_grid
from jola_lens.analysis.figures import save_figure, slug
from jola_lens.analysis.groups import grouped_table, table_groups
from jola_lens.analysis.heatmaps import plot_head_grid
from jola_lens.analysis.overlap import jaccard, plot_overlap
from jola_lens.analysis.stability import N_PERMUTATIONS, stability_report, stability_verdicts
from jola_lens.analysis.summary import to_markdown
from jola_lens.config import EDIT_KINDS
from jola_lens.sweep import run_sweep
from jola_lens.sweep.spec import parse_sweep
from jola_lens.training.prune import prune_run

logger = logging.getLogger("localization_stability")
RESULTS = Path(__file__).resolve().parent / "results" / "localization_stability"

BASE = {"train_size": 100, "val_size": 50, "num_epoch": 5, "train_batch": 8, "eval_batch": 8, "warmup_steps": 5,
        "max_length": 128, "patience": 0, "save_strategy": "last"}
"""Shared by every setting: 65 optimizer steps, no early stopping, the last epoch kept (runs compare at one point)."""
SETTINGS: dict[str, dict] = {
    "paper": {"lr": 5e-3, "gate_lr": None, "penalty_scale": 1.0},
    "paper_no_noise": {"lr": 5e-3, "gate_lr": None, "penalty_scale": 1.0, "gate_noise": "off"},
    "paper_long": {"lr": 5e-3, "gate_lr": None, "penalty_scale": 1.0, "num_epoch": 20},
    "fast": {"lr": 5e-3, "gate_lr": 0.1, "penalty_scale": 10.0},
    "high_vector_lr": {"lr": 2e-2, "gate_lr": 0.1, "penalty_scale": 10.0},
    "delay_const": {"lr": 5e-3, "gate_lr": 0.1, "penalty_scale": 10.0, "gate_init": 0.0, "penalty_delay": 30,
                    "penalty_warmup": 15},
    "target_const": {"lr": 5e-3, "gate_lr": 0.1, "gate_init": -1.0, "target_heads": 27, "target_warmup": 20,
                     "target_lr": 0.5},
    "target_gentle": {"lr": 5e-3, "gate_lr": 0.1, "gate_init": -1.0, "target_heads": 27, "target_warmup": 30,
                      "target_lr": 0.1},
    "target_random": {"lr": 5e-3, "gate_lr": 0.1, "target_heads": 27, "target_warmup": 20, "target_lr": 0.5},
    "target_wide_init0": {"lr": 5e-3, "gate_lr": 0.1, "gate_init": 0.0, "target_heads": 81, "target_warmup": 30,
                          "target_lr": 0.1},
    "target_wide": {"lr": 5e-3, "gate_lr": 0.1, "gate_init": -1.0, "target_heads": 81, "target_warmup": 30,
                    "target_lr": 0.1},
    "target_wide_keep": {"lr": 5e-3, "gate_lr": 0.1, "gate_init": -1.0, "target_heads": 81, "target_warmup": 30,
                         "target_lr": 0.1, "keep_heads": 81},
    "target_zero_keep": {"lr": 5e-3, "gate_lr": 0.1, "gate_init": -1.0, "target_heads": 81, "target_warmup": 30,
                         "target_lr": 0.1, "keep_heads": 81, "init_std": 0.0},
    "shared_noise": {"lr": 5e-3, "gate_lr": 0.1, "gate_init": -1.0, "target_heads": 81, "target_warmup": 30,
                     "target_lr": 0.1, "keep_heads": 81, "init_std": 0.0, "gate_noise_seed": 0},
    "no_noise": {"lr": 5e-3, "gate_lr": 0.1, "gate_init": -1.0, "target_heads": 81, "target_warmup": 30,
                 "target_lr": 0.1, "keep_heads": 81, "init_std": 0.0, "gate_noise": "off"},
}
"""The settings screened. ``paper_no_noise`` is the paper's with the deterministic gates in training (does the
noise alone decide its rankings?), ``paper_long`` the paper's 20 epochs (260 steps). ``target_*`` hold 27 of 270 heads (10%) open per gate kind (reached by step 20);
``target_gentle`` moves its multipliers 5x slower (``target_const`` overshot to 0-5 heads kept);
``target_wide`` holds 81 (30%) open (``target_gentle``'s 27 collapsed SST-2 onto one answer); from gate init 0
(``target_wide_init0``) the multiplier closed no gate in 65 steps;
``*_const`` start every gate logit at one value (0, or -1 for the target) so no head starts ahead;
``delay_const`` trains 30 steps without penalty, then ramps it in over 15; ``target_wide_keep`` is ``target_wide``
with its kept edit pruned to the 81 heads per kind with the highest gate logits (``--keep_heads``), so every run
keeps exactly its target; ``target_zero_keep`` also starts the edit vectors at zero (``--init_std 0``): under
``target_wide_keep`` one seed's kept heads on two tasks overlapped more than two seeds' on one task, and with gate
logits all at -1 the seed's draw of the vectors is what differs between seeds. It did not change the picture, which
left the gates' Hard-Concrete noise (drawn from the run's seeded stream, so one seed draws the same noise on every
task) as the suspect: ``shared_noise`` is ``target_zero_keep`` with one noise stream for every run
(``--gate_noise_seed 0``; seeds then differ only in their training items and batch order), ``no_noise`` trains
with the deterministic gates (``--gate_noise off``)."""
PRUNED_FROM = {"target_wide_keep": "target_wide"}
"""Settings that differ from another only by ``keep_heads``: their runs are made by pruning that setting's finished
runs (``jola-lens prune``: the run ``--keep_heads`` would have trained) and only scored."""
TASKS = {"sst2": ("extra/SST-2", "text"), "arc-e": ("commonsense/ARC-e", "cloze"), "boolq": ("commonsense/BoolQ", "cloze")}
STAGES = {"screen": (["sst2"], [1, 2, 3]), "confirm": (["sst2", "arc-e", "boolq"], [1, 2, 3, 4, 5])}


def finished_metrics(folder: Path) -> dict:
    """metrics.json of a run folder (empty when there is none yet)."""
    metrics = folder / "metrics.json"
    return json.loads(metrics.read_text()) if metrics.is_file() else {}


def finished_results(folder: Path) -> dict:
    """The evaluation results already in a run folder (empty when it has not been scored)."""
    return finished_metrics(folder).get("evaluation", {}).get("results", {})


def run_grid(settings: list[str], tasks: list[str], seeds: list[int], limit: int, output: Path,
             workers: int, threads: int) -> None:
    """Every (setting, task, seed) as one sweep (``jola-lens sweep``: finished runs kept, interrupted ones resumed;
    its table in OUTPUT/sweep/<settings>/), run folders at OUTPUT/runs/<setting>/<task>-seed<S>."""
    trials = [{"name": f"{setting}/{task}-seed{seed}", "task": TASKS[task][0], "formulation": TASKS[task][1],
               **BASE, **SETTINGS[setting], "seed": seed, "run_mode": "train_eval", "scoring": "likelihood",
               "limit": limit} for setting in settings for task in tasks for seed in seeds]
    for setting in settings:
        if setting in PRUNED_FROM:
            prune_finished_runs(PRUNED_FROM[setting], setting, tasks, seeds, output)
    name = slug("-".join(settings))  # one sweep table per settings list, so two lists can run at once
    sweep = parse_sweep(yaml.safe_dump({"trials": trials}, sort_keys=False), output / "sweep" / f"{name}.yaml")
    result = run_sweep(sweep, output / "sweep" / name, runs_dir=output / "runs", workers=workers,
                       threads_per_trial=threads, extend=True)
    logger.info("%d trials: %s in %.0f s", len(trials), result.counts, result.seconds)


def prune_finished_runs(source: str, setting: str, tasks: list[str], seeds: list[int], output: Path) -> None:
    """``setting``'s run of each (task, seed) whose ``source`` run is trained, by pruning it (unscored; the sweep
    then only scores it). Runs of ``setting`` already there are left alone."""
    keep = SETTINGS[setting]["keep_heads"]
    for task in tasks:
        for seed in seeds:
            trained, pruned = (output / "runs" / name / f"{task}-seed{seed}" for name in (source, setting))
            if "training" in finished_metrics(trained) and not pruned.exists():
                prune_run(trained, keep, pruned)


# ---- report: measures of whatever runs exist ------------------------------------------------------------
KEY_MEASURES = {("head", "stability"): "nogueira", ("head", "jaccard"): "jaccard", ("head", "rbo"): "rbo",
                ("layer", "spearman"): "layer_spearman"}
"""The stability measures the settings table shows (all seven are in each setting's stability.csv)."""
ACROSS_TASKS = "(across tasks)"
MEASURE_COLUMNS = ("setting", "task", "kind", "n_runs", "seeds", "n_heads", "kept_mean", "kept_min", "kept_max",
                   "nogueira", "nogueira_ci_low", "nogueira_ci_high", "nogueira_chance", "nogueira_p", "nogueira_note",
                   "jaccard", "jaccard_chance", "jaccard_p", "rbo", "rbo_chance", "rbo_p", "layer_spearman",
                   "layer_spearman_chance", "layer_spearman_p", "acc_mean", "acc_sd", "top_answer_share",
                   "same_task_other_seed_jaccard", "other_task_same_seed_jaccard",
                   "other_task_other_seed_jaccard", "n_same_task_pairs", "n_same_seed_pairs", "task_p_selection",
                   "task_p_ranking")
"""measures.csv: one row per (setting, task, kind), and per (setting, kind) with task ``(across tasks)``."""


def finished_runs(output: Path) -> dict[str, list[Path]]:
    """``{setting: [run folder, ...]}`` of the runs already scored (likelihood results), settings in SETTINGS
    order; runs still training or never scored are left out."""
    found: dict[str, list[Path]] = {}
    for setting in SETTINGS:
        folders = sorted((output / "runs" / setting).glob("*-seed*"))
        done = [folder for folder in folders if "likelihood" in finished_results(folder)]
        if done:
            found[setting] = done
    return found


def run_accuracy(folder: Path) -> float:
    return float(finished_results(folder)["likelihood"]["acc"])


def top_answer_share(folder: Path) -> float:
    """The run's :func:`jola_lens.evaluation.top_answer_share` (NaN when its answers are not a label set)."""
    from jola_lens.evaluation import top_answer_share as share

    value = share(atomic.read_jsonl(folder / "predictions.jsonl"))
    return math.nan if value is None else value


def _setting_table(folders: list[Path], setting: str) -> pd.DataFrame:
    """The grouped head table of one setting's runs, groups named ``<setting>: <task>``."""
    table = grouped_table([str(folder) for folder in folders])
    table["group"] = setting + ": " + table["task"]
    runs = list(dict.fromkeys(table["run"]))
    table["accuracy"] = table["run"].map(dict(zip(runs, map(run_accuracy, folders))))
    table["top_answer_share"] = table["run"].map(dict(zip(runs, map(top_answer_share, folders))))
    return table


def _pair_jaccards(table: pd.DataFrame, kind: str) -> dict[str, float]:
    """Mean Jaccard of the kept heads over run pairs of one task and other seeds, of other tasks and one seed, and of
    other tasks and other seeds (what neither task nor seed shares)."""
    rows = table[(table["kind"] == kind) & table["edited"]].sort_values(["layer", "head"], kind="stable")
    runs = list(dict.fromkeys(rows["run"]))
    info = rows.drop_duplicates("run").set_index("run")
    kept = {run: rows.loc[rows["run"] == run, "selected"].to_numpy(bool) for run in runs}
    same_task, same_seed, neither = [], [], []
    for i, a in enumerate(runs):
        for b in runs[i + 1:]:
            value = jaccard(kept[a], kept[b])
            if info.at[a, "task"] == info.at[b, "task"] and info.at[a, "seed"] != info.at[b, "seed"]:
                same_task.append(value)
            elif info.at[a, "task"] != info.at[b, "task"] and info.at[a, "seed"] == info.at[b, "seed"]:
                same_seed.append(value)
            elif info.at[a, "task"] != info.at[b, "task"]:
                neither.append(value)
    return {"same_task_other_seed_jaccard": _nanmean(same_task), "other_task_same_seed_jaccard": _nanmean(same_seed),
            "other_task_other_seed_jaccard": _nanmean(neither),
            "n_same_task_pairs": len(same_task), "n_same_seed_pairs": len(same_seed)}


def _nanmean(values: list[float]) -> float:
    return float(np.nanmean(values)) if values and not np.isnan(values).all() else math.nan


def setting_measures(setting: str, table: pd.DataFrame, n_permutations: int) -> tuple[list[dict], list[str]]:
    """Rows of the settings x measures table for one setting (per task and kind, and across tasks per kind),
    and the plain-words verdicts."""
    rows, verdicts = [], []
    groups = table_groups(table)
    report = stability_report(table, n_permutations=n_permutations) if any(
        len(members) > 1 for members in groups.values()) else pd.DataFrame(columns=["group"])
    verdicts += stability_verdicts(report) if not report.empty else []
    for group, members in groups.items():
        part = table[table["group"] == group]
        accuracy = part.drop_duplicates("run")["accuracy"]
        answer_share = part.drop_duplicates("run")["top_answer_share"].mean()
        seeds = sorted(int(seed) for seed in part.drop_duplicates("run")["seed"])
        for kind in (k for k in EDIT_KINDS if k in set(part["kind"])):
            kept = part[part["kind"] == kind].groupby("run", sort=False)["selected"].sum()
            row = {"setting": setting, "task": part["task"].iloc[0], "kind": kind, "n_runs": len(members),
                   "seeds": " ".join(map(str, seeds)), "kept_mean": kept.mean(), "kept_min": int(kept.min()),
                   "kept_max": int(kept.max()), "n_heads": int(part[part["kind"] == kind].groupby("run")["edited"]
                                                               .sum().iloc[0]),
                   "acc_mean": accuracy.mean(), "acc_sd": accuracy.std(ddof=1) if len(accuracy) > 1 else math.nan,
                   "top_answer_share": answer_share}
            measured = report[(report["group"] == group) & (report["kind"] == kind)] if not report.empty else report
            for r in measured.itertuples():
                name = KEY_MEASURES.get((r.level, r.measure))
                if name is None:
                    continue
                row |= {name: r.value, f"{name}_chance": r.null_mean, f"{name}_p": r.p_value}
                if name == "nogueira":
                    row |= {"nogueira_ci_low": r.ci_low, "nogueira_ci_high": r.ci_high,
                            "nogueira_note": r.note.split(":")[0] if math.isnan(r.value) else ""}
            rows.append(row)
    if sum(len(members) > 1 for members in groups.values()) >= 2:
        comparison = task_comparison(table, n_permutations=n_permutations)
        for kind in (k for k in EDIT_KINDS if k in set(table["kind"])):
            tests = comparison[comparison["kind"] == kind].set_index("distance")
            rows.append({"setting": setting, "task": ACROSS_TASKS, "kind": kind,
                         "n_runs": table["run"].nunique(), **_pair_jaccards(table, kind),
                         "task_p_selection": tests.at["selection", "p_value"],
                         "task_p_ranking": tests.at["ranking", "p_value"]})
            verdicts += [f"{setting}, {kind}, {distance}: {tests.at[distance, 'verdict']}"
                         for distance in ("selection", "ranking")]
    return rows, verdicts


def _vs(value: float, chance: float, p: float) -> str:
    return "" if pd.isna(value) else f"{value:.2f} (chance {chance:.2f}, p {p:.2g})"


def measures_markdown(measures: pd.DataFrame) -> str:
    """The settings x measures table in words and numbers (measures.md)."""
    within = measures[measures["task"] != ACROSS_TASKS]
    shown = pd.DataFrame({
        "setting": within["setting"], "task": within["task"], "kind": within["kind"], "runs": within["n_runs"],
        "heads kept mean [min, max]": [f"{m:.1f} [{lo:.0f}, {hi:.0f}] of {n:.0f}" for m, lo, hi, n in
                                       zip(within["kept_mean"], within["kept_min"], within["kept_max"],
                                           within["n_heads"])],
        "Nogueira Φ [95% CI]": [(f"undefined ({note})" if isinstance(note, str) and note else "" if pd.isna(v)
                                 else f"{v:.2f} [{lo:.2f}, {hi:.2f}] (chance {c:.2f}, p {p:.2g})")
                                for v, lo, hi, c, p, note in zip(within["nogueira"],
                                                                 within["nogueira_ci_low"],
                                                                 within["nogueira_ci_high"],
                                                                 within["nogueira_chance"],
                                                                 within["nogueira_p"],
                                                                 within["nogueira_note"])],
        **{title: [_vs(*values) for values in zip(within[name], within[f"{name}_chance"], within[f"{name}_p"])]
           for title, name in (("Jaccard", "jaccard"), ("RBO of P(g≠0)", "rbo"),
                               ("layer Spearman", "layer_spearman"))},
        "accuracy mean ± sd": [f"{m:.1f}" + ("" if pd.isna(sd) else f" ± {sd:.1f}")
                               for m, sd in zip(within["acc_mean"], within["acc_sd"])],
        "top answer share %": ["" if pd.isna(v) else f"{v:.0f}" for v in within["top_answer_share"]]})
    lines = ["## Within a task: seeds against chance", "",
             ("One row per setting, task and edit kind. Chance = random selections of the same sizes (exact for Φ "
              "and Jaccard, else random draws); p one-sided (more agreement than chance). An empty cell: fewer than "
              "2 finished seeds. Top answer share: the share of test items given the run's most frequent answer "
              "(mean over seeds; near 100 = collapsed onto one answer)."), "", to_markdown(shown), ""]
    across = measures[measures["task"] == ACROSS_TASKS]
    lines += ["## Across tasks: task against seed", ""]
    if across.empty:
        lines.append("No setting has finished runs of two or more tasks with two or more seeds each yet (the "
                     "confirm stage): no task comparison.")
    else:
        lines += [("Mean Jaccard of the kept heads over run pairs of the same task and other seeds, of other "
                   "tasks and the same seed, and of other tasks and other seeds (the baseline: what neither shares); "
                   "task permutation test p (task labels shuffled among runs)."), "",
                  to_markdown(across[["setting", "kind", "n_runs", "same_task_other_seed_jaccard",
                                      "other_task_same_seed_jaccard", "other_task_other_seed_jaccard",
                                      "task_p_selection", "task_p_ranking"]])]
    return "\n".join(lines) + "\n"


def write_report(output: Path, n_permutations: int) -> None:
    """measures.csv, measures.md, stability figures and README.md from the finished runs under ``output``."""
    found = finished_runs(output)
    if not found:
        raise SystemExit(f"no finished runs under {output / 'runs'}; train some first (see --help)")
    rows, verdicts, figures, tables = [], [], [], {}
    for setting, folders in found.items():
        table = _setting_table(folders, setting)
        tables[setting] = table
        setting_rows, setting_verdicts = setting_measures(setting, table, n_permutations)
        rows += setting_rows
        verdicts += setting_verdicts
        name = f"heads-{setting}.png"
        save_figure(plot_head_grid(table, "p_nonzero"), output / name)
        figures.append(name)
        groups = [g for g, members in table_groups(table).items() if len(members) > 1]
        if groups:
            name = f"consensus-{setting}.png"
            save_figure(plot_consensus_grid(consensus_table(table), groups), output / name)
            figures.append(name)
        if table["task"].nunique() > 1:
            name = f"overlap-{setting}.png"
            save_figure(plot_overlap(table, by_task=True), output / name)
            figures.append(name)
    combined = pd.concat(tables.values(), ignore_index=True)
    for task in dict.fromkeys(combined["task"]):
        groups = [g for g, members in table_groups(combined[combined["task"] == task]).items() if len(members) > 1]
        if len(groups) > 1:
            name = f"consensus-settings-{slug(task)}.png"
            save_figure(plot_consensus_grid(consensus_table(combined), groups), output / name)
            figures.append(name)
    measures = pd.DataFrame(rows).reindex(columns=list(MEASURE_COLUMNS))
    atomic.write_text(output / "measures.csv", measures.to_csv(index=False))
    markdown = measures_markdown(measures)
    atomic.write_text(output / "measures.md", markdown)
    atomic.write_text(output / "README.md", readme(output, found, markdown, verdicts, figures, n_permutations))
    logger.info("wrote %s, %s, README.md and %d figures", output / "measures.csv", output / "measures.md",
                len(figures))


def causal_summary(output: Path) -> pd.DataFrame:
    """One row per causal check under OUTPUT/causal/<setting>-<task>/ (``jola-lens analyze --causal``): the
    accuracies of the top-k, random-k (mean of the draws), bottom-k, full and zero-shot runs, the top vs random
    paired sign-flip p and the verdict."""
    rows = []
    for table_path in sorted(output.glob("causal/*/causal-*/causal.csv")):
        table = pd.read_csv(table_path).set_index("comparison")
        random = next(name for name in table.index if name.startswith("top vs random ("))
        verdict = next(line for line in (table_path.parent / "causal.md").read_text().splitlines()
                       if line.startswith("**Verdict:**"))
        rows.append({"check": table_path.parent.parent.name, "k": _causal_k(table_path.parent / "causal.md"),
                     "ranked by": _causal_ranking(table_path.parent / "causal.md"),
                     "top": table.loc[random, "acc_top"], "random (mean)": table.loc[random, "acc_other"],
                     "bottom": table.loc["top vs bottom", "acc_other"], "full": table.loc["top vs full", "acc_other"],
                     "zero-shot": table.loc["top vs zero-shot", "acc_other"], "p top vs random": table.loc[random, "p"],
                     "verdict": verdict.removeprefix("**Verdict:**").strip().rstrip(".")})
    return pd.DataFrame(rows)


def _causal_ranking(causal_md: Path) -> str:
    """How the check ranked heads (``--causal-rank``), read from its causal.md."""
    match = re.search(r"Heads ranked by (.+?) consensus", causal_md.read_text())
    if match is None:
        return "?"
    ranked = match.group(1)
    if ranked == "each edit kind's own":
        return "per kind"
    if ranked.startswith("the mean over edit kinds"):
        return "mean of kinds"
    return ranked.removeprefix("the ").removesuffix(" gates'")


def _causal_k(causal_md: Path) -> int:
    match = re.search(r"Head sets of k = (\d+)", causal_md.read_text())
    return int(match.group(1)) if match else -1


def readme(output: Path, found: dict[str, list[Path]], markdown: str, verdicts: list[str], figures: list[str],
           n_permutations: int) -> str:
    counts = []
    for setting, values in SETTINGS.items():
        folders = found.get(setting, [])
        by_task = {task: sum(folder.name.startswith(f"{task}-seed") for folder in folders) for task in TASKS}
        stage = ("confirm" if sum(n >= 5 for n in by_task.values()) >= 3 else
                 "screen" if by_task["sst2"] >= 3 else "partial")
        counts.append({"setting": setting, **by_task, "stage complete": stage,
                       "settings": ", ".join(f"{k}={v}" for k, v in values.items())})
    causals = causal_summary(output)
    first = next(iter(found.values()))[0]
    items = json.loads((first / "metrics.json").read_text())["evaluation"]["n"]
    partial = any(row["stage complete"] == "partial" for row in counts)
    lines = [
        "# Localization stability: which training settings make JoLA's head selection reproducible?", "",
        (f"Runs of the embedded model ({', '.join(TASKS[t][0] for t in TASKS)}) under the settings of "
         "`analysis/localization_stability.py` (shared: " + ", ".join(f"{k}={v}" for k, v in BASE.items())
         + f"), each scored on the same first {items} test items by option likelihood."), "",
        "## Commands", "", "```",
        ("python analysis/localization_stability.py --stage screen "
         "--settings paper,target_const,target_gentle,target_wide,fast,delay_const"),
        "python analysis/localization_stability.py --stage screen --settings high_vector_lr,paper_no_noise,paper_long",
        "python analysis/localization_stability.py --stage confirm --settings target_wide,paper",
        "python analysis/localization_stability.py --stage confirm --settings target_wide_keep   # prunes, scores",
        "python analysis/localization_stability.py --stage confirm --settings target_zero_keep --seeds 1,2,3",
        "python analysis/localization_stability.py --stage confirm --settings shared_noise,no_noise --seeds 1,2,3",
        "python analysis/localization_stability.py --stage confirm --settings no_noise --seeds 4,5",
        "# the causal checks of one seed group (trains 2 + N runs), read into the table below:",
        ("jola-lens analyze runs/<setting>/<task>-seed* --output causal/<setting>-<task>[-k<K>][-per-kind] --causal K "
         "--causal-random 3   # each kind ranked by its own gates (the default); earlier checks: --causal-rank "
         "multiplicative"),
        f"python analysis/localization_stability.py --report --permutations {n_permutations}   # this file", "```",
        "", "Training resumes: the same command skips finished runs. The report reads only finished (scored) runs.",
        "", "## Runs per setting", "",
        ("**Partial results**: some settings have fewer runs than their stage needs (screen: 3 seeds of sst2; "
         "confirm: 5 seeds of each of 3 tasks); their rows will change as runs finish." if partial
         else "Every setting has at least the screen stage's runs."), "",
        to_markdown(pd.DataFrame(counts)), "", markdown.replace("## ", "## Measures: ", 2).strip(), "",
        "## Verdicts", "", *[f"- {line}" for line in verdicts], "",
        "## Causal checks", "",
        ("Per check: runs trained on the seed group's consensus top-k heads, k random heads (mean of the draws) and "
         "the bottom-k, beside the group's full edit and the bare model, on the same test items (accuracy %); "
         "top vs random by a paired sign-flip test over items (`causal/<check>/causal-*/causal.md` has every "
         "comparison)."), "",
        to_markdown(causals, ".3g") if len(causals) else "None run yet.", "",
        "## Figures", "", *[f"![{name}]({name})" for name in figures], ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=sorted(STAGES), default="screen")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated, from: " + ", ".join(SETTINGS))
    parser.add_argument("--tasks", help="comma-separated, from: " + ", ".join(TASKS) + " (default: the stage's)")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the stage's)")
    parser.add_argument("--limit", type=int, default=100, help="test items scored per run (the same for every run)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")),
                        help="torch threads (per trial)")
    parser.add_argument("--workers", type=int, default=1, help="trials trained at once (Ray workers)")
    parser.add_argument("--report", action="store_true",
                        help="train nothing: write measures.csv, measures.md, figures and README.md from the "
                             "finished runs under --output")
    parser.add_argument("--permutations", type=int, default=N_PERMUTATIONS,
                        help="random draws for chance levels and p-values in --report (default: %(default)s)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    if args.report:
        write_report(args.output, args.permutations)
        return
    tasks, seeds = STAGES[args.stage]
    tasks = args.tasks.split(",") if args.tasks else tasks
    seeds = [int(seed) for seed in args.seeds.split(",")] if args.seeds else seeds
    for name, given, known in (("settings", args.settings.split(","), SETTINGS), ("tasks", tasks, TASKS)):
        unknown = sorted(set(given) - set(known))
        if unknown:
            parser.error(f"unknown {name} {unknown}; choose from {sorted(known)}")
    run_grid(args.settings.split(","), tasks, seeds, args.limit, args.output, args.workers, args.threads)


if __name__ == "__main__":
    main()
