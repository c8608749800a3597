"""Prompt templates that wrap an instruction: the paper's Alpaca template, a chat template, or none."""

from __future__ import annotations

ALPACA_TEMPLATE = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n"
    " ### Instruction:\n{instruction}\n\n### Response:\n"
)
PROMPT_STYLES = ("alpaca", "chat", "plain")


def render_prompt(instruction: str, style: str = "alpaca", tokenizer=None) -> str:
    """The text a model sees before the target.

    * "alpaca": the JoLA paper's template (`ALPACA_TEMPLATE`, including the space before the first ###);
    * "chat": `tokenizer.apply_chat_template` with one user turn and the generation prompt;
    * "plain": the instruction itself.
    """
    if style == "alpaca":
        return ALPACA_TEMPLATE.format(instruction=instruction)
    if style == "plain":
        return instruction
    if style == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError("style='chat' needs a tokenizer that has a chat template")
        return tokenizer.apply_chat_template([{"role": "user", "content": instruction}],
                                             add_generation_prompt=True, tokenize=False)
    raise ValueError(f"unknown prompt style {style!r}; expected one of {PROMPT_STYLES}")
