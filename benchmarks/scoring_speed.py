"""Scoring and training speed on the embedded model (SmolLM2-135M-Instruct, float32, hf route), in one run.

    python benchmarks/scoring_speed.py [--items 100] [--eval_batch 8] [--threads 2] [--no-lm-eval]

1. Likelihood scoring, seconds per item on the same test items (embedded copies): today's scoring (every option its
   own prompt + option sequence, logits at every position) against the shared-prefix scoring of
   ``jola_lens.scoring`` and against lm-evaluation-harness (``pip install -e .[bench]``; its ``hf`` model on the
   same model folder, a local task YAML with the same prompts and options), with acc / acc_norm of each, how many
   items both tools feed the same tokens and score the same span, and their largest log-likelihood difference there.
   SST-2: the label formulation in the Alpaca prompt (two one-token options); ARC-e and HellaSwag: the cloze
   formulation without a wrapper (lm-eval's own prompts; four multi-token options, four long endings).
2. A training step (forward + backward, batch 8, SST-2 in the Alpaca prompt, a fresh JoLA edit): logits at every
   position (today) against logits at the target positions only, in the seeded order and grouped by length, and
   the bare frozen model's forward + backward (gradients to its input embeddings) for scale.
3. The padded share of the tokens in training batches (batch 8, 200 training items), seeded order vs grouped by
   length, on SST-2 and ARC-e.
4. Generation (the paper's 4 beams): seconds per item at eval batch 1 (the paper's setting) and at --eval_batch.
Each timing runs once after a warm-up on other items.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from jola_lens import JoLAEdit, load_model
from jola_lens.backends.route import Route, make_route
from jola_lens.batching import collate, epoch_batches, length_groups, padding_share
from jola_lens.evaluation import option_length
from jola_lens.loss import Targets, completion_loss, completion_loss_at, sequence_logprobs
from jola_lens.models import cache_root
from jola_lens.scoring import generate_responses, option_logprobs, option_requests
from jola_lens.tasks import get_task
from jola_lens.tasks.encoding import encode_example
from jola_lens.tasks.examples import Example

TASKS = (  # label, task, formulation, prompt style
    ("SST-2", "extra/SST-2", "label", "alpaca"),
    ("ARC-e cloze", "commonsense/ARC-e", "cloze", "plain"),
    ("HellaSwag", "commonsense/HellaSwag", "cloze", "plain"),
)
Requests = list[list[tuple[str, str]]]


@torch.inference_mode()
def todays_option_logprobs(route: Route, tokenizer: Any, requests: Requests, batch_size: int) -> list[list[float]]:
    """Scoring before prefix sharing: all options of ``batch_size`` items as full sequences, full logits."""
    encoded = [[encode_example(tokenizer, p, o, add_eos=False) for p, o in pairs] for pairs in requests]
    results: list[list[float]] = [[] for _ in requests]
    for group in length_groups([max(len(e.input_ids) for e in item) for item in encoded], batch_size):
        batch = collate([e for i in group for e in encoded[i]], tokenizer.pad_token_id)
        sums = sequence_logprobs(route.forward(None, batch.input_ids, batch.attention_mask), batch.labels).tolist()
        for i in group:
            results[i], sums = sums[:len(requests[i])], sums[len(requests[i]):]
    return results


def accuracies(examples: Sequence[Example], requests: Requests, sums: list[list[float]]) -> tuple[float, float]:
    acc = norm = 0
    for example, pairs, scores in zip(examples, requests, sums):
        normalized = [s / option_length(o) for s, (_, o) in zip(scores, pairs)]
        acc += max(range(len(scores)), key=scores.__getitem__) == example.answer_index
        norm += max(range(len(scores)), key=normalized.__getitem__) == example.answer_index
    return 100 * acc / len(examples), 100 * norm / len(examples)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


# ---- lm-evaluation-harness -------------------------------------------------------------------------------
def lm_eval_task(folder: Path, name: str, examples: Sequence[Example], requests: Requests) -> None:
    """A local lm-eval task with our prompts and options (a cloze option's leading space as target delimiter)."""
    delimiter = " " if all(o.startswith(" ") for pairs in requests for _, o in pairs) else ""
    rows = [{"context": pairs[0][0], "choices": [o.removeprefix(delimiter) for _, o in pairs], "gold": e.answer_index}
            for e, pairs in zip(examples, requests)]
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    yaml = (f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n"
            f"output_type: multiple_choice\ndoc_to_text: context\ndoc_to_choice: choices\ndoc_to_target: gold\n"
            f"target_delimiter: {json.dumps(delimiter)}\nmetric_list:\n  - metric: acc\n  - metric: acc_norm\n")
    (folder / f"{name}.yaml").write_text(yaml, encoding="utf-8")


def lm_eval_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """The (context, continuation) tokens lm-eval's hf model scores: trailing whitespace of the context moves to
    the continuation, which is the joint encoding minus the context's."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    head = tokenizer(context, add_special_tokens=False)["input_ids"]
    return head, whole[len(head):]


def token_agreement(tokenizer: Any, requests: Requests, ours: list[list[float]],
                    theirs: list[list[float]]) -> tuple[int, int, float]:
    """Items where both tools feed the same tokens, items where they also score the same tokens, and the
    largest |log-likelihood difference| over the latter."""
    same_input = same_span = 0
    worst = 0.0
    for pairs, a, b in zip(requests, ours, theirs):
        inputs, spans = True, True
        for prompt, option in pairs:
            encoded = encode_example(tokenizer, prompt, option, add_eos=False)
            head, tail = lm_eval_pair(tokenizer, prompt, option)
            inputs &= head + tail == encoded.input_ids
            spans &= inputs and len(tail) == len(encoded.input_ids) - encoded.prompt_length
        same_input += inputs
        if spans:
            same_span += 1
            worst = max(worst, max(abs(x - y) for x, y in zip(a, b)))
    return same_input, same_span, worst


def run_lm_eval(model_dir: Path, folder: Path, names: list[str], batch: int) -> dict[str, tuple[Any, float]]:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=str(model_dir), dtype="float32", device="cpu", batch_size=batch)
    manager = TaskManager(include_path=str(folder))
    out = {}
    for name in names:
        results, seconds = timed(lambda name=name: simple_evaluate(
            model=lm, tasks=[name], task_manager=manager, num_fewshot=0, bootstrap_iters=0, log_samples=True))
        samples = sorted(results["samples"][name], key=lambda s: s["doc_id"])
        sums = [[float(r[0]) for r in s["filtered_resps"]] for s in samples]
        metrics = results["results"][name]
        out[name] = ((100 * metrics["acc,none"], 100 * metrics["acc_norm,none"], sums), seconds)
    return out


# ---- training step ---------------------------------------------------------------------------------------
def step_seconds(route: Route, edit: JoLAEdit, batches: list, mode: str) -> float:
    """Mean seconds of forward + backward over ``batches`` (after one warm-up batch)."""
    model = route.hf_model

    def step(batch: Any) -> None:
        if mode == "bare":
            embeds = model.get_input_embeddings()(batch.input_ids).detach().requires_grad_()
            loss = completion_loss(model(inputs_embeds=embeds, attention_mask=batch.attention_mask).logits,
                                   batch.labels)
        elif mode == "full":
            loss = completion_loss(route.forward(edit, batch.input_ids, batch.attention_mask), batch.labels)
        else:
            targets = Targets.from_labels(batch.labels)
            loss = completion_loss_at(route.forward(edit, batch.input_ids, batch.attention_mask,
                                                    logits_at=targets.positions), targets)
        loss.backward()
        edit.zero_grad(set_to_none=True)

    step(batches[0])
    times = [timed(lambda b=b: step(b))[1] for b in batches[1:]]
    return statistics.mean(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100, help="test items per task (default: %(default)s)")
    parser.add_argument("--eval_batch", type=int, default=8, help="items per scoring forward (default: %(default)s)")
    parser.add_argument("--lm_eval_batch", type=int, default=32, help="lm-eval requests per forward")
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per setting")
    parser.add_argument("--generation_items", type=int, default=24, help="SST-2 items generated per setting")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    parser.add_argument("--no-lm-eval", dest="lm_eval", action="store_false", help="skip lm-evaluation-harness")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model()
    route = make_route("hf", model, tokenizer)
    model_dir = cache_root() / "models" / "SmolLM2-135M-Instruct-Q4_1-float32"
    print(f"SmolLM2-135M-Instruct float32, hf route, {torch.get_num_threads()} torch threads, {args.items} items per "
          f"task, eval batch {args.eval_batch} items (lm-eval: {args.lm_eval_batch} requests)\n")

    rows, lm_inputs = [], {}
    folder = Path(tempfile.mkdtemp(prefix="jola_scoring_speed_"))
    for label, name, formulation, style in TASKS:
        task = get_task(name, source="embedded", formulation=formulation)
        test = task.load_split("test")
        examples, warmup = test[:args.items], test[args.items:args.items + args.eval_batch]
        requests = [option_requests(task, e, style, tokenizer) for e in examples]
        warm = [option_requests(task, e, style, tokenizer) for e in warmup]
        todays_option_logprobs(route, tokenizer, warm, args.eval_batch)
        today, t_today = timed(lambda r=requests: todays_option_logprobs(route, tokenizer, r, args.eval_batch))
        option_logprobs(route, tokenizer, warm, None, batch_size=args.eval_batch, progress=False)
        new, t_new = timed(lambda r=requests: option_logprobs(route, tokenizer, r, None, batch_size=args.eval_batch,
                                                              progress=False))
        delta = max(abs(a - b) for x, y in zip(today, new) for a, b in zip(x, y))
        rows.append([label, examples, requests, today, t_today, new, t_new, delta])
        slug = "jola_bench_" + label.split()[0].lower().replace("-", "_")
        lm_eval_task(folder, slug, examples, requests)
        lm_inputs[label] = slug
    lm_results = run_lm_eval(model_dir, folder, list(lm_inputs.values()), args.lm_eval_batch) if args.lm_eval else {}

    print("1. likelihood scoring: seconds per item (acc / acc_norm, %)")
    print(f"{'task':12} {'today':>7} {'new':>7} {'speed-up':>8} {'lm-eval':>8} {'lm-eval/new':>11}  "
          f"{'acc today':>11} {'acc new':>11} {'acc lm-eval':>11}  {'max |dlogp| today-new':>21}")
    agreement = []
    for label, examples, requests, today, t_today, new, t_new, delta in rows:
        n = len(examples)
        acc_today, acc_new = accuracies(examples, requests, today), accuracies(examples, requests, new)
        lm = lm_results.get(lm_inputs[label])
        lm_time = f"{lm[1] / n:8.3f}" if lm else f"{'-':>8}"
        lm_ratio = f"{lm[1] / t_new:10.1f}x" if lm else f"{'-':>11}"
        lm_acc = f"{lm[0][0]:5.1f}/{lm[0][1]:5.1f}" if lm else f"{'-':>11}"
        print(f"{label:12} {t_today / n:7.3f} {t_new / n:7.3f} {t_today / t_new:7.1f}x {lm_time} {lm_ratio}  "
              f"{acc_today[0]:5.1f}/{acc_today[1]:5.1f} {acc_new[0]:5.1f}/{acc_new[1]:5.1f} {lm_acc}  {delta:21.1e}")
        if lm:
            agreement.append((label, n, *token_agreement(tokenizer, requests, new, lm[0][2])))
    for label, n, same_input, same_span, worst in agreement:
        print(f"   {label}: lm-eval feeds the same tokens for {same_input}/{n} items and scores the same tokens for "
              f"{same_span}/{n}; there the log-likelihoods differ by at most {worst:.1e}")

    sst2 = get_task("extra/SST-2", source="embedded")
    train = [encode_example(tokenizer, sst2.prompt(e), e.target) for e in sst2.splits(train_size=200, val_size=8).train]
    lengths = [len(e.input_ids) for e in train]
    edit = JoLAEdit.for_model(model, seed=0).train()
    print("\n2. training step (forward + backward), SST-2, batch 8: seconds per step")
    timings = {}
    for key, grouped, mode in (("today (full logits)", False, "full"), ("logits at targets", False, "targets"),
                               ("at targets, grouped by length", True, "targets"),
                               ("bare frozen model fwd+bwd", False, "bare")):
        batches = [collate([train[i] for i in group], tokenizer.pad_token_id)
                   for group in epoch_batches(lengths, 8, 42, 1, grouped)[:args.steps + 1]]
        timings[key] = step_seconds(route, edit, batches, mode)
    for key, seconds in timings.items():
        print(f"   {key:32} {seconds:7.3f}  ({seconds / timings['today (full logits)']:.2f}x today)")

    print("\n3. padded share of training tokens (batch 8, 200 items, epochs 1-5): seeded order -> grouped by length")
    for label, name, formulation in (("SST-2", "extra/SST-2", "label"), ("ARC-e cloze", "commonsense/ARC-e", "cloze")):
        task = get_task(name, source="embedded", formulation=formulation)
        items = task.splits(train_size=200, val_size=8).train
        lengths = [len(encode_example(tokenizer, task.prompt(e), e.target).input_ids) for e in items]
        shares = [statistics.mean(padding_share(lengths, epoch_batches(lengths, 8, 42, epoch, grouped))
                                  for epoch in range(1, 6)) for grouped in (False, True)]
        print(f"   {label:12} {shares[0]:6.1%} -> {shares[1]:6.1%}")

    print(f"\n4. generation (4 beams, {args.generation_items} SST-2 items, Alpaca prompt): seconds per item")
    test = sst2.load_split("test")
    items = test[:args.generation_items]
    prompts = [sst2.prompt(e) for e in items]
    generate_responses(route, tokenizer, [sst2.prompt(e) for e in test[-2:]], None, max_new_tokens=16, progress=False)
    outputs = {}
    for batch in (1, args.eval_batch):
        responses, seconds = timed(lambda b=batch: generate_responses(route, tokenizer, prompts, None,
                                                                      max_new_tokens=16, batch_size=b, progress=False))
        accuracy = sst2.score(responses, items)[0]["accuracy"]
        outputs[batch] = responses
        print(f"   eval batch {batch:2}: {seconds / len(items):6.3f} s/item, accuracy {accuracy:5.1f}%")
    same = sum(a == b for a, b in zip(outputs[1], outputs[args.eval_batch]))
    print(f"   identical responses at both batch sizes: {same}/{len(items)}")


if __name__ == "__main__":
    main()
