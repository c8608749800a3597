"""Scoring a model on task items: option log-likelihoods with a shared prefix, and the paper's beam search.

Likelihood (`option_logprobs`). Each option is encoded after its prompt exactly as training encodes a target
(`encode_example`: prompt and option tokenized separately, the prompt cut from the left to fit), so the token
boundary between prompt and option is the training one. The tokens all options of an item share (their prompt,
as a rule) go through the model once; an option whose only scored token follows that prefix is read from the
prefix's last position; longer options continue from the prefix's KV cache, expanded over the options. The edit
applies at every position as in one full forward, and the head projects to the vocabulary only where a scored
token is predicted. ``shared_prefix=False`` runs every option as its own prompt + option sequence instead
(the reference the shared-prefix scores are tested against).

Generation (`generate_responses`): the paper's decoding, 4-beam search without sampling, prompts of similar length
left-padded together in batches; the first line of each continuation is kept.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor
from tqdm.auto import tqdm
from transformers import GenerationConfig

from jola_lens.backends.head import Positions
from jola_lens.backends.route import Route
from jola_lens.batching import collate, length_groups
from jola_lens.edit import JoLAEdit
from jola_lens.loss import Targets, token_logprobs
from jola_lens.methods.base import Adapter
from jola_lens.tasks.base import Task
from jola_lens.tasks.encoding import IGNORE_INDEX, EncodedExample, encode_example
from jola_lens.tasks.examples import Example
from jola_lens.tasks.parsing import first_line

logger = logging.getLogger(__name__)

NUM_BEAMS = 4
CHUNK_OVERHEAD = 32
"""Token slots one more forward is worth when the options' continuations are split into chunks of similar length."""
Edit = JoLAEdit | Adapter | None
Request = tuple[str, str]
"""(prompt, option): the text before the option and the option text that is scored."""


def option_requests(task: Task, example: Example, style: str = "alpaca", tokenizer: Any = None) -> list[Request]:
    """The (prompt, option) pairs of one item: its prompt with each of ``example.choices``, or, for items whose
    options go into the prompt (``example.option_instructions``), each option's prompt with the shared target."""
    if example.option_instructions:
        return [(task.prompt(dataclasses.replace(example, instruction=text), style, tokenizer), example.target)
                for text in example.option_instructions]
    prompt = task.prompt(example, style, tokenizer)
    return [(prompt, option) for option in example.choices]


@dataclass(frozen=True)
class EncodedItem:
    """One item's options, each encoded after its prompt; the first ``shared`` tokens are the same in all."""

    id: str
    options: tuple[EncodedExample, ...]
    shared: int


def context_length(route: Route) -> int | None:
    """The longest sequence the model takes (``max_position_embeddings``), if its config says."""
    value = getattr(route.hf_model.config, "max_position_embeddings", None)
    return value if isinstance(value, int) and value > 0 else None


def encode_items(tokenizer: Any, requests: Sequence[Sequence[Request]], ids: Sequence[str], *, max_length: int,
                 context: int | None = None) -> list[EncodedItem]:
    """Encode every option of every item (``ids`` name the items in messages), checked: each option has a token
    to score, fits ``max_length`` (and the model's ``context``) on its own, and follows at least one prompt token.
    Prompts cut from the left to fit are reported once for all items."""
    limit = min(max_length, context) if context else max_length
    items, cut = [], []
    for item_id, pairs in zip(ids, requests, strict=True):
        options = tuple(_encode_option(tokenizer, item_id, k, prompt, option, limit, max_length, context)
                        for k, (prompt, option) in enumerate(pairs))
        if any(o.prompt_length == 0 for o in options):
            raise ValueError(f"item {item_id}: the prompt is empty after tokenization and the tokenizer adds no BOS "
                             "token, so nothing precedes the first option token; give the item a prompt")
        items.append(EncodedItem(item_id, options, _shared_length(options)))
        cut.extend(o.truncated for o in options if o.truncated)
    if cut:
        logger.warning("%d option sequence(s) of %d items did not fit %d tokens: their prompts were cut from the left "
                       "by up to %d tokens (raise max_length to keep them whole)", len(cut), len(items), limit,
                       max(cut))
    return items


def _encode_option(tokenizer: Any, item_id: str, k: int, prompt: str, option: str, limit: int, max_length: int,
                   context: int | None) -> EncodedExample:
    where = f"item {item_id}: option {k} ({option[:60]!r})"
    try:
        encoded = encode_example(tokenizer, prompt, option, max_length=limit, add_eos=False)
    except ValueError as error:
        n = len(tokenizer(option, add_special_tokens=False)["input_ids"])
        if context is not None and n >= context:
            raise ValueError(f"{where} has {n} tokens, more than the model's context of {context} tokens; "
                             "it cannot be scored") from error
        raise ValueError(f"{where} has {n} tokens, too many for max_length={max_length} after the prompt's first "
                         "token; raise max_length") from error
    if len(encoded.input_ids) == encoded.prompt_length:
        raise ValueError(f"{where} is empty after tokenization; every option needs at least one token to score")
    return encoded


def _shared_length(options: Sequence[EncodedExample]) -> int:
    """Leading tokens all options share, at most up to the first scored token of any option."""
    limit = min(o.prompt_length for o in options)
    first = options[0].input_ids
    for n in range(limit):
        if any(o.input_ids[n] != first[n] for o in options[1:]):
            return n
    return limit


def pad_token_id(tokenizer: Any) -> int:
    """The id padding uses (any id works under a zero attention mask): pad, else EOS, else 0."""
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if value is not None:
            return value
    return 0


@torch.inference_mode()
def option_logprobs(route: Route, tokenizer: Any, requests: Sequence[Sequence[Request]], edit: Edit, *,
                    ids: Sequence[str] | None = None, batch_size: int = 1, max_length: int = 400,
                    shared_prefix: bool = True, progress: bool = True) -> list[list[float]]:
    """Summed log-probability of each option's tokens after its prompt, per item and option (``requests``: one
    list of (prompt, option) pairs per item, see `option_requests`). ``batch_size`` items go through the model
    together; see the module doc for ``shared_prefix``."""
    ids = [str(i) for i in range(len(requests))] if ids is None else ids
    items = encode_items(tokenizer, requests, ids, max_length=max_length, context=context_length(route))
    pad = pad_token_id(tokenizer)
    results: list[list[float]] = [[] for _ in items]
    groups = length_groups([item.shared for item in items], batch_size)
    for group in tqdm(groups, desc="scoring options", leave=False, disable=not progress):
        # options that share no token (prompts cut differently from the left, without BOS) run whole
        prefixed = [i for i in group if shared_prefix and items[i].shared > 0]
        whole = [i for i in group if i not in prefixed]
        for part, score in ((prefixed, _shared_prefix_sums), (whole, _full_sequence_sums)):
            if part:
                for i, sums in zip(part, score(route, edit, [items[i] for i in part], pad)):
                    results[i] = sums
    return results


def _full_sequence_sums(route: Route, edit: Edit, items: Sequence[EncodedItem], pad: int) -> list[list[float]]:
    batch = collate([o for item in items for o in item.options], pad).to(route.device)
    targets = Targets.from_labels(batch.labels)
    logits = route.forward(edit, batch.input_ids, batch.attention_mask, logits_at=targets.positions)
    flat = torch.zeros(batch.labels.shape[0], dtype=torch.float32, device=logits.device)
    flat.index_add_(0, targets.positions.rows, token_logprobs(logits, targets.tokens))
    return _split(flat.tolist(), items)


def _split(flat: list[float], items: Sequence[EncodedItem]) -> list[list[float]]:
    out, start = [], 0
    for item in items:
        out.append(flat[start:start + len(item.options)])
        start += len(item.options)
    return out


@dataclass
class _Reads:
    """Where the scored tokens are predicted in one pass: ``(row, column)`` positions, the tokens there, and the
    flat option index each adds to."""

    rows: list[int] = dataclasses.field(default_factory=list)
    cols: list[int] = dataclasses.field(default_factory=list)
    tokens: list[int] = dataclasses.field(default_factory=list)
    options: list[int] = dataclasses.field(default_factory=list)

    def add(self, row: int, col: int, token: int, option: int) -> None:
        self.rows.append(row)
        self.cols.append(col)
        self.tokens.append(token)
        self.options.append(option)

    def positions(self, device: torch.device) -> Positions:
        return Positions(torch.tensor(self.rows, device=device), torch.tensor(self.cols, device=device))

    def add_logprobs(self, sums: Tensor, logits: Tensor) -> None:
        tokens = torch.tensor(self.tokens, device=logits.device)
        sums.index_add_(0, torch.tensor(self.options, device=logits.device), token_logprobs(logits, tokens).cpu())


def _padded(rows: Sequence[Sequence[int]], pad: int) -> tuple[Int[Tensor, "rows width"], Int[Tensor, "rows width"]]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.as_tensor(r, dtype=torch.long)
        mask[i, :len(r)] = 1
    return ids, mask


def _shared_prefix_sums(route: Route, edit: Edit, items: Sequence[EncodedItem], pad: int) -> list[list[float]]:
    """One pass over the shared prefixes (right-padded, logits at each prefix's last position), then the options
    that need more: their tokens after the prefix, on the prefix's cache, in chunks of similar length."""
    device = route.device
    prefix_reads = _Reads()
    suffixes: list[tuple[int, list[int], list[tuple[int, int, int]]]] = []  # (item, tokens, (col, token, option))
    option = 0
    for j, item in enumerate(items):
        for encoded in item.options:
            scored = [t for t in range(item.shared, len(encoded.labels)) if encoded.labels[t] != IGNORE_INDEX]
            if scored[0] == item.shared:
                prefix_reads.add(j, 0, encoded.input_ids[item.shared], option)
            if scored[-1] > item.shared:
                reads = [(t - 1 - item.shared, encoded.input_ids[t], option) for t in scored if t > item.shared]
                suffixes.append((j, encoded.input_ids[item.shared:scored[-1]], reads))
            option += 1
    sums = torch.zeros(option, dtype=torch.float32)
    prefix_ids, prefix_mask = _padded([item.options[0].input_ids[:item.shared] for item in items], pad)
    shared = torch.tensor([item.shared for item in items])
    last = Positions(torch.arange(len(items), device=device), (shared - 1).to(device))
    logits, cache = route.run(edit, prefix_ids.to(device), prefix_mask.to(device), logits_at=last,
                              position_ids=torch.arange(prefix_ids.shape[1]).expand_as(prefix_ids).to(device),
                              use_cache=bool(suffixes))
    if prefix_reads.rows:
        prefix_reads.add_logprobs(sums, logits[torch.tensor(prefix_reads.rows, device=device)])
    chunks = length_chunks([len(tokens) for _, tokens, _ in suffixes])
    for n, chunk in enumerate(chunks):
        rows = [suffixes[r] for r in chunk]
        chunk_cache = cache if n == len(chunks) - 1 else copy.deepcopy(cache)
        index = torch.tensor([j for j, _, _ in rows], device=device)
        chunk_cache.reorder_cache(index)
        suffix_ids, suffix_mask = _padded([tokens for _, tokens, _ in rows], pad)
        reads = _Reads()
        for row, (_, _, row_reads) in enumerate(rows):
            for col, token, opt in row_reads:
                reads.add(row, col, token, opt)
        logits, _ = route.run(edit, suffix_ids.to(device), torch.cat([prefix_mask.to(device)[index],
                                                                      suffix_mask.to(device)], dim=1),
                              logits_at=reads.positions(device), past_key_values=chunk_cache, use_cache=True,
                              position_ids=shared.to(device)[index, None]
                              + torch.arange(suffix_ids.shape[1], device=device)[None])
        reads.add_logprobs(sums, logits)
    return _split(sums.tolist(), items)


def length_chunks(lengths: Sequence[int], overhead: int = CHUNK_OVERHEAD) -> list[list[int]]:
    """Indices of ``lengths`` in chunks of similar length, minimizing the padded token slots plus ``overhead``
    slots per chunk (the cost of one more forward), by dynamic programming over the sorted lengths."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    best = [0] + [0] * len(order)
    cut = [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        best[end], cut[end] = min((best[start] + (end - start) * lengths[order[end - 1]] + overhead, start)
                                  for start in range(end))
    out, end = [], len(order)
    while end:
        out.append(order[cut[end]:end])
        end = cut[end]
    return out[::-1]


# ---- generation ------------------------------------------------------------------------------------------
def generation_config(tokenizer: Any, max_new_tokens: int) -> GenerationConfig:
    """The paper's decoding: 4 beams, no sampling, at most ``max_new_tokens`` new tokens."""
    return GenerationConfig(num_beams=NUM_BEAMS, do_sample=False, max_new_tokens=max_new_tokens,
                            pad_token_id=pad_token_id(tokenizer), eos_token_id=tokenizer.eos_token_id)


@torch.inference_mode()
def generate_responses(route: Route, tokenizer: Any, prompts: Sequence[str], edit: Edit, *, max_new_tokens: int,
                       batch_size: int = 1, max_length: int = 400, progress: bool = True) -> list[str]:
    """The first line of each prompt's beam-search continuation (prompts of similar length left-padded
    together, ``batch_size`` at a time; prompts longer than ``max_length`` tokens are cut from the left)."""
    config = generation_config(tokenizer, max_new_tokens)
    encoded = [encode_example(tokenizer, p, "", max_length=max_length, add_eos=False) for p in prompts]
    cut = [e.truncated for e in encoded if e.truncated]
    if cut:
        logger.warning("%d of %d prompts were longer than max_length=%d and were cut from the left by up to %d "
                       "tokens", len(cut), len(prompts), max_length, max(cut))
    pad = pad_token_id(tokenizer)
    responses = [""] * len(prompts)
    groups = length_groups([len(e.input_ids) for e in encoded], batch_size)
    for group in tqdm(groups, desc="generating", leave=False, disable=not progress):
        width = max(len(encoded[i].input_ids) for i in group)
        input_ids = torch.full((len(group), width), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(group), width), dtype=torch.long)
        for row, i in enumerate(group):
            ids = encoded[i].input_ids
            input_ids[row, width - len(ids):] = torch.as_tensor(ids)
            attention_mask[row, width - len(ids):] = 1
        output = route.generate(edit, input_ids.to(route.device), attention_mask.to(route.device), config)
        for i, text in zip(group, tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)):
            responses[i] = first_line(text)
    return responses
