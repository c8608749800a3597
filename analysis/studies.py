"""Shared machinery of the localization studies (analysis/localization_*.py).

A study trains (or, with ``--reuse``, keeps) one JoLA run per task on the embedded default model, scores the bare
model on the same test items, and writes into ``analysis/results/<study>/``:

    heatmap-grid.png, heatmap-grid-change.png (P(g≠0) minus its initial value), depth-profile.png,
    overlap.png, trajectories-<task>.png, logit-lens-<task>.png   figures (jola_lens.analysis)
    results.md / results.csv     zero-shot vs JoLA on the same test items, heads kept per edit kind
    summary.md / summary.csv / heads.csv / overlap.csv            head-selection tables
    logit-lens.csv               tokens the strongest additive edits of every run promote and suppress
    README.md                    the command that made all this, its wall time and the measured numbers
    runs/<task>/                 run folders (checkpoint/ and predictions.jsonl removed: --keep-checkpoints keeps them)
    runs/<task>-seed<S>/         the seed control: the first tasks trained again with another seed (--control-seed)
    runs/zeroshot/<task>/        metrics.json of the bare model
    sweep/                       the runs' sweep (`jola-lens sweep`): trials.csv, results.csv, each run's trial.log

The seed control answers the first question a reader of an overlap matrix should ask: do two tasks share heads
because of the task, or because both runs started from the same random gate logits? It trains the first
``--control-tasks`` again with ``--control-seed`` and sets "same task, other seed" beside "other task, same seed".

The default settings are sized for a 2-core CPU (100 training items, 50 steps) and use the ``localize`` preset
(:data:`STUDY_PRESET`); ``--preset none`` trains the spec's gates with penalty x10 instead, ``--paper`` restores
the paper's protocol, and every setting has its own flag.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from jola_lens.analysis import (
    additive_logit_lens,
    depth_profile,
    head_table,
    load_source,
    overlap_matrices,
    plot_depth_profile,
    plot_gate_trajectories,
    plot_head_grid,
    plot_logit_lens,
    plot_overlap,
    spearman,
    summary_markdown,
    summary_table,
    to_markdown,
)
from jola_lens.analysis.figures import slug
from jola_lens.analysis.sources import EditSource
from jola_lens.models import load_model
from jola_lens.run_folder import RunFolder
from jola_lens.sweep import run_sweep
from jola_lens.sweep.spec import parse_sweep
from jola_lens.tasks.choice import FORMULATIONS
from jola_lens.training.config import TrainConfig
from jola_lens.training.pipeline import RunSpec, eval_run
from jola_lens.training.presets import PRESETS, apply_preset

RESULTS_ROOT = Path(__file__).resolve().parent / "results"

FAST = {"train_size": 100, "val_size": 50, "num_epoch": 2, "train_batch": 4, "warmup_steps": 5, "lr": 5e-3,
        "gate_lr": 0.1, "penalty_scale": 10.0, "max_length": 256}
"""Sized for a 2-core CPU: 50 optimizer steps per task, enough for the gate penalty to close heads."""
PAPER = {"train_size": 200, "val_size": 200, "num_epoch": 20, "train_batch": 8, "warmup_steps": 50, "lr": 5e-3,
         "gate_lr": None, "penalty_scale": 1.0, "max_length": 400}
"""The paper's protocol (gate_lr None = lr). Embedded ARC-c has only 149 training items: lower --train-size."""

STUDY_PRESET = "localize"
"""The studies' gate settings (:mod:`jola_lens.training.presets`): without the gates' training noise the heads a run
keeps reproduce across seeds and follow the task (analysis/results/localization_stability/); ``--preset none`` gives
the studies' earlier settings (the spec's random gates and noise, penalty x10), with which their committed results were
made."""

TIE = 0.1
"""Seed control: Spearman ρ differences below this read as "neither the task nor the seed dominates"."""
METRICS = {"likelihood": ("acc", "acc_norm"), "generation": ("rougeL", "bleu")}
SCORE_COLUMNS = ("family", "task", "metric", "n", "zero_shot", "jola", "delta")
RUN_COLUMNS = ("family", "task", "kept_additive", "kept_multiplicative", "heads", "best_epoch", "train_s", "eval_s",
               "zero_shot_eval_s")


@dataclass(frozen=True)
class StudyTask:
    """One task of a study: its canonical name, family label, data source and scoring."""

    name: str
    family: str
    source: str = "embedded"
    scoring: str = "likelihood"

    @property
    def slug(self) -> str:
        return slug(self.name)


def parse_args(description: str, study: str, tasks: tuple[StudyTask, ...], fast: dict[str, Any] | None = None,
               argv: list[str] | None = None) -> argparse.Namespace:
    """The flags every study shares; ``fast`` overrides the CPU-sized defaults of :data:`FAST`."""
    fast = FAST | (fast or {})
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_argument_group("where")
    where.add_argument("--output", type=Path, default=RESULTS_ROOT / study,
                       help=f"folder for figures and tables (default: analysis/results/{study})")
    where.add_argument("--runs-dir", type=Path, help="run folders (default: OUTPUT/runs)")
    if any(task.source != "embedded" for task in tasks):
        where.add_argument("--data-dir", default=os.environ.get("JOLA_DATA_DIR"),
                           help="benchmark data folder (default: $JOLA_DATA_DIR)")
    what = parser.add_argument_group("what")
    what.add_argument("--tasks", nargs="+", metavar="TASK", choices=[t.name for t in tasks],
                      help=f"a subset of the study's tasks (default: all of {', '.join(t.name for t in tasks)})")
    what.add_argument("--formulation", choices=FORMULATIONS, default="cloze",
                      help="multiple-choice targets and prompt (default: cloze, the question alone and the option "
                           "text as target; text lists the options first, which gives small models a "
                           "first-option bias; label is the paper's answer1/true/option2 targets)")
    what.add_argument("--reuse", action="store_true",
                      help="keep runs (and zero-shot scores) whose folder is complete with these settings; resume "
                           "interrupted ones from their last epoch (default: train every run afresh)")
    what.add_argument("--no-eval", action="store_true", help="train only: no test scores, no zero-shot baseline")
    what.add_argument("--limit", type=int, default=200, help="test items per likelihood-scored task (default: 200)")
    what.add_argument("--gen-limit", type=int, default=50,
                      help="test items per generation-scored task (4-beam search is slow on CPU; default: 50)")
    what.add_argument("--trajectory-task", choices=[t.name for t in tasks], default=tasks[0].name,
                      help="the run whose gate trajectories are drawn (default: %(default)s)")
    what.add_argument("--workers", type=int, default=1,
                      help="runs trained at once (Ray workers, sharing the CPU threads; default: 1)")
    what.add_argument("--keep-checkpoints", action="store_true",
                      help="keep each run's checkpoint/ and predictions.jsonl (removed by default: size)")
    train = parser.add_argument_group("training (default: CPU-sized; --paper: the paper's protocol)")
    train.add_argument("--paper", action="store_true",
                       help="the paper's settings: " + ", ".join(f"{k} {v}" for k, v in PAPER.items())
                       + " (gate_lr None = lr); explicit flags still win")
    flags = {"train_size": int, "val_size": int, "num_epoch": int, "train_batch": int, "warmup_steps": int,
             "lr": float, "gate_lr": float, "penalty_scale": float, "max_length": int}
    for name, kind in flags.items():
        train.add_argument("--" + name.replace("_", "-"), dest=name, type=kind,
                           help=f"default: {fast[name]} (--paper: {PAPER[name]})")
    train.add_argument("--preset", choices=[*PRESETS, "none"], default=None,
                       help=f"named gate settings (jola-lens train --preset) on top of the flags above (default: "
                            f"{STUDY_PRESET}, whose head selection reproduces across seeds and follows the task; "
                            "--paper: none, the paper's gates and penalty)")
    train.add_argument("--gate-init", type=float, default=None, metavar="LOGIT",
                       help="start every gate logit at LOGIT (default: the spec's random uniform logits, which "
                            "differ between heads; a constant lets only training decide which heads close)")
    train.add_argument("--eval-batch", type=int, default=8, help="items per evaluation batch (default: 8)")
    train.add_argument("--seed", type=int, default=42,
                       help="data sample, initial gates and training order (default: 42); every run of a study "
                            "shares it, so compare a second seed to tell task effects from initialisation")
    control = parser.add_argument_group("seed control")
    control.add_argument("--control-seed", type=int, default=7,
                         help="seed of the control runs (default: %(default)s)")
    control.add_argument("--control-tasks", nargs="*", metavar="TASK", choices=[t.name for t in tasks],
                         help="tasks trained again with --control-seed (default: the first two selected tasks; "
                              "give none to skip the control)")
    args = parser.parse_args(argv)
    if args.control_seed == args.seed:
        parser.error("--control-seed must differ from --seed")
    preset = PAPER if args.paper else fast
    for name in flags:
        if getattr(args, name) is None:
            setattr(args, name, preset[name])
    if args.preset is None:
        args.preset = "none" if args.paper else STUDY_PRESET
    if getattr(args, "data_dir", "") is None and any(t.source != "embedded" for t in selected_tasks(tasks, args)):
        parser.error("these tasks read the benchmark data: pass --data-dir or set JOLA_DATA_DIR")
    args.runs_dir = args.runs_dir or args.output / "runs"
    return args


def selected_tasks(tasks: tuple[StudyTask, ...], args: argparse.Namespace) -> list[StudyTask]:
    return [task for task in tasks if not args.tasks or task.name in args.tasks]


def control_tasks(tasks: tuple[StudyTask, ...], args: argparse.Namespace) -> list[StudyTask]:
    """The tasks trained again with the control seed (default: the first two selected ones)."""
    chosen = selected_tasks(tasks, args)
    if args.control_tasks is None:
        return chosen[:2]
    return [task for task in chosen if task.name in args.control_tasks]


def train_config(args: argparse.Namespace, seed: int | None = None) -> TrainConfig:
    """The study's flags, then its preset wherever a setting is still at TrainConfig's default (as on `jola-lens
    train`); under a preset's sparsity target the spec's penalty, and so --penalty-scale, does not apply."""
    settings = {"lr": args.lr, "gate_lr": args.gate_lr, "train_batch": args.train_batch, "eval_batch": args.eval_batch,
                "num_epoch": args.num_epoch, "warmup_steps": args.warmup_steps, "max_length": args.max_length,
                "penalty_scale": args.penalty_scale, "gate_init": args.gate_init,
                "seed": args.seed if seed is None else seed}
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    preset = None if args.preset == "none" else args.preset
    unset = {key: defaults[key] for key in PRESETS.get(preset, {})}
    chosen = apply_preset(preset, unset | settings, defaults)
    if chosen.get("target_heads") is not None:
        chosen["penalty_scale"] = defaults["penalty_scale"]
    return TrainConfig(**chosen)


def run_spec(task: StudyTask, args: argparse.Namespace) -> RunSpec:
    return RunSpec(task=task.name, formulation=args.formulation, source=task.source, train_size=args.train_size,
                   val_size=args.val_size, data_dir=getattr(args, "data_dir", None))


def control_folder(task: StudyTask, args: argparse.Namespace) -> Path:
    return args.runs_dir / f"{task.slug}-seed{args.control_seed}"


def control_label(task: StudyTask, args: argparse.Namespace) -> str:
    return f"{task.name} (seed {args.control_seed})"


# ---- runs -------------------------------------------------------------------------------------------
def _metrics(folder: Path) -> dict[str, Any]:
    path = RunFolder(folder).metrics
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _evaluated(metrics: dict[str, Any], scoring: str, limit: int) -> bool:
    evaluation = metrics.get("evaluation") or {}
    return evaluation.get("scoring") == scoring and evaluation.get("limit") == limit


def prune(folder: Path) -> None:
    """Drop what the study does not need and is large: the resume checkpoint and the per-item predictions."""
    run = RunFolder(folder)
    shutil.rmtree(run.checkpoint_dir, ignore_errors=True)
    run.predictions.unlink(missing_ok=True)


def study_trial(task: StudyTask, args: argparse.Namespace, config: TrainConfig, name: str,
                evaluate: bool) -> dict[str, Any]:
    """One run of the study as a sweep trial: ``run_spec`` and ``config`` as `jola-lens train` settings."""
    spec = run_spec(task, args)
    return {"name": name, "task": spec.task, "formulation": spec.formulation, "source": spec.source,
            "train_size": spec.train_size, "val_size": spec.val_size,
            **({"data_path": str(Path(spec.data_dir).resolve())} if spec.data_dir else {}), **config.to_dict(),
            "run_mode": "train_eval" if evaluate else "train", "scoring": task.scoring,
            "limit": args.gen_limit if task.scoring == "generation" else args.limit}


def train_runs(tasks: list[StudyTask], controls: list[StudyTask], args: argparse.Namespace,
               config: TrainConfig) -> dict[str, dict[str, Any]]:
    """Train the study's runs and its seed controls as one sweep (``jola-lens sweep``, its table in OUTPUT/sweep/)
    into RUNS/<task> and RUNS/<task>-seed<S>; metrics.json by folder name. Without --reuse every run trains
    afresh; with it finished runs are kept, interrupted ones resumed and runs whose test scoring changed rescored."""
    trials = [study_trial(task, args, config, task.slug, not args.no_eval) for task in tasks]
    trials += [study_trial(task, args, train_config(args, args.control_seed), control_folder(task, args).name, False)
               for task in controls]
    sweep = parse_sweep(yaml.safe_dump({"trials": trials}, sort_keys=False), args.output / "study-sweep.yaml")
    result = run_sweep(sweep, args.output / "sweep", runs_dir=args.runs_dir, workers=args.workers,
                       threads_per_trial=max(1, torch.get_num_threads() // args.workers), extend=args.reuse,
                       overwrite=not args.reuse)
    failed = [row for row in result.rows if row.status != "done"]
    if failed:
        sys.exit("runs that did not finish: " + "; ".join(f"{row.name}: {row.error}" for row in failed)
                 + f" (logs: RUN/trial.log; table: {args.output / 'sweep' / 'trials.csv'})")
    if not args.keep_checkpoints:
        for trial in sweep.trials:
            prune(args.runs_dir / trial.name)
    return {trial.name: _metrics(args.runs_dir / trial.name) for trial in sweep.trials}


def ensure_zeroshot(task: StudyTask, args: argparse.Namespace) -> dict[str, Any]:
    """Score the bare model on the run's test items (or reuse that score); its metrics.json."""
    folder = args.runs_dir / "zeroshot" / task.slug
    limit = args.gen_limit if task.scoring == "generation" else args.limit
    metrics = _metrics(folder)
    if args.reuse and _evaluated(metrics, task.scoring, limit):
        print(f"[{task.name}] reusing the zero-shot score in {folder}", flush=True)
        return metrics
    spec = run_spec(task, args)
    overrides = {"task": spec.task, "formulation": spec.formulation, "source": spec.source, "data_dir": spec.data_dir}
    outcome = eval_run(None, overrides=overrides, scoring=task.scoring, limit=limit, output_dir=folder,
                       eval_batch=args.eval_batch, max_length=args.max_length, progress=False)
    if not args.keep_checkpoints:
        prune(folder)
    print(f"[{task.name}] zero-shot scored in {outcome.seconds:.0f} s", flush=True)
    return outcome.metrics


def result_rows(task: StudyTask, run: dict[str, Any], zeroshot: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per reported metric: zero-shot vs JoLA on the same items, and the heads the run kept."""
    training = run["training"]
    base = {"family": task.family, "task": task.name,
            **{f"kept_{kind}": counts["kept"] for kind, counts in training["heads"].items()},
            "heads": next(iter(training["heads"].values()))["total"], "best_epoch": training["best_epoch"],
            "train_s": round(training["train_seconds"])}
    if zeroshot is None:
        return [base]
    evaluation = run["evaluation"]
    jola, bare = evaluation["results"][task.scoring], zeroshot["evaluation"]["results"][task.scoring]
    return [base | {"scoring": task.scoring, "metric": metric, "n": evaluation["n"], "zero_shot": bare[metric],
                    "jola": jola[metric], "delta": jola[metric] - bare[metric],
                    "eval_s": round(evaluation["seconds"]), "zero_shot_eval_s": round(zeroshot["evaluation"]["seconds"])}
            for metric in METRICS[task.scoring]]


# ---- the study ----------------------------------------------------------------------------------------
def run_study(title: str, intro: str, tasks: tuple[StudyTask, ...], args: argparse.Namespace) -> None:
    """Train/reuse every run, then write the figures, tables and README.md into ``args.output``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    start = time.monotonic()
    chosen = selected_tasks(tasks, args)
    config = train_config(args)
    controls = control_tasks(tasks, args)
    runs = train_runs(chosen, controls, args, config)
    rows = []
    for task in chosen:
        rows += result_rows(task, runs[task.slug], None if args.no_eval else ensure_zeroshot(task, args))
    results = pd.DataFrame(rows)
    trajectory = next((t for t in chosen if t.name == args.trajectory_task), chosen[0])
    write_outputs(title, intro, chosen, controls, trajectory, results, config, args, time.monotonic() - start)


def study_sources(tasks: list[StudyTask], controls: list[StudyTask], args: argparse.Namespace) -> list[EditSource]:
    """The study's runs, then the seed-control runs labelled "<task> (seed S)"."""
    sources = [load_source(args.runs_dir / task.slug) for task in tasks]
    return sources + [replace(load_source(control_folder(task, args)), label=control_label(task, args))
                      for task in controls]


def write_outputs(title: str, intro: str, tasks: list[StudyTask], controls: list[StudyTask], trajectory: StudyTask,
                  results: pd.DataFrame, config: TrainConfig, args: argparse.Namespace, seconds: float) -> None:
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)
    sources = study_sources(tasks, controls, args)
    table = head_table(sources)
    written: list[Path] = []

    def text(name: str, content: str) -> None:
        (output / name).write_text(content, encoding="utf-8")
        written.append(output / name)

    def figure(name: str, plot: Any, *items: Any, **options: Any) -> None:
        plot(*items, path=output / name, **options)
        written.append(output / name)

    text("heads.csv", table.to_csv(index=False))
    text("summary.csv", summary_table(table).to_csv(index=False))
    text("summary.md", summary_markdown(table))
    text("results.csv", results.to_csv(index=False))
    text("results.md", results_markdown(results))
    overlaps = overlap_table(table)
    text("overlap.csv", overlaps.to_csv(index=False))
    if len(sources) > 1:
        figure("heatmap-grid.png", plot_head_grid, table)
        figure("heatmap-grid-change.png", plot_head_grid, table, "change")
        figure("overlap.png", plot_overlap, table)
    figure("depth-profile.png", plot_depth_profile, table)
    trajectory_source = sources[[t.name for t in tasks].index(trajectory.name)]
    figure(f"trajectories-{trajectory.slug}.png", plot_gate_trajectories, trajectory_source)
    model, tokenizer = load_model()
    lens = pd.concat([additive_logit_lens(source, model, tokenizer, heads=5) for source in sources[:len(tasks)]],
                     ignore_index=True)
    text("logit-lens.csv", lens.to_csv(index=False))
    figure(f"logit-lens-{trajectory.slug}.png", plot_logit_lens, lens[lens["run"] == trajectory_source.label],
           title=f"{trajectory.name} — {trajectory_source.model}")
    control_runs = {control_label(task, args): task.name for task in controls}
    families = {task.name: task.family for task in tasks}
    text("README.md", readme(title, intro, table, results, overlaps, lens, control_runs, families, config, args, seconds,
                             [p.name for p in written if p.suffix == ".png"]))
    for path in written:
        print(f"wrote {path}")
    print(f"run folders in {args.runs_dir}; {seconds / 60:.1f} min")


def results_markdown(results: pd.DataFrame) -> str:
    """The scores (when evaluated) and, per run, the heads kept and the time spent."""
    runs = to_markdown(results.drop_duplicates("task")[[c for c in RUN_COLUMNS if c in results]])
    if "zero_shot" not in results:
        return runs + "\n"
    return to_markdown(results[list(SCORE_COLUMNS)], floatfmt=".1f") + "\n\n" + runs + "\n"


def overlap_table(table: pd.DataFrame) -> pd.DataFrame:
    """Tidy pairwise overlaps: kind, run_a, run_b, Jaccard of kept heads, Spearman of P(g != 0)."""
    frames = []
    for kind in table["kind"].unique():
        jac, rho = overlap_matrices(table, kind)
        pairs = [(a, b) for i, a in enumerate(jac.index) for b in jac.index[i + 1:]]
        frames.append(pd.DataFrame({"kind": kind, "run_a": [a for a, _ in pairs], "run_b": [b for _, b in pairs],
                                    "jaccard": [jac.loc[a, b] for a, b in pairs],
                                    "spearman": [rho.loc[a, b] for a, b in pairs]}))
    return pd.concat(frames, ignore_index=True)


def findings(table: pd.DataFrame, overlaps: pd.DataFrame, controls: dict[str, str],
             families: dict[str, str] | None = None) -> list[str]:
    """Plain statements read off the head table: kept heads, where they sit, what all runs share, how tasks of
    one family (``families``: run label -> family) overlap compared with tasks of different families, and how the
    seed control (``controls``: control run label -> its task's run label) compares with the task pairs."""
    lines = []
    main = table[~table["run"].isin(list(controls))]
    profile = depth_profile(main)
    n_runs = main["run"].nunique()
    for kind, rows in main[main["edited"]].groupby("kind", sort=False):
        kept = rows.groupby("run", sort=False)["selected"].sum()
        per_layer = profile[profile["kind"] == kind].groupby("layer")["n_selected"].sum()
        top_layers = ", ".join(f"L{layer} ({int(n)})" for layer, n in per_layer.nlargest(5).items() if n > 0)
        mean_p = profile[profile["kind"] == kind].groupby("layer")["mean_p_nonzero"].mean()
        depth = (f"mean P(g≠0) over runs highest in {', '.join(f'L{layer}' for layer in mean_p.nlargest(3).index)}"
                 f", lowest in {', '.join(f'L{layer}' for layer in mean_p.nsmallest(3).index)}")
        shared = rows.groupby(["layer", "head"])["selected"].all()
        shared = [f"L{layer}H{head}" for (layer, head), all_kept in shared.items() if all_kept]
        listed = f" ({', '.join(shared[:12])}{' ...' if len(shared) > 12 else ''})" if shared else ""
        kinds = overlaps[overlaps["kind"] == kind]
        pairs = kinds[~kinds["run_a"].isin(list(controls)) & ~kinds["run_b"].isin(list(controls))]
        if rows["init_p_nonzero"].nunique() == 1:
            init_note = "every gate started at the same logit (--gate-init), so only training ordered the heads."
        else:
            from_init = [spearman(run["init_p_nonzero"], run["p_nonzero"]) for _, run in rows.groupby("run")]
            init_note = (f"Spearman ρ of each run's P(g≠0) with its own value at initialisation: mean "
                         f"{pd.Series(from_init).mean():.2f} (near 1: the ranking still mostly reflects where the "
                         "gates started; heatmap-grid-change.png shows what training moved).")
        lines.append(f"- **{kind}**: heads kept per run {int(kept.min())}-{int(kept.max())} of {len(rows) // n_runs} "
                     f"(median {kept.median():.0f}); layers with the most kept heads over all runs: "
                     f"{top_layers or 'none'}; {depth}; kept in all {n_runs} runs: {len(shared)} head(s){listed}; "
                     f"other task, same seed: mean pairwise Jaccard {pairs['jaccard'].mean():.2f} "
                     f"(range {pairs['jaccard'].min():.2f}-{pairs['jaccard'].max():.2f}), mean Spearman ρ of P(g≠0) "
                     f"{pairs['spearman'].mean():.2f}; {init_note}"
                     + (_family_statement(pairs, families) if families and len(set(families.values())) > 1 else "")
                     + "".join(_control_statement(kinds, control, run) for control, run in controls.items())
                     + (_verdict(kinds, pairs, controls) if controls else ""))
    return lines


def _verdict(overlaps: pd.DataFrame, task_pairs: pd.DataFrame, controls: dict[str, str]) -> str:
    """Whether the same task under another seed agrees more (task-driven) or less (seed-driven) than two tasks
    under one seed, by the mean Spearman ρ of P(g≠0)."""
    same_task = pd.concat([overlaps[((overlaps["run_a"] == c) & (overlaps["run_b"] == r))
                                    | ((overlaps["run_a"] == r) & (overlaps["run_b"] == c))]
                           for c, r in controls.items()])["spearman"].mean()
    other_task = task_pairs["spearman"].mean()
    if abs(same_task - other_task) < TIE:
        reading = "neither dominates: another seed changes the ranking about as much as another task does"
    elif same_task > other_task:
        reading = "the ranking of these heads follows the task"
    else:
        reading = "the ranking of these heads follows the seed (the random numbers of the run), not the task"
    return (f" **Verdict**: same task, other seed ρ {same_task:.2f} vs other task, same seed ρ {other_task:.2f}: "
            f"{reading}.")


def _family_statement(pairs: pd.DataFrame, families: dict[str, str]) -> str:
    """" Within a family: Jaccard j, ρ r; between families: ..." over the task pairs."""
    within = pairs["run_a"].map(families) == pairs["run_b"].map(families)
    parts = [f"{name}: mean Jaccard {group['jaccard'].mean():.2f}, mean Spearman ρ {group['spearman'].mean():.2f}"
             for name, group in (("within a family", pairs[within]), ("between families", pairs[~within]))
             if len(group)]
    return " Task pairs " + "; ".join(parts) + "."


def _control_statement(overlaps: pd.DataFrame, control: str, run: str) -> str:
    """" Same task, other seed: Jaccard j, Spearman ρ r." for one control run and its task's run."""
    pair = overlaps[((overlaps["run_a"] == control) & (overlaps["run_b"] == run))
                    | ((overlaps["run_a"] == run) & (overlaps["run_b"] == control))].iloc[0]
    return (f" Same task, other seed ({run} vs {control}): Jaccard {pair['jaccard']:.2f}, "
            f"Spearman ρ {pair['spearman']:.2f}.")


def lens_markdown(lens: pd.DataFrame) -> str:
    """One row per run: its strongest additive head, the top-5 tokens it promotes and suppresses."""
    rows = []
    for run, group in lens.groupby("run", sort=False):
        top = group.sort_values("written_norm", ascending=False, kind="stable").iloc[0]
        head = group[(group["layer"] == top["layer"]) & (group["head"] == top["head"])]
        tokens = {direction: " ".join(repr(t) for t in head[head["direction"] == direction]
                                      .sort_values("rank")["token"].head(5))
                  for direction in ("promotes", "suppresses")}
        rows.append({"run": run, "head": f"L{top['layer']}H{top['head']}", "norm": round(float(top["written_norm"]), 3),
                     **tokens})
    return to_markdown(pd.DataFrame(rows)) if rows else "(no open additive gate)"


def readme(title: str, intro: str, table: pd.DataFrame, results: pd.DataFrame, overlaps: pd.DataFrame,
           lens: pd.DataFrame, controls: dict[str, str], families: dict[str, str], config: TrainConfig,
           args: argparse.Namespace, seconds: float, figures: list[str]) -> str:
    command = "python " + shlex.join([_shown(Path(sys.argv[0])), *(a for a in sys.argv[1:] if a != "--reuse")])
    runs = results.drop_duplicates("task")
    compute = sum(runs[c].sum() for c in ("train_s", "eval_s", "zero_shot_eval_s") if c in runs) / 60
    settings = {"train_size": args.train_size, "val_size": args.val_size, **config.to_dict(),
                "test items (likelihood / generation)": f"{args.limit} / {args.gen_limit}"}
    if args.gate_init is not None:
        title += f" (every gate starting at logit {args.gate_init})"
        intro += (f" Every gate logit starts at {args.gate_init} (`--gate-init`) instead of the spec's random "
                  "uniform values, so which heads close is decided by training alone, not by where each gate started.")
    parts = [f"# {title}", "", intro, "",
             "## How these files were made", "", "```bash", command, "```", "",
             (f"Training and scoring took {compute:.0f} min on {os.cpu_count()} CPU core(s) ({platform.machine()}, "
              f"torch threads {torch.get_num_threads()}; sum of the runs' train_s, eval_s and zero_shot_eval_s "
              "below); "
              + (f"these files were redrawn from the saved runs with `--reuse` ({seconds / 60:.1f} min). "
                 if args.reuse else f"the command took {seconds / 60:.1f} min. ")
              + f"Written {datetime.now(timezone.utc):%Y-%m-%d}. Model: the embedded SmolLM2-135M-Instruct (30 "
              f"layers x 9 heads), `hf` backend, formulation `{args.formulation}`, Alpaca prompt."), "",
             "Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()), ""]
    parts += ["## Results", "",
              ("Zero-shot vs JoLA on the same test items. Likelihood scoring ranks the answer options by "
               "log-probability (`acc`: summed; `acc_norm`: per character); generation scoring uses the paper's "
               "4-beam decoding (ROUGE-L, BLEU). `kept_*`: heads whose evaluation gate is > 0, of `heads`; "
               "`train_s` / `eval_s`: seconds of training and of scoring the JoLA run."), "",
              results_markdown(results),
              "## What the head tables say", "",
              (f"Seed control: {', '.join(controls.values())} trained again with seed {args.control_seed} (rows "
               "labelled '(seed ...)' in the figures; not scored, not in the results table). If the same task "
               "under another seed overlaps less than two tasks under one seed, the selection reflects the "
               "initial gate logits more than the task." if controls else "No seed control (--control-tasks "
               "was empty): overlaps between runs that share a seed also reflect their shared initial gates."), "",
              *findings(table, overlaps, controls, families), "",
              "## What the strongest additive edits write", "",
              ("Per run, the head whose additive edit writes the largest vector through its slice of the output "
               "projection, and the tokens that vector raises and lowers most through the unembedding (direct "
               "logit effect, `jola_lens.analysis.additive_logit_lens`):"), "",
              lens_markdown(lens), "",
              "## Figures", "", *[f"![{name}]({name})" for name in figures], "",
              ("Tables: `results.md/.csv` (scores), `summary.md/.csv` (heads kept, parameters used, top heads), "
               "`heads.csv` (one row per run, kind, layer, head), `overlap.csv` (pairwise Jaccard / Spearman), "
               "`logit-lens.csv` (tokens each run's five strongest additive edits promote and suppress). "
               f"Run folders: `{_shown(args.runs_dir)}` (config.json, edit/, gates/, train_log.jsonl, metrics.json; "
               "`zeroshot/` holds the bare model's scores)."), ""]
    return "\n".join(parts)


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)
