"""Logits only where they are read: the model's head projects the gathered positions, not every position.

A forward pre-hook on the output embeddings (``hf_model.get_output_embeddings()``: the LM head, or the bridge's
wrapper of it) replaces the final hidden states ``[batch, pos, d_model]`` by those at ``positions`` (``[1, n,
d_model]``), so the projection onto the vocabulary, and anything the model does to its logits afterwards (soft
capping, logit scales), runs on ``n`` positions only. The model body runs as before, with the edit wherever the
route applies it, so the logits at those positions are the full forward's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from jaxtyping import Float, Int
from torch import Tensor, nn

from jola_lens.architectures import UnsupportedModelError


class Positions(NamedTuple):
    """Positions ``(rows[i], cols[i])`` of a ``[batch, pos]`` input whose logits are wanted, in that order."""

    rows: Int[Tensor, " n"]
    cols: Int[Tensor, " n"]


@contextmanager
def logits_only_at(hf_model: nn.Module, positions: Positions | None) -> Iterator[None]:
    """Inside the block, forwards of ``hf_model`` project to the vocabulary at ``positions`` only (None: at all
    positions); their logits are ``[1, n, vocab]``, see :func:`gathered_logits`."""
    if positions is None:
        yield
        return
    head = hf_model.get_output_embeddings()
    if head is None:
        raise UnsupportedModelError(f"{type(hf_model).__name__} has no output embeddings (get_output_embeddings() "
                                    "is None), so logits cannot be limited to the scored positions")
    rows, cols = positions

    def gather(module: nn.Module, args: tuple) -> tuple:
        return (args[0][rows, cols].unsqueeze(0), *args[1:])

    handle = head.register_forward_pre_hook(gather)
    try:
        yield
    finally:
        handle.remove()


def gathered_logits(logits: Float[Tensor, "1 n vocab"], positions: Positions) -> Float[Tensor, "n vocab"]:
    """The ``[n, vocab]`` logits of a forward run inside :func:`logits_only_at`, checked for their shape."""
    n = positions.rows.numel()
    if logits.ndim != 3 or logits.shape[:2] != (1, n):
        raise UnsupportedModelError(f"the model returned logits of shape {tuple(logits.shape)}, not (1, {n}, vocab): "
                                    "its forward does not project through get_output_embeddings()")
    return logits[0]


def select(logits: Float[Tensor, "batch pos vocab"], positions: Positions | None) -> Float[Tensor, "... vocab"]:
    """Full logits narrowed to ``positions`` (for forwards that cannot limit the projection themselves)."""
    return logits if positions is None else logits[positions.rows, positions.cols]


def adapter_logits_at(adapter: Any, input_ids: Int[Tensor, "batch pos"], attention_mask: Int[Tensor, "batch pos"],
                      positions: Positions) -> Float[Tensor, "n vocab"]:
    """``adapter.forward`` (any method's adapter) with the head limited to ``positions`` when the adapter runs on a
    route (it then projects through that route's model); otherwise its full logits, narrowed."""
    route = getattr(adapter, "backend", None)
    if route is None:
        return select(adapter.forward(input_ids, attention_mask), positions)
    with logits_only_at(route.hf_model, positions):
        return gathered_logits(adapter.forward(input_ids, attention_mask), positions)
