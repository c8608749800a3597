"""What a sweep costs beyond its trials: 8 small SST-2 trials (8 seeds) on this machine, three ways.

    python benchmarks/sweep_overhead.py [--output runs/bench-sweep] [--seeds 8] [--train_size 24]

1. ``jola-lens sweep``, 2 workers x 1 thread;  2. ``jola-lens sweep``, 1 worker x 2 threads;
3. a plain loop of ``jola-lens train`` processes (2 threads), as a shell script would run them.

For each: wall time; Ray start-up (``ray.init`` and the workers' imports, until every worker answers); per-trial
overhead (a trial's seconds beyond its own training and scoring: loading the task and the model, writing files;
for the loop also the process start and imports); the time the reused model saved (the overhead of a worker's
first trial minus that of the trials that reused its model). Then an estimate, on paper, of the paper's 26 tasks x
5 seeds x 2 models on 8 GPUs from the measured per-step cost (the assumptions are the constants below).
Run it on a quiet machine: the threads of the three setups compete with anything else running.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

SETTINGS = {"task": "extra/SST-2", "formulation": "text", "source": "embedded", "val_size": 8, "num_epoch": 1,
            "train_batch": 8, "warmup_steps": 1, "max_length": 128, "patience": 0, "eval_batch": 8,
            "run_mode": "train_eval", "scoring": "likelihood", "limit": 16}

# ---- the estimate's assumptions (the paper's protocol; a 7-8B model in bfloat16 on H100-class GPUs) ----------
SMALL_PARAMS = 135e6           # SmolLM2-135M, the model measured here
BIG_PARAMS = 8.0e9             # Llama-3.1-8B / Qwen2.5-7B
PAPER_STEPS = 200 // 8 * 20    # 200 training examples, batch 8, 20 epochs (an upper bound: early stopping)
PAPER_VALIDATION = 200 * 20    # validation examples scored per trial (200 per epoch)
TOKENS_PER_EXAMPLE = 150       # prompt + answer tokens of a commonsense item with the Alpaca template
GPU_FLOPS = 400e12             # sustained bf16 FLOP/s of one H100 in these steps (about 40% of its dense peak)
TEST_ITEMS = 22419 + 12032 + 3502  # per model and seed: 8 commonsense + 14 MMLU-Pro + 4 GEM test sets
DECODE_S_PER_ITEM = 0.25       # 4-beam generation, eval batch 1 (the paper's): ~10 decoding steps of ~25 ms
TRIALS_PER_GPU = 2             # two 8B bf16 trials (16 GB weights + ~15 GB activations each) fit an 80 GB GPU
SHARING_GAIN = 1.6             # two trials on a GPU: one's latency-bound decoding overlaps the other's compute
GPUS, TRIALS = 8, 26 * 5 * 2


def own_work(run_dir: Path) -> tuple[float, float, int]:
    """(training seconds, test-scoring seconds, optimizer steps) that the run folder's metrics.json records."""
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    return metrics["training"]["train_seconds"], metrics["evaluation"]["seconds"], metrics["training"]["steps"]


def sweep_setup(sweep_file: Path, output: Path, workers: int, threads: int) -> dict:
    from jola_lens.sweep import run_sweep

    start = time.monotonic()
    result = run_sweep(sweep_file, output, workers=workers, threads_per_trial=threads, overwrite=True,
                       progress=False)
    wall = time.monotonic() - start
    with open(output / "trials.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if any(row["status"] != "done" for row in rows):
        raise SystemExit(f"{output}: not every trial finished; see {output / 'trials.csv'}")
    overheads, reused, first, steps = [], [], [], []
    for row in rows:
        train_s, eval_s, n_steps = own_work(output / row["run_dir"])
        extra = float(row["seconds"]) - train_s - eval_s
        overheads.append(extra)
        (reused if row["reused_model"] == "True" else first).append(extra)
        steps.append(train_s / n_steps)
    saved = (statistics.mean(first) - statistics.mean(reused)) * len(reused) if reused and first else 0.0
    return {"wall": wall, "startup": result.startup_seconds, "overhead": statistics.mean(overheads),
            "saved": saved, "step": statistics.mean(steps)}


def loop_setup(settings: dict, seeds: list[int], output: Path, threads: int) -> dict:
    flags = [f"--{key}={value}" for key, value in settings.items()]
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    overheads, steps = [], []
    start = time.monotonic()
    for seed in seeds:
        run_dir = output / f"seed={seed}"
        began = time.monotonic()
        subprocess.run([sys.executable, "-m", "jola_lens", "train", *flags, f"--seed={seed}", "--overwrite",
                        f"--output_dir={run_dir}", "--quiet"], check=True, env=env, stdout=subprocess.DEVNULL)
        train_s, eval_s, n_steps = own_work(run_dir)
        overheads.append(time.monotonic() - began - train_s - eval_s)
        steps.append(train_s / n_steps)
    return {"wall": time.monotonic() - start, "startup": 0.0, "overhead": statistics.mean(overheads), "saved": 0.0,
            "step": statistics.mean(steps)}


def paper_estimate(cpu_step_s: float, batch_tokens: float) -> list[str]:
    """The 26 tasks x 5 seeds x 2 models estimate, from the FLOPs of a step (forward 2N, backward to the
    activations only 2N per token: the model is frozen) and the step time measured here."""
    cpu_flops = 4 * SMALL_PARAMS * batch_tokens / cpu_step_s
    step_s = 4 * BIG_PARAMS * 8 * TOKENS_PER_EXAMPLE / GPU_FLOPS
    train_s = PAPER_STEPS * step_s + 2 * BIG_PARAMS * PAPER_VALIDATION * TOKENS_PER_EXAMPLE / GPU_FLOPS
    test_s = TEST_ITEMS / 26 * DECODE_S_PER_ITEM
    gpu_hours = TRIALS * (train_s + test_s) / 3600
    slots = GPUS * TRIALS_PER_GPU
    wall_h = gpu_hours / GPUS / SHARING_GAIN
    return [f"measured here: {cpu_step_s:.2f} s per training step of SmolLM2-135M ({batch_tokens:.0f} tokens), "
            f"{cpu_flops / 1e9:.1f} GFLOP/s achieved on the CPU",
            f"8B model, {GPU_FLOPS / 1e12:.0f} TFLOP/s sustained: {step_s:.3f} s per step (batch 8 x "
            f"{TOKENS_PER_EXAMPLE} tokens), {train_s / 60:.1f} min of training and validation per trial (at most "
            f"{PAPER_STEPS} steps), {test_s / 60:.1f} min of 4-beam test generation per trial on average",
            f"{TRIALS} trials on {GPUS} GPUs, {TRIALS_PER_GPU} per GPU (--gpus_per_trial {1 / TRIALS_PER_GPU:g}, "
            f"{slots} workers, {TRIALS / slots:.1f} trials each): {gpu_hours:.0f} GPU-hours, about {wall_h:.1f} h "
            "of wall time; test generation is most of it"]


def batch_tokens(settings: dict) -> float:
    """Mean tokens of a training batch of the benchmark's trials (prompt + answer, before padding)."""
    from jola_lens import load_model
    from jola_lens.tasks import get_task
    from jola_lens.tasks.encoding import encode_example

    _, tokenizer = load_model()
    task = get_task(settings["task"], source=settings["source"], formulation=settings["formulation"])
    examples = task.splits(train_size=settings["train_size"], val_size=settings["val_size"], seed=1).train
    lengths = [len(encode_example(tokenizer, task.prompt(e, "alpaca", tokenizer), e.target,
                                  settings["max_length"]).input_ids) for e in examples]
    return settings["train_batch"] * statistics.mean(lengths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("runs/bench-sweep"))
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--train_size", type=int, default=24, help="training examples per trial (batch 8)")
    args = parser.parse_args()
    settings = SETTINGS | {"train_size": args.train_size}
    tokens = batch_tokens(settings)  # also builds the default model's cache before anything is timed
    seeds = list(range(1, args.seeds + 1))
    args.output.mkdir(parents=True, exist_ok=True)
    sweep_file = args.output / "sst2-seeds.yaml"
    sweep_file.write_text(yaml.safe_dump({"settings": settings, "grid": {"seed": seeds}}, sort_keys=False))
    setups = {"sweep, 2 workers x 1 thread": sweep_setup(sweep_file, args.output / "two-workers", 2, 1),
              "sweep, 1 worker x 2 threads": sweep_setup(sweep_file, args.output / "one-worker", 1, 2),
              "loop of `jola-lens train`, 2 threads": loop_setup(settings, seeds, args.output / "loop", 2)}
    print(f"{len(seeds)} trials: SST-2 (embedded, text), {args.train_size} training examples, 1 epoch, 16 test items")
    print(f"{'setup':40} {'wall s':>8} {'Ray start s':>12} {'overhead s/trial':>17} {'reuse saved s':>14} "
          f"{'s/step':>7}")
    for name, numbers in setups.items():
        print(f"{name:40} {numbers['wall']:8.1f} {numbers['startup']:12.1f} {numbers['overhead']:17.2f} "
              f"{numbers['saved']:14.1f} {numbers['step']:7.2f}")
    one_thread = setups["sweep, 2 workers x 1 thread"]["step"]
    print("\non paper: the paper's 26 tasks x 5 seeds x 2 models on 8 GPUs")
    for line in paper_estimate(one_thread, tokens):
        print("  " + line)


if __name__ == "__main__":
    main()
