"""TransformerLens route (``tl``): the edit as ``blocks.{l}.attn.hook_z`` hooks on a TransformerBridge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaxtyping import Float, Int
from torch import Tensor

from jola_lens.architectures import unwrap_hf_model
from jola_lens.backends import _compat
from jola_lens.backends.base import Attachment, check_can_apply
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


def attach(bridge: Any, edit: JoLAEdit, *, stack: bool = False) -> Attachment:
    """Keep ``edit`` on ``bridge`` (every forward pass, ``run_with_cache`` and ``generate``) until removed.

    The hooks are TransformerLens permanent hooks, so ``bridge.reset_hooks()`` leaves them in place;
    ``run_with_cache`` then records the edited z.
    """
    check_bridge(bridge, edit)
    hf_model = unwrap_hf_model(bridge)
    check_can_apply(hf_model, edit, "tl", stack=stack)
    removers = [_compat.add_permanent_hook(bridge.hook_dict[name], fn) for name, fn in fwd_hooks(edit)]
    return Attachment(removers, backend="tl", edit=edit, hf_model=hf_model)


def forward(bridge: Any, edit: JoLAEdit, input_ids: Int[Tensor, "batch pos"],
            attention_mask: Int[Tensor, "batch pos"] | None = None, *,
            stack: bool = False) -> Float[Tensor, "batch pos vocab"]:
    """Logits of ``bridge`` with ``edit`` applied through hook_z hooks."""
    check_bridge(bridge, edit)
    check_can_apply(unwrap_hf_model(bridge), edit, "tl", stack=stack)
    return bridge.run_with_hooks(input_ids, return_type="logits", attention_mask=attention_mask,
                                 fwd_hooks=fwd_hooks(edit))
