"""``jola-lens sweep SWEEP.yaml``: run a grid of ``jola-lens train`` runs on Ray (this machine, or a cluster)."""

from __future__ import annotations

import argparse
import sys

SWEEP_EPILOG = """\
a sweep file (every key is a `jola-lens train` flag without its dashes):
  settings:                      # shared by every trial
    task: extra/SST-2
    formulation: text
    run_mode: train_eval
    scoring: likelihood
  grid:                          # every combination
    seed: [1, 2, 3]
    gate_lr: [0.01, 0.1]
  trials:                        # optional: more trials, one mapping each
    - {task: commonsense/ARC-e, seed: 1}

the sweep folder (default runs/<sweep file name>): trials.csv and results.csv (rewritten as trials finish),
sweep.json and sweep.yaml (what ran), runs/<trial>/ (run folders named from the settings that vary, each with
its trial.log). `jola-lens analyze SWEEP_DIR -o FIGS` reads every finished trial.

again: the same command skips finished trials, resumes interrupted ones from their checkpoints and runs failed
ones again; a changed sweep file is refused unless --extend (keep the finished trials, add the new ones) or
--overwrite (start over). Ctrl-C stops the workers; finished trials stay.

on a cluster: start Ray there (`ray start --head` on one node, `ray start --address HEAD:6379` on the others,
jola_lens installed on each), put the sweep folder on storage every node sees, then
  jola-lens sweep paper.yaml --address HEAD:6379 --gpus_per_trial 0.25 --output_dir /shared/sweeps/paper
"""


def add_sweep_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``sweep`` subcommand (its handler is set as the ``func`` default)."""
    from jola_lens.cli import _flag

    parser = subparsers.add_parser(
        "sweep", help="run a grid of training runs (tasks x seeds x settings x models) on Ray",
        epilog=SWEEP_EPILOG, allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Expand a sweep file into trials and run each as `jola-lens train` would, on Ray: a local Ray "
                    "instance by default, an existing cluster with --address. Needs the sweep extra: "
                    'pip install "jola_lens[sweep]".')
    parser.add_argument("sweep_file", metavar="SWEEP.yaml", help="the sweep file")
    _flag(parser, "output_dir", default=None, metavar="DIR",
          help="sweep folder (default: runs/<sweep file name>); the same command on it resumes")
    resources = parser.add_argument_group("workers")
    _flag(resources, "workers", type=int, default=None, metavar="N",
          help="trials run at once, one Ray actor each, each loading its base model once for all its trials "
               "(default: as many as the CPUs / GPUs hold)")
    _flag(resources, "threads_per_trial", type=int, default=1, metavar="T",
          help="CPUs (torch threads) per trial (default: %(default)s)")
    _flag(resources, "gpus_per_trial", type=float, default=0.0, metavar="G",
          help="GPUs per trial; a fraction shares one: 0.25 puts four trials on a GPU (default: %(default)s)")
    _flag(resources, "address", default=None, metavar="HOST:PORT",
          help="an existing Ray cluster (default: $RAY_ADDRESS, else a local Ray instance on this machine)")
    again = parser.add_argument_group("an existing sweep folder")
    again.add_argument("--extend", action="store_true",
                       help="the sweep file gained trials: keep the earlier ones (finished stay finished), add the new")
    again.add_argument("--overwrite", action="store_true", help="delete the earlier sweep in the folder, start over")
    _flag(parser, "dry_run", action="store_true", help="check the sweep file, list its trials and exit")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar, warnings only")
    parser.set_defaults(func=run_sweep_command)
    return parser


def run_sweep_command(args: argparse.Namespace) -> int:
    """Run ``jola-lens sweep``: 0 when every trial finished, 1 when some failed, 130 on Ctrl-C."""
    from jola_lens.sweep.spec import read_sweep

    sweep = read_sweep(args.sweep_file)
    if args.dry_run:
        print(f"{sweep.path}: {len(sweep.trials)} trial(s); settings that vary: {', '.join(sweep.varying) or 'none'}")
        for trial in sweep.trials:
            print(f"  {trial.name}: " + ", ".join(f"{k}={trial.settings.get(k)}" for k in sweep.varying))
        return 0
    from jola_lens.sweep.executor import SweepInterrupted, WorkerStartError, run_sweep

    try:
        result = run_sweep(sweep, args.output_dir, workers=args.workers, threads_per_trial=args.threads_per_trial,
                           gpus_per_trial=args.gpus_per_trial, address=args.address, extend=args.extend,
                           overwrite=args.overwrite, progress=not args.quiet)
    except SweepInterrupted as interrupt:
        print(f"\njola-lens sweep: {interrupt}", file=sys.stderr)
        return 130
    except WorkerStartError as error:
        print(f"jola-lens sweep: error: {error}", file=sys.stderr)
        return 2
    counts = result.counts
    print(f"jola-lens sweep: {len(result.rows)} trial(s): {counts['done']} done, {counts['failed']} failed, in "
          f"{result.seconds:.0f} s on {result.workers} worker(s)\n  table        {result.folder / 'trials.csv'}\n"
          f"  results      {result.folder / 'results.csv'}")
    failed = [row for row in result.rows if row.status == "failed"]
    for row in failed:
        print(f"  failed       {row.name}: {row.error} (log: {result.folder / 'runs' / row.name / 'trial.log'})")
    return 1 if failed else 0
