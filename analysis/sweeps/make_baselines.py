"""Write the sweep files of the baselines study (issue 15): JoLA, JoLA without gates, LoRA, IA3 and LoFiT on the
same items, through ``jola-lens sweep``.

    python analysis/sweeps/make_baselines.py      # rewrites baselines.yaml and baselines-full.yaml beside it

A sweep grid crosses every setting with every other, but a method and its own flags go together (``ablation``
only with jola, ``lora_*`` only with lora) and each task has its formulation and scoring, so both files list their
trials explicitly; this script is where they come from.

- ``baselines.yaml``: sized for this 2-core CPU (about 2 hours on one thread): 5 tasks (SST-2, ARC-e, BoolQ, PIQA
  in cloze form, scored by likelihood on 100 test items; GEM CommonGen scored by generation on 50) x 5 methods x 2
  seeds, 200 training examples, the same shortened schedule for every method (1 epoch of batch 8 = 25 steps,
  5 warm-up steps, 20 validation items, sequences of at most 256 tokens, 512 for PIQA, whose longest solutions
  have over 300 tokens; LoFiT runs it once per stage).
  Trials are named ``<method>/<task>-seed<S>`` (their run folders).
- ``baselines-full.yaml``: the full design for a bigger machine: the paper's 26 tasks (8 commonsense, 14 MMLU-Pro,
  4 GEM) x 5 methods x 3 seeds with the paper's protocol (answer labels generated with 4-beam search, 20 epochs,
  200 training and 200 validation examples, every test item).

Zero-shot (the bare model on the same items) is not a training run, so it is not a sweep trial: score it with
``jola-lens eval`` per task (the commands are in each file's header). GEM and MMLU-Pro read local data: set
``JOLA_DATA_DIR`` (here ``/work/shared/data``).

Per-method learning rates (the schedule is shared; each method keeps its own usual step size):
JoLA lr 5e-3 (the paper) with gate_lr 0.1 and penalty_scale 10 in the small study (with the paper's gate settings
no gate closes on this model, see the README, and "without gates" would then be the same run); LoRA 1e-3
(r=8, alpha=16, dropout 0.05 on q_proj/v_proj: peft's Llama default); IA3 3e-3 (the (IA)^3 paper's T-Few rate);
LoFiT stage 1 at 5e-3 with L1 1e-3 and stage 2 at 1e-2 on the top 3% of heads (LoFiT's scripts).
"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent

METHODS: dict[str, dict[str, object]] = {
    "jola": {"method": "jola", "lr": 5e-3},
    "jola-no_gates": {"method": "jola", "ablation": "no_gates", "lr": 5e-3},
    "lora": {"method": "lora", "lr": 1e-3},
    "ia3": {"method": "ia3", "lr": 3e-3},
    "lofit": {"method": "lofit", "lr": 5e-3},
}
GATES = {"gate_lr": 0.1, "penalty_scale": 10.0}
"""The small study's JoLA gate settings (the README's measured setting that makes gates close)."""

SMALL_TASKS: dict[str, dict[str, object]] = {
    "extra/SST-2": {"formulation": "cloze", "scoring": "likelihood", "limit": 100},
    "commonsense/ARC-e": {"formulation": "cloze", "scoring": "likelihood", "limit": 100},
    "commonsense/BoolQ": {"formulation": "cloze", "scoring": "likelihood", "limit": 100},
    "commonsense/PIQA": {"formulation": "cloze", "scoring": "likelihood", "limit": 100, "max_length": 512},
    "gem/common_gen": {"scoring": "generation", "limit": 50},
}
SMALL_SETTINGS = {"run_mode": "train_eval", "train_size": 200, "val_size": 20, "num_epoch": 1, "train_batch": 8,
                  "eval_batch": 8, "warmup_steps": 5, "max_length": 256, "patience": 0}
SMALL_SEEDS = (42, 43)

COMMONSENSE = ("ARC-c", "ARC-e", "BoolQ", "HellaSwag", "OBQA", "PIQA", "SIQA", "WinoGrande")
MMLU_PRO = ("biology", "business", "chemistry", "computer_science", "economics", "engineering", "health", "history",
            "law", "math", "other", "philosophy", "physics", "psychology")
GEM = ("common_gen", "e2e_nlg", "web_nlg", "xsum")
FULL_TASKS = ([f"commonsense/{t}" for t in COMMONSENSE] + [f"mmlu_pro/{t}" for t in MMLU_PRO]
              + [f"gem/{t}" for t in GEM])
FULL_SETTINGS = {"run_mode": "train_eval", "scoring": "generation", "train_size": 200, "val_size": 200,
                 "num_epoch": 20, "train_batch": 8, "eval_batch": 1}
FULL_SEEDS = (42, 43, 44)


def trials(tasks: dict[str, dict[str, object]], seeds: tuple[int, ...], gates: dict[str, object]) -> list[dict]:
    rows = []
    for task, task_settings in tasks.items():
        for name, method in METHODS.items():
            for seed in seeds:
                extra = gates if name == "jola" else {}
                rows.append({"name": f"{name}/{task.replace('/', '-')}-seed{seed}", "task": task, **task_settings,
                             **method, **extra, "seed": seed})
    return rows


def zero_shot_commands(tasks: dict[str, dict[str, object]], folder: str, common: dict[str, object]) -> list[str]:
    commands = []
    for task, settings in tasks.items():
        flags = "".join(f" --{k} {v}" for k, v in {**common, **settings}.items())
        commands.append(f"jola-lens eval --task {task}{flags} --output_dir {folder}/{task.replace('/', '-')} "
                        f"--output_file_name {folder}/results.jsonl")
    return commands


def write(path: Path, title: str, settings: dict, rows: list[dict], zero_shot: list[str]) -> None:
    header = [f"# {title}", "# Written by analysis/sweeps/make_baselines.py (edit that script, not this file).",
              f"# {len(rows)} trials. Run: JOLA_DATA_DIR=/work/shared/data jola-lens sweep {path.name}",
              "# Zero-shot on the same test items:"] + [f"#   {command}" for command in zero_shot]
    body = yaml.safe_dump({"settings": settings}, sort_keys=False)
    body += "trials:\n" + "".join(f"  - {yaml.safe_dump(row, default_flow_style=True, sort_keys=False, width=200)}"
                                  for row in rows)
    path.write_text("\n".join(header) + "\n" + body, encoding="utf-8")


def main() -> None:
    write(HERE / "baselines.yaml", "Baselines on one harness, sized for a 2-core CPU (about 2 hours on one thread)",
          SMALL_SETTINGS, trials(SMALL_TASKS, SMALL_SEEDS, GATES), zero_shot_commands(
              SMALL_TASKS, "runs/baselines-zeroshot", {"eval_batch": 8, "max_length": 256}))
    full_tasks = {task: {} for task in FULL_TASKS}
    write(HERE / "baselines-full.yaml", "Baselines on one harness, the full design (26 tasks, the paper's protocol)",
          FULL_SETTINGS, trials(full_tasks, FULL_SEEDS, {}), zero_shot_commands(
              {task: {"scoring": "generation"} for task in FULL_TASKS}, "runs/baselines-full-zeroshot", {}))


if __name__ == "__main__":
    main()
