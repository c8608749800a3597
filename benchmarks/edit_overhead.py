"""Load time of the default model and the cost of a JoLA edit on one training step, per backend.

    python benchmarks/edit_overhead.py [--batch 8] [--tokens 128] [--repeats 7]

A "step" is forward + backward (+ Adam on the edit). The bare step has no edit; so that it runs the same backward
pass, its input embeddings require gradients in both cases.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch

from jola_lens import JoLAEdit, boot_bridge, load_model
from jola_lens.models import CACHE_ENV


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as cache:
        previous = os.environ.get(CACHE_ENV)
        os.environ[CACHE_ENV] = cache
        start = time.perf_counter()
        load_model()
        first = time.perf_counter() - start
        start = time.perf_counter()
        load_model()
        cached = time.perf_counter() - start
        if previous is None:
            del os.environ[CACHE_ENV]
        else:
            os.environ[CACHE_ENV] = previous
    model, tokenizer = load_model()  # from the lasting cache: the bridge reloads the tokenizer from its folder
    print(f"load_model(): first (GGUF -> safetensors cache) {first:.1f} s, cached {cached:.1f} s")

    ids = torch.randint(0, tokenizer.vocab_size, (args.batch, args.tokens))
    edit = JoLAEdit.for_model(model, seed=0).train()
    optimizer = torch.optim.AdamW(edit.parameters(), lr=5e-3, weight_decay=0.0)
    embed = model.get_input_embeddings()

    def hf_step(with_edit: bool) -> None:
        inputs = embed(ids).detach().requires_grad_(True)
        if with_edit:
            with edit.attached(model):
                loss = model(inputs_embeds=inputs).logits.float().logsumexp(-1).mean() + edit.penalty(0.1)
        else:
            loss = model(inputs_embeds=inputs).logits.float().logsumexp(-1).mean()
        loss.backward()
        if with_edit:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    results = {}
    for label, with_edit in (("hf bare", False), ("hf edit", True)) * 2:
        results.setdefault(label, []).append(timed(lambda w=with_edit: hf_step(w), args.repeats))

    bridge = boot_bridge(model, tokenizer)

    def tl_step(with_edit: bool) -> None:
        tokens = ids
        hooks = edit.fwd_hooks() if with_edit else []
        # hook_embed output requires grad so the bare step runs the same backward pass
        grad_hook = [("hook_embed", lambda x, hook: x.detach().requires_grad_(True))]
        loss = bridge.run_with_hooks(tokens, return_type="logits", fwd_hooks=grad_hook + hooks)
        loss = loss.float().logsumexp(-1).mean() + (edit.penalty(0.1) if with_edit else 0)
        loss.backward()
        if with_edit:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    for label, with_edit in (("tl bare", False), ("tl edit", True)) * 2:
        results.setdefault(label, []).append(timed(lambda w=with_edit: tl_step(w), args.repeats))

    print(f"one training step, batch {args.batch} x {args.tokens} tokens, torch threads {torch.get_num_threads()}"
          f" (median of {args.repeats}, two interleaved rounds):")
    for backend in ("hf", "tl"):
        bare, edited = min(results[f"{backend} bare"]), min(results[f"{backend} edit"])
        print(f"  {backend}: bare {bare:.3f} s  with edit {edited:.3f} s  overhead {100 * (edited / bare - 1):+.1f}%")


if __name__ == "__main__":
    main()
