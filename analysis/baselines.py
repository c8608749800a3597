"""Baselines on one harness (issue 15): zero-shot, JoLA, JoLA without gates, LoRA, IA3 and LoFiT on the same test
items, with the same prompts and the same scoring.

    JOLA_DATA_DIR=/work/shared/data python analysis/baselines.py            # zero-shot, then the sweep (resumes)
    python analysis/baselines.py --report                                   # table, paired tests, figure, README

The trials are ``analysis/sweeps/baselines.yaml`` (written by ``analysis/sweeps/make_baselines.py``), run through
``jola-lens sweep``'s library call into ``analysis/results/baselines/runs/<method>/<task>-seed<S>``; zero-shot
scores land in ``runs/zero-shot/<task>``. The same command again skips finished runs and resumes interrupted ones;
``--report`` reads only finished (scored) runs, so it can be run at any point.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from jola_lens import atomic

sys.path.insert(0, str(Path(__file__).resolve().parent / "sweeps"))
import make_baselines as design  # noqa: E402

logger = logging.getLogger("baselines")
RESULTS = Path(__file__).resolve().parent / "results" / "baselines"
SWEEP_FILE = Path(__file__).resolve().parent / "sweeps" / "baselines.yaml"
ZERO_SHOT = "zero-shot"
METHOD_ORDER = (ZERO_SHOT, *design.METHODS)
REFERENCE = "jola"
MODEL = "SmolLM2-135M-Instruct"
TRAIN_ITEMS = int(design.SMALL_SETTINGS["train_size"])
STEPS = TRAIN_ITEMS // int(design.SMALL_SETTINGS["train_batch"]) * int(design.SMALL_SETTINGS["num_epoch"])


def task_slug(task: str) -> str:
    return task.replace("/", "-")


def run_zero_shot(output: Path, progress: bool) -> None:
    """The bare model on every task's test items (skipped where already scored)."""
    from jola_lens.training.pipeline import eval_run

    for task, settings in design.SMALL_TASKS.items():
        folder = output / "runs" / ZERO_SHOT / task_slug(task)
        if (folder / "metrics.json").is_file():
            continue
        overrides = {"task": task, "formulation": settings.get("formulation")}
        eval_run(None, overrides=overrides, scoring=str(settings["scoring"]), limit=int(settings["limit"]),
                 output_dir=folder, eval_batch=int(design.SMALL_SETTINGS["eval_batch"]),
                 max_length=int(settings.get("max_length", design.SMALL_SETTINGS["max_length"])), progress=progress)
        logger.info("zero-shot %s scored", task)


def run_trials(output: Path, workers: int, threads: int) -> None:
    from jola_lens.sweep import run_sweep

    result = run_sweep(SWEEP_FILE, output / "sweep", runs_dir=output / "runs", workers=workers,
                       threads_per_trial=threads, extend=True)
    logger.info("sweep: %s in %.0f s", result.counts, result.seconds)


# ---- report -----------------------------------------------------------------------------------------------
def _metrics(folder: Path) -> dict:
    path = folder / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _primary(task: str) -> tuple[str, str]:
    """(scoring section, metric) compared for a task."""
    return ("likelihood", "acc") if design.SMALL_TASKS[task]["scoring"] == "likelihood" else ("generation", "rougeL")


def finished_runs(output: Path) -> pd.DataFrame:
    """One row per scored run: method, task, seed, score, trainable parameters, seconds per training step."""
    rows = []
    for method in METHOD_ORDER:
        for task in design.SMALL_TASKS:
            section, metric = _primary(task)
            pattern = task_slug(task) if method == ZERO_SHOT else f"{task_slug(task)}-seed*"
            for folder in sorted((output / "runs" / method).glob(pattern)):
                metrics = _metrics(folder)
                results = metrics.get("evaluation", {}).get("results", {})
                if section not in results:
                    continue
                training = metrics.get("training", {})
                seed = int(folder.name.rsplit("-seed", 1)[1]) if method != ZERO_SHOT else None
                steps = training.get("steps")
                rows.append({"method": method, "task": task, "seed": seed, "folder": folder,
                             "score": float(results[section][metric]), "metric": metric,
                             "top_answer_share": top_answer_share(folder) if metric == "acc" else math.nan,
                             "trainable_parameters": training.get("trainable_parameters", 0),
                             "earlier_stage_parameters": sum(stage.get("trainable_parameters", 0) for stage in
                                                             training.get("stages", {}).values()),
                             "seconds_per_step": training["train_seconds"] / steps if steps else math.nan})
    return pd.DataFrame(rows)


def top_answer_share(folder: Path) -> float:
    """The run's :func:`jola_lens.evaluation.top_answer_share` (NaN when its answers are not a label set)."""
    from jola_lens.evaluation import top_answer_share as share

    value = share(atomic.read_jsonl(folder / "predictions.jsonl"))
    return math.nan if value is None else value


def item_scores(folder: Path, metric: str) -> pd.Series:
    """Per test item, in points: 100/0 correct (likelihood) or the item's ROUGE-L (generation), by item id."""
    values = {}
    with open(folder / "predictions.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            values[record["id"]] = 100.0 * record["correct"] if metric == "acc" else float(record[metric])
    return pd.Series(values)


PERMUTATIONS = 20_000
"""Random sign patterns of the paired test when there are more than this many (else every pattern: exact)."""


def paired_test(reference: list[pd.Series], other: list[pd.Series]) -> tuple[float, float, int]:
    """Paired sign-flip permutation test over test items of the per-item score, each method averaged over its seeds
    first (items are the unit; zero-shot is its one run): is the mean difference reference - other beyond the
    flips of its signs? Tied items (difference 0) are dropped, as they flip to themselves; exact when the other
    items have at most PERMUTATIONS sign patterns. Returns (mean difference over all items in points, two-sided p,
    items compared)."""
    a = pd.concat(reference, axis=1).mean(axis=1)
    b = pd.concat(other, axis=1).mean(axis=1)
    if set(a.index) != set(b.index):
        raise ValueError(f"the runs scored different test items ({len(set(a.index) ^ set(b.index))} differ): "
                         "rerun them with the same --limit")
    difference = (a - b.loc[a.index]).to_numpy()
    untied = difference[difference != 0]
    if untied.size < 2:  # one untied item: its two signs are equally extreme
        return float(difference.mean()), 1.0, len(difference)
    test = stats.permutation_test((untied,), np.mean, permutation_type="samples", n_resamples=PERMUTATIONS,
                                  alternative="two-sided", rng=np.random.default_rng(0))
    return float(difference.mean()), float(min(test.pvalue, 1.0)), len(difference)


def comparison_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per task and method: seeds, mean and sd of the score, and JoLA against it (paired over test items),
    with Benjamini-Hochberg adjusted p over every comparison in the table."""
    rows = []
    for task in design.SMALL_TASKS:
        part = runs[runs["task"] == task]
        if part.empty:
            continue
        metric = part["metric"].iloc[0]
        scores = {m: [item_scores(f, metric) for f in g["folder"]] for m, g in part.groupby("method")}
        for method in (m for m in METHOD_ORDER if m in scores):
            group = part[part["method"] == method]
            row = {"task": task, "method": method, "metric": metric, "runs": len(group),
                   "mean": group["score"].mean(), "sd": group["score"].std(ddof=1) if len(group) > 1 else math.nan,
                   "top_answer_share": group["top_answer_share"].mean()}
            if method != REFERENCE and REFERENCE in scores:
                row["jola_minus"], row["p"], row["items"] = paired_test(scores[REFERENCE], scores[method])
            rows.append(row)
    table = pd.DataFrame(rows)
    if "p" in table and table["p"].notna().any():
        tested = table["p"].notna()
        table.loc[tested, "p_bh"] = stats.false_discovery_control(table.loc[tested, "p"].to_numpy(), method="bh")
    return table


def cost_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method: trainable parameters and training seconds per optimizer step (mean over its runs)."""
    trained = runs[runs["method"] != ZERO_SHOT]
    table = trained.groupby("method", sort=False).agg(
        trainable_parameters=("trainable_parameters", "median"),
        earlier_stage_parameters=("earlier_stage_parameters", "median"),
        seconds_per_step=("seconds_per_step", "mean"), runs=("score", "size"))
    return table.reindex([m for m in METHOD_ORDER if m in table.index])


def verdicts(table: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    """Per task: which methods JoLA beats, loses to, or cannot be told from (adjusted p < alpha)."""
    lines = []
    for task, part in table.groupby("task", sort=False):
        tested = part[part["p"].notna()] if "p" in part else part.iloc[0:0]
        if tested.empty:
            continue
        better = [m for m, d, p in zip(tested["method"], tested["jola_minus"], tested["p_bh"]) if p < alpha and d > 0]
        worse = [m for m, d, p in zip(tested["method"], tested["jola_minus"], tested["p_bh"]) if p < alpha and d < 0]
        tied = [m for m in tested["method"] if m not in better + worse]
        words = [f"beats {', '.join(better)}" if better else "", f"loses to {', '.join(worse)}" if worse else "",
                 f"cannot be told from {', '.join(tied)}" if tied else ""]
        lines.append(f"{task}: JoLA " + "; ".join(w for w in words if w) + f" (BH-adjusted p < {alpha}).")
    return lines


def claim_summary(table: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    """The paper's claim (JoLA beats the other methods) per method: on how many tasks JoLA is ahead, behind, or
    not told apart (BH-adjusted p < alpha), over the tasks where both were scored."""
    if "p_bh" not in table:
        return []
    lines = []
    tested = table[table["p_bh"].notna()]
    for method in (m for m in METHOD_ORDER if m in set(tested["method"])):
        rows = tested[tested["method"] == method]
        ahead = int(((rows["p_bh"] < alpha) & (rows["jola_minus"] > 0)).sum())
        behind = int(((rows["p_bh"] < alpha) & (rows["jola_minus"] < 0)).sum())
        accuracy = rows[rows["metric"] == "acc"]["jola_minus"]
        mean = (f" (accuracy {accuracy.mean():+.1f} points on average over {len(accuracy)} accuracy task"
                f"{'s' if len(accuracy) > 1 else ''})" if len(accuracy) else "")
        lines.append(f"JoLA against {method}: ahead on {ahead}, behind on {behind}, not told apart on "
                     f"{len(rows) - ahead - behind} of {len(rows)} tasks{mean}.")
    return lines


def plot_accuracy_vs_parameters(runs: pd.DataFrame, costs: pd.DataFrame, path: Path) -> None:
    """Score against trainable parameters (log scale): one panel per task and one for the mean accuracy over the
    likelihood tasks (methods with every one of them); points are means over seeds, bars their sd, zero-shot the
    dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    likelihood = [t for t in design.SMALL_TASKS if _primary(t)[1] == "acc"]
    panels = [(task, [task], runs[runs["task"] == task]["metric"].iloc[0] if task in set(runs["task"]) else "")
              for task in design.SMALL_TASKS]
    panels.append(("mean over " + ", ".join(t.split("/")[1] for t in likelihood), likelihood, "acc"))
    colours = dict(zip(design.METHODS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    from matplotlib.ticker import LogLocator, NullFormatter

    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5), sharex=True)
    dodge = {method: 1.12 ** (i - (len(design.METHODS) - 1) / 2) for i, method in enumerate(design.METHODS)}
    for ax, (title, tasks, metric) in zip(axes.flat, panels):
        part = runs[runs["task"].isin(tasks)]
        for method in METHOD_ORDER:
            rows = part[part["method"] == method]
            if rows.empty or rows["task"].nunique() < len(tasks):
                continue
            per_seed = rows.groupby("seed", dropna=False)["score"].mean()
            mean = per_seed.mean()
            if method == ZERO_SHOT:
                ax.axhline(mean, color="grey", ls="--", lw=1)
                ax.annotate("zero-shot", (0.02, mean), xycoords=("axes fraction", "data"), va="bottom",
                            color="grey", fontsize=8)
                continue
            x = costs.at[method, "trainable_parameters"] * dodge[method]
            ax.errorbar(x, mean, yerr=per_seed.std(ddof=1) if len(per_seed) > 1 else None, fmt="o", capsize=3,
                        color=colours[method], label=method)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(title, fontsize=10)
        ax.set_ylabel({"acc": "accuracy (%)", "rougeL": "ROUGE-L"}.get(metric, ""))
        ax.grid(alpha=0.3)
    if not costs.empty:
        axes.flat[0].set_xlim(costs["trainable_parameters"].min() / 3, costs["trainable_parameters"].max() * 3)
    for ax in axes[-1]:
        ax.set_xlabel("trainable parameters (log scale)")
    handles = {label: handle for ax in axes.flat for handle, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), frameon=False)
    fig.suptitle(f"{MODEL}, {TRAIN_ITEMS} training examples, {STEPS} steps: score against trainable parameters "
                 "(mean ± sd over seeds; points dodged sideways)", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cell(value: float, digits: int = 1) -> str:
    return "" if pd.isna(value) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    return "" if pd.isna(value) else "< 0.001" if value < 0.001 else f"{value:.3f}"


def write_report(output: Path) -> None:
    runs = finished_runs(output)
    if runs.empty:
        raise SystemExit(f"no scored runs under {output / 'runs'}: run `python analysis/baselines.py` first")
    table = comparison_table(runs)
    costs = cost_table(runs)
    atomic.write_text(output / "comparison.csv", table.to_csv(index=False))
    atomic.write_text(output / "costs.csv", costs.to_csv())
    plot_accuracy_vs_parameters(runs, costs, output / "accuracy-vs-parameters.png")
    expected = len(design.trials(design.SMALL_TASKS, design.SMALL_SEEDS, design.GATES)) + len(design.SMALL_TASKS)
    shown = pd.DataFrame({
        "task": table["task"], "method": table["method"], "metric": table["metric"], "runs": table["runs"],
        "mean ± sd": [f"{m:.1f}" + ("" if pd.isna(s) else f" ± {s:.1f}") for m, s in zip(table["mean"], table["sd"])],
        "JoLA − method": [_cell(v) for v in table.get("jola_minus", pd.Series(math.nan, index=table.index))],
        "p (paired)": [_p(v) for v in table.get("p", pd.Series(math.nan, index=table.index))],
        "p (BH)": [_p(v) for v in table.get("p_bh", pd.Series(math.nan, index=table.index))],
        "top answer %": [_cell(v, 0) for v in table["top_answer_share"]]})
    cost_shown = pd.DataFrame({"method": costs.index, "trainable parameters": costs["trainable_parameters"].map(
        lambda v: f"{v:,.0f}"), "earlier stages": costs["earlier_stage_parameters"].map(
        lambda v: f"{v:,.0f}" if v else ""),
        "s / step (1 thread, shared machine)": costs["seconds_per_step"].map(_cell),
        "runs": costs["runs"]})
    settings = ", ".join(f"{k}={v}" for k, v in design.SMALL_SETTINGS.items())
    lines = [
        "# Baselines on one harness: zero-shot, JoLA, JoLA without gates, LoRA, IA3, LoFiT",
        "",
        f"Embedded SmolLM2-135M-Instruct; every method trained on the same 200 examples per task and seed and scored "
        f"on the same test items with the same prompts ({settings}). Runs finished: {len(runs)} of {expected} "
        "(the trials and 5 zero-shot scores).",
        "",
        "## Commands",
        "",
        "```",
        "JOLA_DATA_DIR=/work/shared/data OMP_NUM_THREADS=1 python analysis/baselines.py   # zero-shot + the sweep",
        "python analysis/baselines.py --report                                           # this file",
        "```",
        "",
        "Committed per run: config.json, metrics.json, predictions.jsonl, train_log.jsonl (the report reads "
        "these); the adapters themselves (about 100 MB) are not: the same command retrains them. The trials: "
        "`analysis/sweeps/baselines.yaml`; the full design for a bigger machine (26 tasks, the paper's "
        "20 epochs, 3 seeds): `analysis/sweeps/baselines-full.yaml` (`jola-lens sweep analysis/sweeps/"
        "baselines-full.yaml`).",
        "",
        "## Scores",
        "",
        "Accuracy (%) by option likelihood on 100 test items (SST-2, ARC-e, BoolQ, PIQA in cloze form); ROUGE-L on "
        "50 CommonGen items (the paper's 4-beam decoding). Paired test, JoLA against each other method: a sign-flip "
        "permutation test over the test items of the per-item score difference (correct 100/0, or the item's ROUGE-L; "
        "each method averaged over its seeds first; exact, or 20,000 random sign patterns); BH = Benjamini-Hochberg "
        "adjusted over every comparison in the table. Top answer: the share of test items given the most frequent "
        "answer, on the tasks whose answers are a label set (SST-2, BoolQ; near 100: the run collapsed onto one "
        "answer).",
        "",
        shown.to_markdown(index=False),
        "",
        "## Cost",
        "",
        cost_shown.to_markdown(index=False),
        "",
        "Trainable parameters: the kept adapter's (the figure's x axis); earlier stages: what LoFiT's first stage "
        "trains to choose its heads. Step time is the trainer's wall time over its optimizer steps on one thread "
        "of a 2-core machine running two trials at once; step time relative to the frozen model's own forward + "
        "backward: `benchmarks/method_costs.py`.",
        "",
        "![accuracy against parameters](accuracy-vs-parameters.png)",
        "",
        "## Verdicts",
        "",
        "The paper's claim, method by method:",
        "",
        *[f"- {line}" for line in claim_summary(table)],
        "",
        "Per task:",
        "",
        *[f"- {line}" for line in verdicts(table)],
        "",
    ]
    atomic.write_text(output / "README.md", "\n".join(lines))
    logger.info("wrote %s", output / "README.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")),
                        help="torch threads per trial")
    parser.add_argument("--workers", type=int, default=1, help="trials trained at once (Ray workers)")
    parser.add_argument("--report", action="store_true", help="write the table, tests and figure of finished runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.report:
        write_report(args.output)
        return
    run_zero_shot(args.output, progress=False)
    run_trials(args.output, args.workers, args.threads)


if __name__ == "__main__":
    main()
