"""``jola-lens``: train a JoLA edit (the paper's run_trainer.py, same flags), evaluate edits, analyze runs."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jola_lens.training.config import TrainConfig
    from jola_lens.training.pipeline import RunOutcome, RunSpec

TRAIN_EPILOG = """\
the paper's seed command and its equivalent here (every flag also accepts dashes: --train-batch):
  python run_trainer.py --task T --subtask S --base_model_name M --lr 5e-3 --train_batch 8 --num_epoch 20 \\
      --output_dir OUT --run_mode train --applied_module attention --save_strategy best \\
      --gate_scheduler expon --eval_batch 1 --train_size 200 --seed 42
  jola-lens train --task T --subtask S --output_dir OUT          (those values are the defaults)

run modes: train = train and save; train_eval = train, then score the test set; eval = score the run in
--output_dir. A run folder holds config.json, edit/, train_log.jsonl, gates/epoch-NNNN.safetensors,
train_items.jsonl, metrics.json, predictions.jsonl (after evaluation) and checkpoint/.

resuming: run the same command again. A folder with a checkpoint whose settings match resumes where it
stopped (epoch, step, optimizer, schedules, random states, best-so-far) and ends with the same edit as an
uninterrupted run; other settings are refused with the differing keys listed (--overwrite starts over).
The first Ctrl-C saves a checkpoint after the current step and exits; a second one aborts at once.

head selection: with the paper's settings the gates rarely close (the penalty is divided by layers x heads).
Raise --gate_lr and --penalty_scale (e.g. --gate_lr 0.1 --penalty_scale 10) to make JoLA select heads; the
README's "Measured" section lists what that gives.

examples:
  jola-lens train --task extra/SST-2 --formulation text --num_epoch 3 --output_dir runs/sst2 --run_mode train_eval
  jola-lens train --task commonsense/ARC-e --formulation cloze --gate_lr 0.1 --penalty_scale 10 --output_dir runs/arc
"""

EVAL_EPILOG = """\
scoring: generation = the paper's 4-beam search, no sampling, at most 16 (classification) / 64 (generation)
new tokens, first line kept, parsed and scored by the task; likelihood = rank each answer option by the
model's log-probability of the option text after the prompt: acc uses the summed log-probability, acc_norm
divides it by the option's length in characters (as lm-evaluation-harness does); both = the two.
Writes predictions.jsonl and metrics.json (into the run folder, or --output_dir) and appends one line to
--output_file_name. A run whose training items overlap the test items is refused.

examples:
  jola-lens eval --edit runs/sst2 --scoring both --limit 300             (a trained run)
  jola-lens eval --task extra/SST-2 --formulation text --scoring likelihood --output_dir runs/sst2-zeroshot
"""


def _flag(parser: argparse._ActionsContainer, name: str, **kwargs: Any) -> None:
    """``--name`` (the paper's spelling) and, when it has underscores, ``--name-with-dashes``."""
    flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
    parser.add_argument(*flags, dest=name, **kwargs)


def _defaults() -> tuple[dict[str, Any], dict[str, Any]]:
    from jola_lens.training.config import TrainConfig
    from jola_lens.training.pipeline import RunSpec

    return ({f.name: f.default for f in dataclasses.fields(TrainConfig)},
            {f.name: f.default for f in dataclasses.fields(RunSpec)})


def _add_common(parser: argparse.ArgumentParser, inherit: bool) -> None:
    """Flags that train and eval share; with ``inherit`` (eval) their defaults come from the run folder."""
    from jola_lens.backends.route import ROUTES
    from jola_lens.evaluation import SCORINGS
    from jola_lens.models import DTYPES
    from jola_lens.tasks.cli_flags import add_data_flags
    from jola_lens.tasks.prompts import PROMPT_STYLES
    from jola_lens.training.pipeline import DEVICES, FORMULATIONS, SOURCES

    train, spec = _defaults()

    def default(value: Any) -> Any:
        return None if inherit else value

    note = " (default: the run's, else %s)" if inherit else " (default: %s)"
    task = parser.add_argument_group("task and model")
    _flag(task, "task", default=default(spec["task"]), metavar="NAME",
          help="task name, e.g. extra/SST-2, commonsense/ARC-e; or your own data: a .csv/.tsv/.json/.jsonl/.parquet "
               "file, a save_to_disk folder or hf:NAME[:CONFIG][@SPLIT]" + note % spec["task"])
    _flag(task, "subtask", default=None, metavar="NAME", help="subtask, when --task names only a family")
    _flag(task, "base_model_name", default=None, metavar="MODEL",
          help="Hugging Face model id or folder (default: the embedded SmolLM2-135M-Instruct)")
    _flag(task, "data_path", default=os.environ.get("JOLA_DATA_DIR"), metavar="DIR",
          help="local benchmark data folder (default: $JOLA_DATA_DIR)")
    _flag(task, "hf_cache_dir", default=None, metavar="DIR", help="Hugging Face hub and datasets cache folder")
    _flag(task, "source", choices=SOURCES, default=default(spec["source"]),
          help="where task data comes from: local files, the embedded copy, or the hub" + note % spec["source"])
    _flag(task, "formulation", choices=FORMULATIONS, default=default(spec["formulation"]),
          help="targets: option labels (answer1, true, ...), option texts, or option texts after the question "
               "alone (cloze: no options listed)" + note % spec["formulation"])
    _flag(task, "prompt_style", choices=PROMPT_STYLES, default=default(spec["prompt_style"]),
          help="alpaca = the paper's template; chat = the tokenizer's chat template" + note % spec["prompt_style"])
    _flag(task, "backend", choices=ROUTES, default=default(spec["backend"]),
          help="where the edit hooks in: hf (forward pre-hooks), tl (TransformerLens bridge hook_z), nnsight"
               + note % spec["backend"])
    _flag(task, "device", choices=DEVICES, default=default(spec["device"]),
          help="auto = cuda when available" + note % spec["device"])
    _flag(task, "dtype", choices=tuple(DTYPES), default=default(spec["dtype"]),
          help="the model's weights and activations; the edit's own parameters stay float32" + note % spec["dtype"])
    _flag(task, "device_map", default=None, metavar="MAP",
          help="let accelerate place the model, e.g. auto (over every GPU, then CPU), balanced, sequential, cpu; "
               "each layer's edit runs on that layer's device (default: the whole model on --device)")
    evaluation = parser.add_argument_group("evaluation")
    _flag(evaluation, "scoring", choices=SCORINGS, default="generation",
          help="generation (the paper's), likelihood of the answer options, or both (default: %(default)s)")
    _flag(evaluation, "eval_batch", type=int, default=default(train["eval_batch"]), metavar="N",
          help="items per evaluation (and validation) batch" + note % train["eval_batch"])
    _flag(evaluation, "max_length", type=int, default=default(train["max_length"]), metavar="N",
          help="longest prompt + target in tokens; longer prompts lose tokens from the left" + note % train["max_length"])
    _flag(evaluation, "limit", type=int, default=None, metavar="N", help="score only the first N test items")
    _flag(evaluation, "output_file_name", default=None, metavar="FILE",
          help="JSONL file that gets one results line per run (default: results.jsonl beside the output folder)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars, warnings only")
    add_data_flags(parser)


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from jola_lens.gates import SCHEDULES
    from jola_lens.methods.cli_flags import add_method_flags
    from jola_lens.training.config import GATE_NOISE, SAVE_STRATEGIES, parse_target_heads
    from jola_lens.training.pipeline import APPLIED_MODULES, RUN_MODES
    from jola_lens.training.presets import PRESETS

    train, spec = _defaults()
    parser = subparsers.add_parser(
        "train", help="train a JoLA edit (the paper's run_trainer.py)", epilog=TRAIN_EPILOG, allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a JoLA edit of the attention heads of a frozen model on a task, with the paper's "
                    "protocol: completion-only loss, Hard Concrete gates with an expected-L0 penalty, AdamW, "
                    "cosine schedule with warm-up, validation every epoch, best checkpoint, early stopping.")
    _add_common(parser, inherit=False)
    run = parser.add_argument_group("run")
    _flag(run, "output_dir", default=None, metavar="DIR",
          help="run folder (default: runs/<task>-seed<seed>); the same command on it resumes")
    _flag(run, "run_mode", choices=RUN_MODES, default="train",
          help="train, eval (the run in --output_dir) or train_eval (default: %(default)s)")
    _flag(run, "overwrite", action="store_true", help="delete the run already in --output_dir and start over")
    _flag(run, "resume", action="store_true", help="require resuming the run in --output_dir (error if none)")
    _flag(run, "save_strategy", choices=SAVE_STRATEGIES, default=train["save_strategy"],
          help="edit/ holds the lowest-validation-loss epoch (best), the final one (last), or nothing and no "
               "checkpoint is kept (no) (default: %(default)s)")
    _flag(run, "applied_module", choices=APPLIED_MODULES, default=spec["applied_module"],
          help="what JoLA edits; only the attention heads' outputs (default: %(default)s)")
    protocol = parser.add_argument_group("training protocol (defaults: the paper's)")
    for name, kind, text in (
            ("lr", float, "AdamW learning rate of the edit vectors"),
            ("train_batch", int, "training batch size"),
            ("num_epoch", int, "epochs"),
            ("train_size", int, "training examples sampled from the task's training pool"),
            ("val_size", int, "validation examples sampled (disjoint) from the same pool"),
            ("warmup_steps", int, "linear warm-up steps of the cosine schedule"),
            ("weight_decay", float, "AdamW weight decay"),
            ("max_grad_norm", float, "gradient clipping norm, 0 = off (Hugging Face Trainer's default)"),
            ("patience", int, "early stopping after N epochs without a lower validation loss, 0 = off"),
            ("seed", int, "seed of the data sample, data order, edit init and gate noise")):
        _flag(protocol, name, type=kind, default={**train, **spec}[name], metavar="N" if kind is int else "X",
              help=f"{text} (default: %(default)s)")
    _flag(protocol, "group_by_length", action=argparse.BooleanOptionalAction, default=train["group_by_length"],
          help="batch training examples of similar length together (seeded, every example once per epoch, less "
               "padding) (default: %(default)s)")
    gates = parser.add_argument_group("gates and head selection")
    _flag(gates, "gate_scheduler", choices=SCHEDULES, default=train["gate_scheduler"],
          help="schedule of lam, the additive vs multiplicative penalty mix (default: %(default)s)")
    _flag(gates, "gate_lambda", type=float, default=train["gate_lambda"], metavar="X",
          help="the constant lam of --gate_scheduler none (default: %(default)s)")
    _flag(gates, "gate_lr", type=float, default=None, metavar="LR",
          help="learning rate of the gate logits (default: --lr); 0.1 lets gates close")
    _flag(gates, "penalty_scale", type=float, default=train["penalty_scale"], metavar="X",
          help="multiplies the gate penalty of the spec, [...]/(layers x heads) (default: %(default)s)")
    _flag(gates, "gate_init", type=float, default=None, metavar="LOGIT",
          help="start every gate logit at LOGIT instead of the spec's random uniform values, so that which heads "
               "close depends on training, not on the seed (default: random)")
    _flag(gates, "init_std", type=float, default=None, metavar="STD",
          help="spread of the edit vectors' normal initialisation; 0 starts them at zero, so which gates open does "
               "not follow the seed's draw of the vectors (default: the spec's 1e-3)")
    _flag(gates, "gate_noise", choices=GATE_NOISE, default=train["gate_noise"],
          help="train with Hard-Concrete samples of the gates (the spec) or 'off': with the deterministic "
               "evaluation gates, so no noise decides which gates close (default: %(default)s)")
    _flag(gates, "gate_noise_seed", type=int, default=None, metavar="N",
          help="draw the gates' Hard-Concrete noise from a stream seeded with N instead of the run's (--seed), so "
               "runs of several seeds share one noise sequence (default: the run's stream)")
    _flag(gates, "penalty_delay", type=int, default=train["penalty_delay"], metavar="N",
          help="no gate penalty for the first N steps, so the edit vectors grow before gates compete "
               "(default: %(default)s)")
    _flag(gates, "penalty_warmup", type=int, default=train["penalty_warmup"], metavar="N",
          help="after the delay, raise the penalty linearly to full strength over N steps (default: %(default)s)")
    _flag(gates, "target_heads", type=parse_target_heads, default=None, metavar="K",
          help="instead of the spec's penalty, a Lagrangian that holds K heads open per gate kind (or a share of the "
               "edited heads, such as 0.3), so runs compare at equal sparsity (default: off)")
    _flag(gates, "target_warmup", type=int, default=train["target_warmup"], metavar="N",
          help="steps over which the target moves from the expected number of open gates at the first step down "
               "to K (default: %(default)s)")
    _flag(gates, "target_lr", type=float, default=train["target_lr"], metavar="LR",
          help="learning rate of the target's Lagrange multipliers (default: %(default)s)")
    _flag(gates, "keep_heads", type=parse_target_heads, default=None, metavar="K",
          help="after training, keep only the K heads (or a share, such as 0.3) per gate kind with the highest "
               "gate logits and leave the others unedited, so every run keeps exactly K (default: off)")
    _flag(gates, "preset", choices=tuple(PRESETS), default=None,
          help="named gate settings; flags left at their defaults take the preset's values. target30: gate init -1, "
               "gate lr 0.1, the expected open gates held at 30%% of the heads; localize: target30 pruned to 30%%, "
               "vectors from zero, no gate noise (head selection that reproduces and follows the task) "
               "(default: none)")
    _flag(gates, "heads", default=None, metavar="SPEC|FILE",
          help="edit only these heads, e.g. L12H3,L20H0, one set per edit kind "
               "(additive:L0H1,L2H3;multiplicative:L12H3), or a head file (JSON with n_layers, n_heads, heads); "
               "every other head stays exactly unedited (default: all heads)")
    add_method_flags(parser)
    parser.set_defaults(func=run_train)
    return parser


def add_eval_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "eval", help="score an edit or the bare model on a task's test set", epilog=EVAL_EPILOG,
        allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Evaluate a trained run, a saved edit folder, or (without --edit) the bare model as a "
                    "zero-shot baseline, on a task's test set.")
    parser.add_argument("--edit", default=None, metavar="DIR",
                        help="a run folder (settings are taken from it) or an edit folder; omit for zero-shot")
    _add_common(parser, inherit=True)
    _flag(parser, "output_dir", default=None, metavar="DIR",
          help="where predictions.jsonl and metrics.json go (default: the run folder, else runs/eval-<task>-...)")
    parser.set_defaults(func=run_eval)
    return parser


def add_prune_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from jola_lens.training.config import parse_target_heads

    parser = subparsers.add_parser(
        "prune", help="keep only a trained run's top-K heads (the run --keep_heads K would have written)",
        allow_abbrev=False,
        description="Write the run folder that training with --keep_heads K would have written, from a run trained "
                    "without it: its K heads per gate kind with the highest gate logits stay edited, the others "
                    "unedited. Nothing is trained or scored; score it with `jola-lens eval --edit DIR`.")
    parser.add_argument("run", metavar="RUN", help="a finished run folder (config.json and edit/)")
    _flag(parser, "keep_heads", type=parse_target_heads, required=True, metavar="K",
          help="heads kept per gate kind: a number, or a share of the edited heads such as 0.3")
    _flag(parser, "output_dir", default=None, metavar="DIR", help="the new run folder (default: RUN-keepK)")
    parser.add_argument("--overwrite", action="store_true", help="replace the run in a non-empty --output_dir")
    parser.add_argument("--quiet", "-q", action="store_true", help="warnings only")
    parser.set_defaults(func=run_prune)
    return parser


def run_prune(args: argparse.Namespace) -> int:
    from jola_lens.training.prune import default_pruned_dir, prune_run

    output = args.output_dir or default_pruned_dir(args.run, args.keep_heads)
    folder = prune_run(args.run, args.keep_heads, output, overwrite=args.overwrite)
    heads = json.loads(folder.metrics.read_text(encoding="utf-8"))["training"]["heads"] if folder.metrics.is_file() \
        else None
    print(f"jola-lens: pruned {args.run} into {folder.root}" + (f": {_heads_line(heads)}" if heads else ""))
    print(f"score it: jola-lens eval --edit {shlex.quote(str(folder.root))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from jola_lens import __version__
    from jola_lens.analysis.cli import add_analyze_parser
    from jola_lens.sweep.cli import add_sweep_parser

    parser = argparse.ArgumentParser(
        prog="jola-lens", allow_abbrev=False,
        description="JoLA: learn which attention heads to edit, and how, from a few hundred examples.")
    parser.add_argument("--version", action="version", version=f"jola-lens {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="{train,eval,prune,analyze,sweep}")
    add_train_parser(subparsers)
    add_eval_parser(subparsers)
    add_prune_parser(subparsers)
    add_analyze_parser(subparsers)
    add_sweep_parser(subparsers)
    return parser


# ---- commands ------------------------------------------------------------------------------------------
class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record arrives (it may be replaced after setup)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _set_hf_cache(argv: list[str]) -> None:
    """Point the Hugging Face caches at --hf_cache_dir before building the parser imports those libraries
    (they read their cache locations once, on import)."""
    early = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    early.add_argument("--hf_cache_dir", "--hf-cache-dir")
    cache = early.parse_known_args(argv)[0].hf_cache_dir
    if cache:
        os.environ["HF_HUB_CACHE"] = cache
        os.environ["HF_DATASETS_CACHE"] = str(Path(cache) / "datasets")


def _setup_logging(args: argparse.Namespace) -> None:
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("jola_lens")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if args.quiet else logging.INFO)


def train_settings(args: argparse.Namespace) -> tuple[RunSpec, TrainConfig]:
    """The (RunSpec, TrainConfig) that ``jola-lens train`` flags describe."""
    from jola_lens.tasks.cli_flags import data_settings
    from jola_lens.training.config import TrainConfig
    from jola_lens.training.pipeline import RunSpec
    from jola_lens.training.presets import apply_preset

    hub_task, data_options = data_settings(args)
    spec = RunSpec(task=hub_task or args.task, subtask=args.subtask, model=args.base_model_name, backend=args.backend,
                   formulation=args.formulation, prompt_style=args.prompt_style, source=args.source,
                   applied_module=args.applied_module, train_size=args.train_size, val_size=args.val_size,
                   data_dir=args.data_path, device=args.device, dtype=args.dtype, device_map=args.device_map,
                   data_options=data_options or {})
    settings = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**apply_preset(args.preset, settings, _defaults()[0]))
    return spec, config


def run_train(args: argparse.Namespace) -> int:
    from jola_lens.methods.cli_flags import method_config
    from jola_lens.training.pipeline import default_train_dir, train_run

    if args.overwrite and args.resume:
        raise ValueError("--overwrite and --resume contradict each other; pass one")
    spec, config = train_settings(args)
    method = method_config(args)
    output_dir = Path(args.output_dir) if args.output_dir else default_train_dir(spec, config.seed)
    if not args.output_dir and not method.is_default:
        output_dir = output_dir.with_name(f"{output_dir.name}-{method.slug}")
    outcome = train_run(spec, config, output_dir, run_mode=args.run_mode, scoring=args.scoring, limit=args.limit,
                        results_file=args.output_file_name, overwrite=args.overwrite, resume=args.resume,
                        progress=not args.quiet, method=method)
    print(format_summary(outcome))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from jola_lens.tasks.cli_flags import data_settings
    from jola_lens.training.pipeline import eval_run

    hub_task, data_options = data_settings(args)
    overrides = {"task": hub_task or args.task, "subtask": args.subtask, "model": args.base_model_name,
                 "backend": args.backend, "formulation": args.formulation, "prompt_style": args.prompt_style,
                 "source": args.source, "data_dir": args.data_path, "device": args.device, "dtype": args.dtype,
                 "device_map": args.device_map, "data_options": data_options}
    outcome = eval_run(args.edit, overrides=overrides, scoring=args.scoring, limit=args.limit,
                       output_dir=args.output_dir, results_file=args.output_file_name, eval_batch=args.eval_batch,
                       max_length=args.max_length, progress=not args.quiet)
    print(format_summary(outcome))
    return 0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def _heads_line(heads: dict[str, dict[str, int]]) -> str:
    return ", ".join(f"{kind} {c['kept']}/{c['total']} kept ({c['closed']} closed)" for kind, c in heads.items())


_NO_HEADS = "none: this method has no head edit (LoRA and IA3 change weights, not heads)"


def format_summary(outcome: RunOutcome) -> str:
    """One screen: what ran, the metric, trainable parameters, heads kept per edit kind, time, files."""
    lines = [f"jola-lens: done in {_duration(outcome.seconds)}" + (" (resumed run)" if outcome.resumed else "")]
    training = outcome.metrics.get("training")
    if training:
        loss = training["best_val_loss"]
        lines += [(f"  training     {training['epochs']} epoch(s), {training['steps']} steps, "
                   f"{_duration(training['train_seconds'])}; stop: {training['stop_reason']}; best validation loss "
                   f"{loss:.4f} at epoch {training['best_epoch']}; edit/ keeps: {training['kept']}"),
                  (f"  {training.get('method', 'jola'):<13}{training['trainable_parameters']:,} trainable "
                   "parameters"),
                  f"  heads        {_heads_line(training['heads']) if training['heads'] else _NO_HEADS}"]
    evaluation = outcome.metrics.get("evaluation")
    if evaluation:
        results = "; ".join(f"{method} " + ", ".join(f"{k} {_number(v)}" for k, v in values.items() if k != "n")
                            for method, values in evaluation["results"].items())
        norm = "  [acc_norm: per character]" if evaluation["likelihood_normalization"] else ""
        lines += [(f"  test         {evaluation['task']} ({evaluation['formulation']}, {evaluation['prompt_style']} "
                   f"prompt, {evaluation['source']} source, {evaluation['backend']} backend), n={evaluation['n']}: "
                   f"{results}{norm}"),
                  (f"  model        {evaluation['model']}; edit: {evaluation['edit'] or 'none (zero-shot)'}; "
                   f"{evaluation['seconds_per_example']:.3f} s/example")]
        if evaluation["heads"] and not training:
            lines.append(f"  heads        {_heads_line(evaluation['heads'])}")
    lines.append(f"  files        {outcome.output_dir}")
    if outcome.results_file:
        lines.append(f"  results line {outcome.results_file}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jola-lens`` console script; returns the exit status."""
    from jola_lens.training.checkpoint import CheckpointMismatchError
    from jola_lens.training.interrupt import TrainingInterrupted
    from jola_lens.training.trainer import NonFiniteLossError

    argv = sys.argv[1:] if argv is None else argv
    _set_hf_cache(argv)
    args = build_parser().parse_args(argv)
    if args.command == "analyze":
        return args.func(args)
    _setup_logging(args)
    try:
        return args.func(args)
    except TrainingInterrupted as interrupt:
        print(f"\njola-lens: {interrupt}", file=sys.stderr)
        if interrupt.checkpoint:
            print(f"resume with the same command:\n  jola-lens {shlex.join(argv)}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"\njola-lens {args.command}: interrupted. A run folder keeps its last checkpoint; the same command "
              "resumes from there.", file=sys.stderr)
        return 130
    except NonFiniteLossError as error:
        print(f"jola-lens {args.command}: error: {error}", file=sys.stderr)
        return 1
    except (CheckpointMismatchError, ValueError, FileNotFoundError, OSError, ImportError) as error:
        print(f"jola-lens {args.command}: error: {error}", file=sys.stderr)
        return 2
