"""Tokenize a prompt and its target with an exact prompt/answer boundary in tokens."""

from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = -100


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of prompt + target; `labels` is -100 on every prompt token and the ids on target tokens;
    `truncated`: how many prompt tokens were cut from the left to fit `max_length`."""

    input_ids: list[int]
    labels: list[int]
    truncated: int = 0

    @property
    def prompt_length(self) -> int:
        """Number of leading prompt tokens (those with label -100)."""
        return next((i for i, label in enumerate(self.labels) if label != IGNORE_INDEX), len(self.labels))


def encode_example(tokenizer, prompt: str, target: str, max_length: int = 400,
                   add_eos: bool = True) -> EncodedExample:
    """Encode `prompt` and `target` separately and concatenate them.

    The prompt keeps the special tokens the tokenizer adds (e.g. BOS; none are added again when the prompt
    text already starts with the BOS token, as chat templates do); the target gets none, plus EOS when
    `add_eos`. Tokenizing the two parts separately means the boundary is exact even where joint
    tokenization would merge characters across it. When the sequence exceeds `max_length`, prompt tokens
    are dropped from the left (after a leading BOS, which is kept); the target is never cut, and a target
    that alone does not fit raises ValueError.
    """
    bos = getattr(tokenizer, "bos_token", None)
    has_bos_text = bool(bos) and prompt.startswith(bos)
    prompt_ids = list(tokenizer(prompt, add_special_tokens=not has_bos_text)["input_ids"])
    target_ids = list(tokenizer(target, add_special_tokens=False)["input_ids"])
    if add_eos:
        if tokenizer.eos_token_id is None:
            raise ValueError("add_eos=True but the tokenizer has no eos_token_id")
        target_ids.append(tokenizer.eos_token_id)
    keep_bos = int(bool(prompt_ids) and prompt_ids[0] == getattr(tokenizer, "bos_token_id", None))
    overflow = max(len(prompt_ids) + len(target_ids) - max_length, 0)
    if overflow > len(prompt_ids) - keep_bos:
        raise ValueError(f"the target alone has {len(target_ids)} tokens, more than max_length={max_length} "
                         f"allows after the prompt's {keep_bos} kept token(s)")
    prompt_ids = prompt_ids[:keep_bos] + prompt_ids[keep_bos + overflow:]
    return EncodedExample(input_ids=prompt_ids + target_ids, labels=[IGNORE_INDEX] * len(prompt_ids) + target_ids,
                          truncated=overflow)
