"""Log-probabilities of target tokens: the completion-only loss and the likelihood scores share them.

Position t's logits predict token t+1, so only the positions whose next label is not -100 are ever read
(`Targets`). A forward can project to the vocabulary at just those positions
(``route.forward(..., logits_at=targets.positions)``) and hand the ``[n, vocab]`` logits to `completion_loss_at`;
`completion_loss` takes full ``[batch, pos, vocab]`` logits and gives the same value.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from jola_lens.backends.head import Positions
from jola_lens.tasks.encoding import IGNORE_INDEX


@dataclass(frozen=True)
class Targets:
    """The scored tokens of a batch: ``tokens[i]`` is predicted at ``positions[i]`` (row, column)."""

    positions: Positions
    tokens: Int[Tensor, " n"]

    @classmethod
    def from_labels(cls, labels: Int[Tensor, "batch pos"]) -> Targets:
        next_labels = labels[:, 1:]
        rows, cols = (next_labels != IGNORE_INDEX).nonzero(as_tuple=True)
        return cls(Positions(rows, cols), next_labels[rows, cols])


def token_logprobs(logits: Float[Tensor, "n vocab"], tokens: Int[Tensor, " n"]) -> Float[Tensor, " n"]:
    """log p(tokens[i]) under logits[i] (in float32)."""
    return -F.cross_entropy(logits.float(), tokens, reduction="none")


def target_logprobs(
    logits: Float[Tensor, "batch pos vocab"], labels: Int[Tensor, "batch pos"]
) -> tuple[Float[Tensor, " n"], Int[Tensor, " n"]]:
    """Log-probability of every target token given its prefix, and the row it belongs to (the log-softmax runs
    over target positions only)."""
    targets = Targets.from_labels(labels)
    picked = logits[:, :-1][targets.positions.rows, targets.positions.cols]
    return token_logprobs(picked, targets.tokens), targets.positions.rows


def completion_loss_at(logits: Float[Tensor, "n vocab"], targets: Targets) -> Float[Tensor, ""]:
    """Mean cross-entropy over the target tokens, from logits taken at ``targets.positions`` only."""
    if targets.tokens.numel() == 0:
        raise ValueError("the batch has no target tokens (every label is -100)")
    return -token_logprobs(logits, targets.tokens).mean()


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
