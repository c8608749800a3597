"""Which training settings make JoLA's head selection reproducible across seeds? (issue: localization you can trust)

Trains every (setting, task, seed) of a small grid on the embedded model and scores each run on the same test
items, into ``analysis/results/localization_stability/runs/<setting>/<task>-seed<S>/`` (ordinary run folders:
the same command again skips finished runs and resumes interrupted ones). The stability measures are computed
from these folders by ``jola-lens analyze`` and written beside them.

    python analysis/localization_stability.py --stage screen          # one task, 3 seeds, every setting
    python analysis/localization_stability.py --stage confirm --settings paper,target_const,delay_const

Sized for a 2-core CPU: short SST-2 style prompts, 100 training items, 5 epochs of 13 steps.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import torch

from jola_lens.training.config import TrainConfig
from jola_lens.training.pipeline import RunSpec, train_run

logger = logging.getLogger("localization_stability")
RESULTS = Path(__file__).resolve().parent / "results" / "localization_stability"

BASE = {"train_size": 100, "val_size": 50, "num_epoch": 5, "train_batch": 8, "eval_batch": 8, "warmup_steps": 5,
        "max_length": 128, "patience": 0, "save_strategy": "last"}
"""Shared by every setting: 65 optimizer steps, no early stopping, the last epoch kept (runs compare at one point)."""
SETTINGS: dict[str, dict] = {
    "paper": {"lr": 5e-3, "gate_lr": None, "penalty_scale": 1.0},
    "fast": {"lr": 5e-3, "gate_lr": 0.1, "penalty_scale": 10.0},
    "high_vector_lr": {"lr": 2e-2, "gate_lr": 0.1, "penalty_scale": 10.0},
    "delay_const": {"lr": 5e-3, "gate_lr": 0.1, "penalty_scale": 10.0, "gate_init": 0.0, "penalty_delay": 30,
                    "penalty_warmup": 15},
    "target_const": {"lr": 5e-3, "gate_lr": 0.1, "gate_init": -1.0, "target_heads": 27, "target_warmup": 20,
                     "target_lr": 0.5},
    "target_random": {"lr": 5e-3, "gate_lr": 0.1, "target_heads": 27, "target_warmup": 20, "target_lr": 0.5},
}
"""The settings screened. ``target_*`` hold 27 of 270 heads (10%) open per gate kind (reached by step 20);
``*_const`` start every gate logit at one value (0, or -1 for the target) so no head starts ahead; ``delay_const`` trains 30 steps without penalty, then ramps it in over 15."""
TASKS = {"sst2": ("extra/SST-2", "text"), "arc-e": ("commonsense/ARC-e", "cloze"), "boolq": ("commonsense/BoolQ", "cloze")}
STAGES = {"screen": (["sst2"], [1, 2, 3]), "confirm": (["sst2", "arc-e", "boolq"], [1, 2, 3, 4, 5])}


def finished_results(folder: Path) -> dict:
    """The evaluation results already in a run folder (empty when it has not been scored)."""
    metrics = folder / "metrics.json"
    return json.loads(metrics.read_text())["evaluation"]["results"] if metrics.is_file() else {}


def run_grid(settings: list[str], tasks: list[str], seeds: list[int], limit: int, output: Path) -> None:
    for setting in settings:
        for task in tasks:
            for seed in seeds:
                folder = output / "runs" / setting / f"{task}-seed{seed}"
                if "likelihood" in finished_results(folder):
                    continue
                name, formulation = TASKS[task]
                spec = RunSpec(task=name, formulation=formulation, train_size=BASE["train_size"],
                               val_size=BASE["val_size"])
                fields = {k: v for k, v in BASE.items() if k not in ("train_size", "val_size")}
                config = TrainConfig(**fields, **SETTINGS[setting], seed=seed)
                start = time.monotonic()
                train_run(spec, config, folder, run_mode="train_eval", scoring="likelihood", limit=limit,
                          results_file=output / "results.jsonl", progress=False)
                logger.info("%s %s seed %d: %.0f s", setting, task, seed, time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=sorted(STAGES), default="screen")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated, from: " + ", ".join(SETTINGS))
    parser.add_argument("--limit", type=int, default=100, help="test items scored per run (the same for every run)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    tasks, seeds = STAGES[args.stage]
    unknown = sorted(set(args.settings.split(",")) - set(SETTINGS))
    if unknown:
        parser.error(f"unknown settings {unknown}; choose from {sorted(SETTINGS)}")
    run_grid(args.settings.split(","), tasks, seeds, args.limit, args.output)


if __name__ == "__main__":
    main()
