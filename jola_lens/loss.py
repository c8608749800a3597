"""Log-probabilities of target tokens: the completion-only loss and the likelihood scores share them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from jola_lens.tasks.encoding import IGNORE_INDEX


def target_logprobs(
    logits: Float[Tensor, "batch pos vocab"], labels: Int[Tensor, "batch pos"]
) -> tuple[Float[Tensor, " n"], Int[Tensor, " n"]]:
    """Log-probability of every target token given its prefix, and the row it belongs to.

    Position t's logits predict token t+1; only positions whose next label is not -100 are scored, so
    the log-softmax runs over target tokens only (not the whole [batch, pos, vocab] tensor).
    """
    next_labels = labels[:, 1:]
    rows, cols = (next_labels != IGNORE_INDEX).nonzero(as_tuple=True)
    picked = logits[:, :-1][rows, cols].float()
    targets = next_labels[rows, cols]
    logprobs = -F.cross_entropy(picked, targets, reduction="none")
    return logprobs, rows


def completion_loss(logits: Float[Tensor, "batch pos vocab"], labels: Int[Tensor, "batch pos"]) -> Float[Tensor, ""]:
    """Mean cross-entropy over the target tokens of the batch (prompt and padding excluded)."""
    logprobs, _ = target_logprobs(logits, labels)
    if logprobs.numel() == 0:
        raise ValueError("the batch has no target tokens (every label is -100)")
    return -logprobs.mean()


def sequence_logprobs(logits: Float[Tensor, "batch pos vocab"],
                      labels: Int[Tensor, "batch pos"]) -> Float[Tensor, " batch"]:
    """Summed log-probability of each row's target tokens."""
    logprobs, rows = target_logprobs(logits, labels)
    return torch.zeros(labels.shape[0], dtype=logprobs.dtype, device=logprobs.device).index_add_(0, rows, logprobs)
