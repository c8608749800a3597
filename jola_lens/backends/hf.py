"""Plain Hugging Face backend: forward pre-hooks on each layer's attention output projection."""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from jola_lens.architectures import find_head_sites
from jola_lens.backends.base import Attachment
from jola_lens.edit import JoLAEdit


def _edit_projection_input(
    module: nn.Module, args: tuple[Tensor, ...], *, edit: JoLAEdit, layer: int, n_heads: int, d_head: int
) -> tuple[Tensor, ...]:
    x = args[0]
    z = x.view(*x.shape[:-1], n_heads, d_head)
    return (edit(z, layer).reshape(x.shape), *args[1:])


def attach(model: nn.Module, edit: JoLAEdit) -> Attachment:
    """Apply ``edit`` on every forward pass of ``model`` (a stock ``transformers`` causal LM) until removed."""
    sites = find_head_sites(model)
    edit.check_fits(sites.shape, type(model).__name__)
    handles = []
    for layer in edit.config.edited_layers:
        hook = partial(_edit_projection_input, edit=edit, layer=layer, n_heads=sites.n_heads, d_head=sites.d_head)
        handles.append(sites.out_projs[layer].register_forward_pre_hook(hook))
    return Attachment([handle.remove for handle in handles], backend="hf")


def forward(model: nn.Module, edit: JoLAEdit, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """Logits [batch, pos, vocab] of ``model`` with ``edit`` applied (gradients flow to the edit)."""
    with attach(model, edit):
        return model(input_ids=input_ids, attention_mask=attention_mask).logits
