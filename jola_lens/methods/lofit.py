"""LoFiT (Yin et al. 2024) on JoLA's edit: two stages, both ungated JoLA edits of the per-head attention outputs.

1. scaling: ``z' = z * (1 + A)`` on every head (JoLA's multiplicative edit, no gates), A ~ N(0, 1e-3), trained with
   the task loss plus ``l1 * sum |A|``; the K heads with the largest ||A|| are kept.
2. offsets: ``z' = z + v`` on those K heads only (JoLA's additive edit restricted by ``JoLAConfig.heads``; every
   other head bit-exactly unedited), v ~ N(0, 1e-3), trained from scratch without penalty.

Defaults: see :mod:`jola_lens.methods.config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float
from torch import Tensor

from jola_lens.architectures import find_head_sites
from jola_lens.heads import Head, head_name
from jola_lens.methods.config import LOFIT_HEAD_SHARE, LOFIT_INIT_STD, MethodFlagError
from jola_lens.methods.jola import JoLAAdapter

if TYPE_CHECKING:
    from jola_lens.backends.route import Route

SCALING, OFFSETS = "lofit_scaling", "lofit_offsets"


def default_top_k(n_layers: int, n_heads: int) -> int:
    """LoFiT's K: 3% of all heads, at least one."""
    return max(1, round(LOFIT_HEAD_SHARE * n_layers * n_heads))


def check_top_k(top_k: int | None, n_layers: int, n_heads: int) -> int:
    """``--lofit_top_k`` resolved and checked against the model's number of heads."""
    total = n_layers * n_heads
    k = default_top_k(n_layers, n_heads) if top_k is None else top_k
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= total:
        raise MethodFlagError(f"--lofit_top_k must be between 1 and the model's {total} heads ({n_layers} layers x "
                              f"{n_heads} heads), got {k!r}")
    return k


class LoFiTScaling(JoLAAdapter):
    """Stage 1: per-head scaling vectors on every head, with LoFiT's L1 penalty."""

    method: str = SCALING

    @classmethod
    def build_stage(cls, backend: Route, *, seed: int | None, settings: dict[str, Any]) -> LoFiTScaling:
        sites = find_head_sites(backend.hf_model)
        check_top_k(settings.get("lofit_top_k"), sites.n_layers, sites.n_heads)
        return cls.build(backend, seed=seed, settings=settings, additive=False, multiplicative=True, gated=False,
                         init_std=LOFIT_INIT_STD)

    def penalty(self, lam: float) -> Float[Tensor, ""]:
        """``l1 * sum |A|`` over every head (LoFiT's penalty; the gate mix ``lam`` does not apply)."""
        return self.settings["lofit_l1"] * self.edit.multiplicative.abs().sum()

    def head_norms(self) -> Float[Tensor, "layer head"]:
        """||A|| per head, [all layers, heads] (the score LoFiT ranks heads by)."""
        c = self.edit.config
        norms = torch.zeros(c.n_layers, c.n_heads)
        norms[list(c.edited_layers)] = self.edit.multiplicative.detach().float().norm(dim=-1).cpu()
        return norms

    def top_heads(self) -> tuple[Head, ...]:
        """The K heads with the largest ||A||, best first (ties: lower layer, then lower head first)."""
        c = self.edit.config
        k = check_top_k(self.settings.get("lofit_top_k"), c.n_layers, c.n_heads)
        flat = self.head_norms().flatten()
        order = sorted(range(flat.numel()), key=lambda i: (-flat[i].item(), i))[:k]
        return tuple(divmod(i, c.n_heads) for i in order)


class LoFiTOffsets(JoLAAdapter):
    """Stage 2: per-head additive offsets on the heads stage 1 selected, trained from scratch."""

    method: str = "lofit"

    @classmethod
    def build_stage(cls, backend: Route, *, seed: int | None, settings: dict[str, Any],
                    previous: LoFiTScaling) -> LoFiTOffsets:
        if not isinstance(previous, LoFiTScaling):
            raise TypeError(f"LoFiT's offsets stage needs the trained scaling stage, got {type(previous).__name__}")
        heads = previous.top_heads()
        norms = previous.head_norms()
        recorded = {**settings, "lofit_top_k": len(heads), "heads": [head_name(h) for h in heads],
                    "scaling_norms": [round(norms[h].item(), 6) for h in heads]}
        layers = tuple(sorted({layer for layer, _ in heads}))
        return cls.build(backend, seed=seed, settings=recorded, additive=True, multiplicative=False, gated=False,
                         init_std=LOFIT_INIT_STD, layers=layers, heads={"additive": heads})

    @property
    def heads(self) -> tuple[Head, ...]:
        return self.edit.config.heads["additive"]

    @classmethod
    def load_weights(cls, directory: Path, backend: Route, settings: dict[str, Any]) -> LoFiTOffsets:
        adapter = super().load_weights(directory, backend, settings)
        c = adapter.edit.config
        if c.edit_kinds != ("additive",) or c.gated or c.heads is None:
            raise ValueError(f"{directory} says method lofit, but its edit is not LoFiT's (ungated additive offsets "
                             f"on selected heads): kinds {list(c.edit_kinds)}, gated {c.gated}, heads {c.heads}")
        return adapter
