"""`jola-lens analyze RUN [RUN ...] --output DIR`: head-selection figures and tables for one or many runs.

Runs of different base models are grouped per model: the tables cover every run, and the figures that compare
heads across runs (grid, overlap, depth profile) are drawn once per model, their file names prefixed with it.

Runs of one task, model and settings that differ in seed form seed groups. With such groups it also writes the
consensus over seeds (consensus.csv, consensus heatmaps), stability against chance (stability.csv) and the task
comparison (task-comparison.csv), and prints their verdicts; with one run per task it says that the figures
cannot separate task from seed. ``--causal K`` also trains and scores each group's causal check
(:mod:`jola_lens.analysis.causal_check`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from jola_lens import atomic
from jola_lens.analysis.comparison import task_comparison
from jola_lens.analysis.consensus import consensus_heads, consensus_table, plot_consensus_grid
from jola_lens.analysis.depth import plot_depth_profile
from jola_lens.analysis.figures import COLOR_SCALES, FORMATS, save_figure, slug
from jola_lens.analysis.groups import (
    NOISE_ADVICE,
    SEEDS_ADVICE,
    SeedGroup,
    SeedGroupError,
    add_groups,
    gate_noise_runs,
    group_notes,
    seed_groups,
)
from jola_lens.analysis.heatmaps import plot_head_grid, plot_head_heatmap
from jola_lens.analysis.logit_lens import additive_logit_lens, multiplicative_scalings, plot_logit_lens
from jola_lens.analysis.overlap import plot_overlap
from jola_lens.analysis.sources import UNKNOWN_MODEL, EditSource, load_sources
from jola_lens.analysis.stability import N_PERMUTATIONS, stability_report, stability_verdicts
from jola_lens.analysis.summary import summary_markdown, summary_table, to_markdown
from jola_lens.analysis.tables import head_table, single_model
from jola_lens.analysis.trajectories import NoGateSnapshotsError, plot_gate_trajectories
from jola_lens.edit import EditShapeError
from jola_lens.models import DEFAULT_MODEL, load_model


def add_analyze_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``analyze`` subcommand (its handler is also set as the ``func`` default)."""
    parser = subparsers.add_parser(
        "analyze", help="figures and tables of the heads JoLA's gates selected",
        description="Write head-selection heatmaps, depth profiles, task overlap, gate trajectories and "
                    "summary tables (summary.md, summary.csv, heads.csv) for one or many run folders. Runs of "
                    "different base models are compared only within each model.")
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders written by `jola-lens train` "
                        "(saved edit folders work too, without trajectories)")
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="folder to write into")
    parser.add_argument("--color", choices=tuple(COLOR_SCALES), default="p_nonzero",
                        help="what heatmap colour shows (default: %(default)s; 'change' needs epoch-0 gate snapshots)")
    parser.add_argument("--format", choices=FORMATS, default="png", help="figure format (default: %(default)s)")
    parser.add_argument("--top-k", type=int, default=5, metavar="N", help="heads listed per run and kind")
    parser.add_argument("--permutations", type=int, default=N_PERMUTATIONS, metavar="N",
                        help="random draws for the chance levels and p-values of the seed analysis "
                             "(default: %(default)s)")
    parser.add_argument("--logit-lens", action="store_true",
                        help="also load each base model and show the tokens the strongest additive edits promote "
                             "and suppress")
    causal = parser.add_argument_group("causal check", "does a seed group's consensus head selection matter? "
                                       "(trains runs: see jola_lens.analysis.causal_check)")
    causal.add_argument("--causal", type=int, metavar="K",
                        help="for every seed group, train its settings on the consensus top-K heads, the bottom-K "
                             "and --causal-random random K-head sets, score them with the full edit and zero-shot on "
                             "the same test items, and write DIR/causal-<group>/causal.{csv,md} (resumable)")
    causal.add_argument("--causal-random", type=int, default=3, metavar="N",
                        help="random head sets per group (default: %(default)s)")
    causal.add_argument("--causal-rank", choices=("per_kind", "additive", "multiplicative", "both"),
                        default="per_kind",
                        help="how heads are ranked: per_kind (default; each edit kind by its own gates' consensus, "
                             "restricted to its own K heads), or one set for both kinds from the additive or "
                             "multiplicative gates or their mean")
    causal.add_argument("--causal-limit", type=int, metavar="N",
                        help="test items per run (default: as many as the group's runs were scored on)")
    parser.set_defaults(func=run_analyze)
    return parser


def run_analyze(args: argparse.Namespace) -> int:
    """Run ``jola-lens analyze``; 0 on success, 2 on bad input (message on stderr)."""
    try:
        return _analyze(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"jola-lens analyze: error: {error}", file=sys.stderr)
        return 2


def _analyze(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}")
    if args.permutations < 1:
        raise ValueError(f"--permutations must be at least 1, got {args.permutations}")
    sources = load_sources(args.runs)
    if args.causal is not None and not any(group.n_runs > 1 for group in seed_groups(sources)):
        raise ValueError("--causal needs a seed group: runs of one task that differ only in the seed (at least 2, "
                         "better 3). " + SEEDS_ADVICE)
    if args.color == "change":
        missing = [source.label for source in sources if source.initial_logits is None]
        if missing:
            raise ValueError(f"--color change needs the gate logits before training (gates/epoch-0000.safetensors), "
                             f"missing for: {', '.join(missing)}; choose another --color")
    output = Path(args.output)
    groups = seed_groups(sources)
    table = add_groups(head_table(sources), groups)
    by_task = any(group.n_runs > 1 for group in groups)

    def write(name: str, content: Figure | str) -> str:
        path = output / name
        if isinstance(content, Figure):
            save_figure(content, path)
        else:
            atomic.write_text(path, content)
        print(f"wrote {path}")
        return name

    models = list(dict.fromkeys(table["model"]))
    for model in models:
        single_model(table[table["model"] == model])  # same grid in every run of a model, else a clear error
    notes: list[str] = []
    for note in group_notes(groups):
        notes.append(note)
        print(note)
    write("heads.csv", table.to_csv(index=False))
    write("summary.csv", summary_table(table).to_csv(index=False))
    if len(models) > 1:
        notes.append(f"The runs come from {len(models)} base models ({', '.join(models)}); heads are compared only "
                     "within each model, and each model's figures carry its name.")
        print(notes[-1])
    figures: list[str] = []
    for model in models:
        group = table[table["model"] == model]
        prefix = f"{slug(model)}-" if len(models) > 1 else ""
        runs = list(dict.fromkeys(group["run"]))
        for run in runs:
            figures.append(write(f"{prefix}heatmap-{slug(run)}.{args.format}",
                                 plot_head_heatmap(group[group["run"] == run], args.color)))
        if len(runs) > 1:
            figures.append(write(f"{prefix}heatmap-grid.{args.format}", plot_head_grid(group, args.color)))
            figures.append(write(f"{prefix}overlap.{args.format}", plot_overlap(group, by_task=by_task)))
        figures.append(write(f"{prefix}depth-profile.{args.format}", plot_depth_profile(group)))
    for source in sources:
        try:
            figures.append(write(f"trajectories-{slug(source.label)}.{args.format}", plot_gate_trajectories(source)))
        except NoGateSnapshotsError as error:
            notes.append(f"Skipped gate trajectories: {error}.")
            print(notes[-1])
    sections = [_seed_section(table, groups, args, write, figures, gate_noise_runs(sources)),
                _scalings_section(sources, args.top_k)]
    if args.logit_lens:
        sections.append(_logit_lens_section(sources, args, write, figures, notes))
    if args.causal is not None:
        sections.append(_causal_section(sources, groups, args))
    markdown = _summary_document(sources, table, args.top_k, notes, sections, figures)
    write("summary.md", markdown)
    return 0


def _seed_section(table: pd.DataFrame, groups: list[SeedGroup], args: argparse.Namespace,
                  write: Callable[[str, Figure | str], str], figures: list[str], noisy: list[str]) -> str:
    """Consensus over seeds, stability against chance and the task comparison, or why there are none; ``noisy``:
    the runs trained with gate noise, named in a note."""
    lines = ["## Task or seed?", ""]
    if noisy:
        shown = ", ".join(noisy) if len(noisy) <= 4 else f"{', '.join(noisy[:3])} and {len(noisy) - 3} more"
        note = f"Note: {len(noisy)} of these runs ({shown}) were {NOISE_ADVICE}"
        print(note)
        lines += [note, ""]
    if not any(group.n_runs > 1 for group in groups):
        message = ("Every task here has a single run (one seed), so these figures cannot separate what the task "
                   "selects from what the seed selects: on small runs the heads a run keeps can follow its random "
                   "initial gates rather than its task. " + SEEDS_ADVICE)
        print(message)
        return "\n".join([*lines, message, ""])
    singles = [group.name for group in groups if group.n_runs == 1]
    consensus = consensus_table(table)
    write("consensus.csv", consensus.to_csv(index=False))
    models = list(dict.fromkeys(table["model"]))
    for model in models:
        names = [g.name for g in groups if g.model == model and g.n_runs > 1]
        prefix = f"{slug(model)}-" if len(models) > 1 else ""
        for name in names:
            figures.append(write(f"{prefix}consensus-{slug(name)}.{args.format}",
                                 plot_consensus_grid(consensus, [name])))
        if len(names) > 1:
            figures.append(write(f"{prefix}consensus-grid.{args.format}", plot_consensus_grid(consensus, names)))
    report = stability_report(table, n_permutations=args.permutations)
    write("stability.csv", report.to_csv(index=False))
    verdicts = stability_verdicts(report)
    lines += [("Runs that share task, model and settings and differ in seed form a group. Chance = random "
               "selections of the same sizes (jola_lens.analysis.stability); p-values are one-sided, from "
               f"{args.permutations} random draws."), "", "### Stability across seeds", ""]
    lines += [f"- {verdict}" for verdict in verdicts]
    if singles:
        lines.append(f"- Left out (one run each, so no seed comparison): {', '.join(singles)}.")
    print("Stability across seeds:\n" + "\n".join(f"  {verdict}" for verdict in verdicts))
    shown = report[["group", "kind", "level", "measure", "value", "ci_low", "ci_high", "null_mean", "p_value"]]
    lines += ["", to_markdown(shown), "", "### Do the tasks differ beyond seed noise?", ""]
    try:
        comparison = task_comparison(table, n_permutations=args.permutations)
    except SeedGroupError as error:
        message = f"No task comparison: {error}"
        print(message)
        lines += [message, ""]
    else:
        write("task-comparison.csv", comparison.to_csv(index=False))
        lines += [("Permutation test over runs: task labels shuffled among runs; statistic = mean between-task "
                   "minus mean within-task distance (selection: 1 - Jaccard of kept heads; ranking: 1 - RBO of "
                   "P(g≠0))."), ""]
        lines += [f"- {row.model}, {row.kind}, {row.distance}: {row.verdict}" for row in comparison.itertuples()]
        print("Task comparison:\n" + "\n".join(f"  {row.kind}, {row.distance}: {row.verdict}"
                                                  for row in comparison.itertuples()))
    multi = consensus[consensus["group"].isin([g.name for g in groups if g.n_runs > 1])]
    lines += ["", f"### Heads kept most consistently across seeds (top {args.top_k} per group and kind)", "",
              to_markdown(consensus_heads(multi, args.top_k)), ""]
    return "\n".join(lines)


def _causal_section(sources: list[EditSource], groups: list[SeedGroup], args: argparse.Namespace) -> str:
    """Run the causal check of every seed group with several runs, each into DIR/causal-<group>/."""
    from jola_lens.analysis.causal_check import run_causal_check

    lines = ["## Causal check", "", (f"Per seed group: runs trained on the consensus top-{args.causal} heads, the "
                                     f"bottom-{args.causal} and {args.causal_random} random sets of {args.causal}, "
                                     "compared with the full edit and zero-shot on the same test items."), ""]
    by_label = {source.label: source for source in sources}
    print("Causal check:")
    for group in (g for g in groups if g.n_runs > 1):
        folder = f"causal-{slug(group.name)}"
        check = run_causal_check([by_label[label] for label in group.runs], k=args.causal,
                                 n_random=args.causal_random, output_dir=Path(args.output) / folder,
                                 limit=args.causal_limit, rank_by=args.causal_rank)
        print(f"  {group.name}: {check.verdict} (wrote {Path(args.output) / folder})")
        lines.append(f"- {group.name}: {check.verdict} ([causal.md]({folder}/causal.md))")
    return "\n".join(lines) + "\n"


def _scalings_section(sources: list[EditSource], top_k: int) -> str:
    frames = [multiplicative_scalings(source, heads=top_k, dims=3) for source in sources]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return "## Multiplicative edits\n\nNo open multiplicative head.\n"
    return (f"## Largest multiplicative scalings (1 + g_m m), top {top_k} heads per run, 3 dimensions each\n\n"
            + to_markdown(pd.concat(frames, ignore_index=True)) + "\n")


def _logit_lens_section(sources: list[EditSource], args: argparse.Namespace, write: Callable[[str, Figure], str],
                        figures: list[str], notes: list[str]) -> str:
    """Load each base model once and read its runs' additive edits through the unembedding."""
    lines = ["## What the additive edits write (logit lens)", "",
             ("Direct effect on the logits, `W_U (w_norm ⊙ W_O[:, h] g_a a)`, without the final norm's 1/RMS scale "
              "(see jola_lens.analysis.logit_lens); full table in logit-lens.csv."), ""]
    tables = []
    for model_name in dict.fromkeys(source.model for source in sources):
        if model_name == UNKNOWN_MODEL:
            notes.append("Skipped the logit lens for runs with no recorded base model.")
            print(notes[-1])
            continue
        try:
            model, tokenizer = load_model(None if model_name == DEFAULT_MODEL else model_name)
        except (OSError, ValueError) as error:
            notes.append(f"Skipped the logit lens for {model_name}: could not load it ({error}).")
            print(notes[-1])
            continue
        for source in (s for s in sources if s.model == model_name):
            try:
                lens = additive_logit_lens(source, model, tokenizer, heads=args.top_k)
            except (EditShapeError, ValueError) as error:
                notes.append(f"Skipped the logit lens for {source.label}: {error}")
                print(notes[-1])
                continue
            if lens.empty:
                continue
            tables.append(lens)
            figures.append(write(f"logit-lens-{slug(source.label)}.{args.format}",
                                 plot_logit_lens(lens, title=f"{source.label} — {model_name}")))
            promoted = lens[(lens["direction"] == "promotes") & (lens["rank"] <= 3)]
            suppressed = lens[(lens["direction"] == "suppresses") & (lens["rank"] <= 3)]
            heads = promoted.groupby(["layer", "head"], sort=False)["token"].agg(" ".join).rename("promotes")
            heads = pd.concat([heads, suppressed.groupby(["layer", "head"], sort=False)["token"]
                               .agg(" ".join).rename("suppresses")], axis=1).reset_index()
            lines += [f"### {source.label}", "", to_markdown(heads), ""]
    if tables:
        write("logit-lens.csv", pd.concat(tables, ignore_index=True).to_csv(index=False))
    return "\n".join(lines)


def _summary_document(sources: list[EditSource], table: pd.DataFrame, top_k: int, notes: list[str],
                      sections: list[str], figures: list[str]) -> str:
    runs = pd.DataFrame({"run": [s.label for s in sources], "task": [s.task for s in sources],
                         "model": [s.model for s in sources],
                         "folder": [str(s.run.root if s.run is not None else "(edit)") for s in sources]})
    parts = ["# JoLA head analysis", "", to_markdown(runs), ""]
    parts += [f"- {note}" for note in notes] + ([""] if notes else [])
    parts += [summary_markdown(table, top_k), *sections, "## Figures", ""]
    parts += [f"![{name}]({name})" if name.endswith((".png", ".svg")) else f"- [{name}]({name})" for name in figures]
    return "\n".join(parts) + "\n"
