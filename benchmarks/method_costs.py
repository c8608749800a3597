"""Training cost of each method, relative to the bare frozen model's forward + backward.

One step of a method = ``adapter.forward`` + completion-style cross-entropy + the method's penalty + backward +
AdamW step, through the same Adapter interface the trainer uses (train mode: sampled gates, LoRA dropout).
The reference, "bare", is the frozen model's forward + backward to its input embeddings (the least backward any
method that edits inside the network needs). Every method has its own copy of the model (peft injects layers into
it) and the methods run interleaved, one step each per round, so load from other processes hits them alike.

Reported per method: trainable parameters, median wall-clock and process CPU seconds per step, the median per-round
ratio of CPU time to bare's, and memory. Memory on CUDA is the peak allocated during the step minus what was
allocated before it; on CPU (no allocator statistics) it is what the step keeps for backward (bytes of the distinct
tensors autograd saves) plus the trainable parameters' weights, gradients and two AdamW moments.

    python benchmarks/method_costs.py [--model tiny|default] [--batch 8] [--seq 128] [--warmup 2] [--steps 5]
                                      [--threads N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch.nn import functional as F

from jola_lens.backends.route import make_route
from jola_lens.methods import MethodConfig, build_adapter

METHODS: dict[str, tuple[MethodConfig, str | None]] = {
    "jola": (MethodConfig("jola"), None),
    "jola no_gates": (MethodConfig("jola", ablation="no_gates"), None),
    "lora": (MethodConfig("lora"), None),
    "ia3": (MethodConfig("ia3"), None),
    "lofit scaling": (MethodConfig("lofit"), "lofit_scaling"),
    "lofit offsets": (MethodConfig("lofit"), "lofit_offsets"),
}


def tiny_model() -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=4,
                         num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=256)
    return LlamaForCausalLM(config).eval().requires_grad_(False)


class SavedBytes:
    """Bytes of the distinct storages autograd saves for backward inside the block."""

    def __init__(self) -> None:
        self.storages: dict[int, int] = {}

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        self.storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    @property
    def total(self) -> int:
        return sum(self.storages.values())


def measure(step: Callable[[SavedBytes], None], device: torch.device) -> tuple[float, float, int]:
    """(wall s, CPU s, memory bytes) of one step."""
    saved = SavedBytes()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    wall, cpu = time.perf_counter(), time.process_time()
    step(saved)
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    memory = torch.cuda.max_memory_allocated() - before if device.type == "cuda" else saved.total
    return wall, cpu, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("tiny", "default"), default="default",
                        help="tiny = a random 4-layer llama; default = the embedded SmolLM2-135M")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.model == "tiny":
        base = tiny_model()
    else:
        from jola_lens import load_model

        base, _ = load_model()
    base.to(device)
    vocab = base.config.vocab_size
    ids = torch.randint(0, vocab, (args.batch, args.seq), generator=torch.Generator().manual_seed(0)).to(device)
    mask = torch.ones_like(ids)

    def loss_of(logits: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())

    bare = copy.deepcopy(base)

    def bare_step(saved: SavedBytes) -> None:
        embeds = bare.get_input_embeddings()(ids).detach().requires_grad_()
        with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda t: t):
            loss = loss_of(bare(inputs_embeds=embeds, attention_mask=mask).logits)
        loss.backward()

    steps: dict[str, Callable[[SavedBytes], None]] = {"bare (frozen fwd+bwd)": bare_step}
    parameters: dict[str, int] = {"bare (frozen fwd+bwd)": 0}
    state_bytes: dict[str, int] = {"bare (frozen fwd+bwd)": 0}
    for label, (config, stage) in METHODS.items():
        backend = make_route("hf", copy.deepcopy(base), None)
        adapter = build_adapter(config, backend, seed=0)
        if stage == "lofit_offsets":
            adapter = build_adapter(config, backend, seed=0, stage=stage, previous=adapter)
        optimizer = torch.optim.AdamW(adapter.parameter_groups(5e-3, 5e-3), weight_decay=0.0)
        adapter.train()

        def method_step(saved: SavedBytes, adapter=adapter, optimizer=optimizer) -> None:
            optimizer.zero_grad(set_to_none=True)
            with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda t: t):
                loss = loss_of(adapter.forward(ids, mask)) + adapter.penalty(0.5)
            loss.backward()
            optimizer.step()

        steps[label] = method_step
        parameters[label] = adapter.num_trainable_parameters()
        state_bytes[label] = 4 * sum(p.numel() * p.element_size() for p in adapter.parameters())

    rows: dict[str, list[tuple[float, float, int]]] = {label: [] for label in steps}
    for round_ in range(args.warmup + args.steps):
        results = {label: measure(step, device) for label, step in steps.items()}
        kind = "warm-up" if round_ < args.warmup else "measured"
        print(f"round {round_} ({kind}): " + ", ".join(f"{k} {w:.3f} s" for k, (w, _, _) in results.items()),
              flush=True)
        if round_ >= args.warmup:
            for label, result in results.items():
                rows[label].append(result)

    reference = rows["bare (frozen fwd+bwd)"]
    memory_kind = "peak CUDA MiB" if device.type == "cuda" else "saved+state MiB"
    print(f"\n{args.model} model ({sum(p.numel() for p in base.parameters()):,} parameters) on {device}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; batch {args.batch} x {args.seq} tokens; "
          f"{args.steps} steps after {args.warmup} warm-up")
    print(f"{'method':<24}{'trainable':>12}{'wall s/step':>13}{'CPU s/step':>12}{'CPU x bare':>12}"
          f"{'wall x bare':>13}{memory_kind:>17}")
    for label, results in rows.items():
        cpu_ratio = statistics.median(r[1] / b[1] for r, b in zip(results, reference))
        wall_ratio = statistics.median(r[0] / b[0] for r, b in zip(results, reference))
        memory = statistics.median(r[2] for r in results)
        if device.type != "cuda":
            memory += state_bytes[label]
        print(f"{label:<24}{parameters[label]:>12,}{statistics.median(r[0] for r in results):>13.3f}"
              f"{statistics.median(r[1] for r in results):>12.3f}{cpu_ratio:>12.3f}{wall_ratio:>13.3f}"
              f"{memory / 2**20:>17.1f}")


if __name__ == "__main__":
    main()
