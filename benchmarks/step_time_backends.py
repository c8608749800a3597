"""Training step time of one JoLA edit through the hf, nnsight and tl (TransformerLens) routes on SmolLM2.

One step = ``Route.forward`` + cross-entropy + backward + AdamW step of the edit (train mode, sampled gates).
The routes run interleaved (one step of each per round), so load from other processes hits them alike.
Reported per route: median wall-clock and process CPU seconds per step (CPU time is what a shared machine
distorts least), and the median per-round ratio of CPU time to the hf route's.

    python benchmarks/step_time_backends.py [--batch 8] [--seq 128] [--warmup 2] [--steps 5] [--attn sdpa] [--threads N]

On a machine shared with other jobs, ``--threads 1`` keeps the CPU-time figures honest (idle OpenMP
threads spin, and that spinning is billed as CPU time when a sibling thread is descheduled).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch.nn import functional as F

from jola_lens import JoLAEdit, load_model
from jola_lens.backends.route import make_route


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--attn", choices=("sdpa", "eager"), default="sdpa",
                        help="attention of the hf and nnsight copies (a TransformerBridge always runs eager)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    base, tokenizer = load_model()
    base.set_attn_implementation(args.attn)
    models = {name: make_route(name, base if name == "tl" else copy.deepcopy(base), copy.deepcopy(tokenizer))
              for name in ("hf", "nnsight", "tl")}  # the bridge last: it boots from ``base`` itself
    start = JoLAEdit.for_model(models["hf"].hf_model, seed=0).train()
    edits = {name: copy.deepcopy(start) for name in models}
    optimizers = {name: torch.optim.AdamW(edit.parameters(), lr=5e-3, weight_decay=0.0) for name, edit in edits.items()}
    vocab = base.config.vocab_size
    ids = torch.randint(0, vocab, (args.batch, args.seq), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)

    def step(name: str) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        optimizers[name].zero_grad()
        logits = models[name].forward(edits[name], ids, mask)
        F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten()).backward()
        optimizers[name].step()
        return time.perf_counter() - wall, time.process_time() - cpu

    walls: dict[str, list[float]] = {name: [] for name in models}
    cpus: dict[str, list[float]] = {name: [] for name in models}
    for round_ in range(args.warmup + args.steps):
        seconds = {name: step(name) for name in models}
        label = "warm-up" if round_ < args.warmup else "measured"
        print(f"round {round_} ({label}): "
              + ", ".join(f"{name} {wall:.2f} s wall / {cpu:.2f} s CPU" for name, (wall, cpu) in seconds.items()),
              flush=True)
        if round_ >= args.warmup:
            for name, (wall, cpu) in seconds.items():
                walls[name].append(wall)
                cpus[name].append(cpu)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {args.batch} x {args.seq} tokens; "
          f"hf/nnsight attention {args.attn}, TransformerLens eager; {args.steps} steps after {args.warmup} warm-up")
    print(f"{'route':<18}{'wall s/step':>12}{'CPU s/step':>12}{'CPU x hf':>10}")
    for name in models:
        ratio = statistics.median(c / h for c, h in zip(cpus[name], cpus["hf"]))
        print(f"{name:<18}{statistics.median(walls[name]):>12.2f}{statistics.median(cpus[name]):>12.2f}{ratio:>10.3f}")


if __name__ == "__main__":
    main()
