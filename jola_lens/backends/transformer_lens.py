"""TransformerLens backend: the edit as ``blocks.{l}.attn.hook_z`` hooks on a TransformerBridge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from jola_lens.backends.base import Attachment
from jola_lens.edit import JoLAEdit


def hook_name(layer: int) -> str:
    return f"blocks.{layer}.attn.hook_z"


def _hook_fn(edit: JoLAEdit, layer: int) -> Callable[..., Tensor]:
    def jola_hook_z(z: Tensor, hook: Any) -> Tensor:
        return edit(z, layer)

    return jola_hook_z


def fwd_hooks(edit: JoLAEdit) -> list[tuple[str, Callable[..., Tensor]]]:
    """``[(hook_name, fn), ...]`` for ``bridge.run_with_hooks(fwd_hooks=...)`` or ``bridge.hooks(...)``."""
    return [(hook_name(layer), _hook_fn(edit, layer)) for layer in edit.config.edited_layers]


def check_bridge(bridge: Any, edit: JoLAEdit) -> None:
    cfg = bridge.cfg
    edit.check_fits((cfg.n_layers, cfg.n_heads, cfg.d_head), f"this TransformerBridge ({cfg.model_name})")
    missing = [name for name, _ in fwd_hooks(edit) if name not in bridge.hook_dict]
    if missing:
        raise ValueError(f"the TransformerBridge has no hook points {missing[:3]}: JoLA needs per-head hook_z")


def attach(bridge: Any, edit: JoLAEdit) -> Attachment:
    """Keep ``edit`` on ``bridge`` (every forward pass, ``run_with_cache`` and ``generate``) until removed.

    The hooks are TransformerLens permanent hooks, so ``bridge.reset_hooks()`` leaves them in place;
    ``run_with_cache`` then records the edited z.
    """
    check_bridge(bridge, edit)
    removers = []
    for name, fn in fwd_hooks(edit):
        hook_point = bridge.hook_dict[name]
        handle = hook_point.add_hook(fn, is_permanent=True)
        removers.append(partial_remove(hook_point, handle))
    return Attachment(removers, backend="transformer_lens")


def partial_remove(hook_point: Any, handle: Any) -> Callable[[], None]:
    def remove() -> None:
        handle.hook.remove()
        hook_point.fwd_hooks = [h for h in hook_point.fwd_hooks if h is not handle]

    return remove


def forward(bridge: Any, edit: JoLAEdit, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """Logits [batch, pos, vocab] of ``bridge`` with ``edit`` applied through hook_z hooks."""
    check_bridge(bridge, edit)
    return bridge.run_with_hooks(input_ids, return_type="logits", attention_mask=attention_mask,
                                 fwd_hooks=fwd_hooks(edit))
