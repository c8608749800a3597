"""Seconds per training step and per evaluated example, for each backend, on the default model.

    python benchmarks/train_eval_speed.py [--backends hf tl nnsight] [--steps 5] [--examples 8]

Training steps run through the real Trainer (batch 8, the paper's settings); the first step is a warm-up and is
not counted. Evaluation times `evaluate` with likelihood scoring (options batched, --eval_batch items per forward)
and with the paper's generation (4 beams, eval batch 1). Each backend gets a freshly loaded model (the
TransformerLens bridge switches its model to eager attention).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch

from jola_lens import JoLAEdit, load_model
from jola_lens.backends.route import make_route
from jola_lens.batching import chunks, collate, epoch_order
from jola_lens.evaluation import evaluate
from jola_lens.tasks import get_task
from jola_lens.tasks.encoding import encode_example
from jola_lens.training import TrainConfig, Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["hf", "tl", "nnsight"])
    parser.add_argument("--task", default="commonsense/ARC-e", help="ARC-e prompts average ~110 tokens")
    parser.add_argument("--source", default="embedded")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps (after one warm-up step)")
    parser.add_argument("--examples", type=int, default=8, help="evaluated examples per scoring method")
    parser.add_argument("--eval_batch", type=int, default=8, help="items per likelihood forward")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    task = get_task(args.task, source=args.source, formulation="text")
    splits = task.splits(train_size=8 * (args.steps + 1), val_size=8, seed=42)
    test = task.load_split("test")[:args.examples]
    config = TrainConfig(num_epoch=1)
    print(f"torch threads: {torch.get_num_threads()}; task {task.name} ({task.source}), batch {config.train_batch}")
    print(f"{'backend':8} {'s/step':>8} {'tokens/seq':>10} {'s/ex likelihood':>16} {'s/ex generation':>16}")
    for name in args.backends:
        model, tokenizer = load_model()
        backend = make_route(name, model, tokenizer)
        train, validation = ([encode_example(tokenizer, task.prompt(e), e.target) for e in examples]
                             for examples in (splits.train, splits.validation))
        widths = [collate([train[i] for i in group], tokenizer.pad_token_id).input_ids.shape[1]
                  for group in chunks(epoch_order(len(train), config.seed, 1), config.train_batch)]
        stamps: list[float] = []
        trainer = Trainer(JoLAEdit.for_model(model, seed=0), backend.forward, train, validation, config,
                          pad_token_id=tokenizer.pad_token_id, progress=False,
                          on_step=lambda record, stamps=stamps: stamps.append(time.perf_counter()))
        trainer.fit()
        per_step = statistics.mean(b - a for a, b in itertools.pairwise(stamps))
        timings = {}
        for scoring, batch in (("likelihood", args.eval_batch), ("generation", 1)):
            result = evaluate(backend, tokenizer, task, test, trainer.edit, scoring=scoring, batch_size=batch,
                              progress=False)
            timings[scoring] = result.seconds / len(test)
        print(f"{name:8} {per_step:8.3f} {statistics.mean(widths):10.1f} {timings['likelihood']:16.3f} "
              f"{timings['generation']:16.3f}", flush=True)


if __name__ == "__main__":
    main()
