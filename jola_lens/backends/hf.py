"""Plain Hugging Face route (``hf``): forward pre-hooks on each layer's attention output projection."""

from __future__ import annotations

from functools import partial

from einops import rearrange
from jaxtyping import Float, Int
from torch import Tensor, nn

from jola_lens.architectures import find_head_sites, unwrap_hf_model
from jola_lens.backends.base import Attachment, check_can_apply
from jola_lens.edit import JoLAEdit


def _edit_projection_input(module: nn.Module, args: tuple[Tensor, ...], *, edit: JoLAEdit, layer: int,
                           n_heads: int) -> tuple[Tensor, ...]:
    z = rearrange(args[0], "... (h d) -> ... h d", h=n_heads)
    return (rearrange(edit(z, layer), "... h d -> ... (h d)"), *args[1:])


def attach(model: nn.Module, edit: JoLAEdit, *, stack: bool = False) -> Attachment:
    """Apply ``edit`` on every forward pass of ``model`` (a stock ``transformers`` causal LM) until removed."""
    sites = find_head_sites(model)
    edit.check_fits(sites.shape, type(model).__name__)
    hf_model = unwrap_hf_model(model)
    check_can_apply(hf_model, edit, "hf", stack=stack)
    handles = []
    for layer in edit.config.edited_layers:
        hook = partial(_edit_projection_input, edit=edit, layer=layer, n_heads=sites.n_heads)
        handles.append(sites.out_projs[layer].register_forward_pre_hook(hook))
    return Attachment([handle.remove for handle in handles], backend="hf", edit=edit, hf_model=hf_model)


def forward(model: nn.Module, edit: JoLAEdit, input_ids: Int[Tensor, "batch pos"],
            attention_mask: Int[Tensor, "batch pos"] | None = None, *,
            stack: bool = False) -> Float[Tensor, "batch pos vocab"]:
    """Logits of ``model`` with ``edit`` applied (gradients flow to the edit)."""
    with attach(model, edit, stack=stack):
        return model(input_ids=input_ids, attention_mask=attention_mask).logits
