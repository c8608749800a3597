"""nnsight route (``nnsight``): the edit as an intervention on each layer's attention output projection input.

Inside a trace (``with model.trace(...)`` / ``with model.generate(...)``) the edit sets
``<layers_path>.<l>.<out_proj_path>.input`` (e.g. ``model.layers.3.self_attn.o_proj.input``) to
``edit(z, l)``, with z that input viewed as [batch, pos, heads, d_head]. Three ways to use it:

- :func:`apply_edit` in your own trace body edits the next forward pass (one generation step);
- :func:`apply_edit_every_step` edits every forward pass of the run (each generated token);
- :func:`attach` (``edit.attached(model)``) stores that as an nnsight edit (``model.edit(inplace=True)``),
  replayed on every trace, generate or ``trace=False`` call until removed. Calling the wrapped module
  directly (``model._module(...)``) bypasses nnsight and is not edited.
"""

from __future__ import annotations

import logging

import torch
from einops import rearrange
from jaxtyping import Float, Int
from nnsight.intervention.envoy import Envoy
from torch import Tensor

from jola_lens.architectures import UnsupportedModelError, find_head_sites, unwrap_hf_model
from jola_lens.backends import _compat
from jola_lens.backends.base import Attachment, check_can_apply
from jola_lens.edit import JoLAEdit

logger = logging.getLogger(__name__)

EditTargets = dict[int, tuple[Envoy, int, int]]
"""layer -> (envoy of its output projection, n_heads, d_head)."""


def edit_targets(model: Envoy, edit: JoLAEdit, *, stack: bool = False) -> EditTargets:
    """The output-projection envoys ``edit`` applies to, after checking that it fits ``model`` and is not applied
    there already (see :func:`jola_lens.backends.base.check_can_apply`)."""
    if not isinstance(model, Envoy):
        raise TypeError(f"the nnsight backend needs an nnsight model (e.g. nnsight.TransformersModel), got "
                        f"{type(model).__name__}; use jola_lens.backends.hf for a plain Hugging Face model")
    sites = find_head_sites(model)
    hf_model = unwrap_hf_model(model)
    hf_name = type(hf_model).__name__
    edit.check_fits(sites.shape, f"{type(model).__name__} wrapping {hf_name}")
    check_can_apply(hf_model, edit, "nnsight", stack=stack)
    targets = {}
    for layer in edit.config.edited_layers:
        envoy = model.get(sites.out_proj_path(layer))
        if envoy._module is not sites.out_projs[layer]:
            raise UnsupportedModelError(
                f"{type(model).__name__}: envoy '{envoy.path}' does not wrap {hf_name}'s output projection of "
                f"layer {layer}; fix the mapping with jola_lens.register_architecture"
            )
        targets[layer] = (envoy, sites.n_heads, sites.d_head)
    return targets


def _edit_input(envoy: Envoy, edit: JoLAEdit, layer: int, n_heads: int,
                d_head: int) -> Float[Tensor, "batch pos head d_head"]:
    z = edit(rearrange(envoy.input, "... (h d) -> ... h d", h=n_heads), layer)
    envoy.input = rearrange(z, "... h d -> ... (h d)")
    return z


def apply_edit(model: Envoy, edit: JoLAEdit,
               targets: EditTargets | None = None) -> dict[int, Float[Tensor, "batch pos head d_head"]]:
    """Inside a trace body: edit the next forward pass; returns each edited layer's edited z.

    Call it before reading any later module of that pass (nnsight serves values in execution order).
    The returned tensors are live trace values: ``.save()`` the ones you want after the block.
    In ``with model.generate(...) as tracer``, ``for _ in tracer.all(): apply_edit(model, edit)`` edits
    every step (nnsight then ends the block at the loop, with a warning; see :func:`apply_edit_every_step`).
    """
    targets = edit_targets(model, edit) if targets is None else targets
    return {layer: _edit_input(envoy, edit, layer, n_heads, d_head)
            for layer, (envoy, n_heads, d_head) in targets.items()}


def apply_edit_every_step(model: Envoy, edit: JoLAEdit, targets: EditTargets | None = None) -> None:
    """Inside a trace or generate body: edit every forward pass of the run, ending quietly with it.

    Nothing after this call runs in the same block (the loop lasts as long as the model runs), so make it
    the last statement of its invoke, e.g. read ``tracer.result`` in a second, empty ``tracer.invoke()``.
    """
    targets = edit_targets(model, edit) if targets is None else targets
    steps = 0
    try:
        for _ in _compat.every_step():
            apply_edit(model, edit, targets)
            steps += 1
    except _compat.OutOfOrderError:
        # nnsight throws this into the open loop once the run is over; it is a real error only if the
        # very first pass was missed (the call came after a later module had already been read).
        if steps == 0:
            raise


def attach(model: Envoy, edit: JoLAEdit, *, stack: bool = False) -> Attachment:
    """Store ``edit`` on ``model`` as an nnsight edit, replayed on every trace/generate step until removed."""
    targets = edit_targets(model, edit, stack=stack)
    remove = _compat.store_nnsight_edit(model, lambda: apply_edit_every_step(model, edit, targets))
    logger.debug("attached a JoLA edit to %d layers of %s", len(targets), type(model).__name__)
    return Attachment([remove], backend="nnsight", edit=edit, hf_model=unwrap_hf_model(model))


def forward(model: Envoy, edit: JoLAEdit, input_ids: Int[Tensor, "batch pos"],
            attention_mask: Int[Tensor, "batch pos"] | None = None, *,
            stack: bool = False) -> Float[Tensor, "batch pos vocab"]:
    """Logits of ``model`` with ``edit`` applied inside one ``model.trace`` (gradients flow to the edit).

    Positions count from the first column, as in a plain Hugging Face forward (the hf and
    tl routes), also for left-padded rows, which nnsight would otherwise renumber.
    """
    targets = edit_targets(model, edit, stack=stack)
    inputs = {}
    if attention_mask is not None:
        inputs["attention_mask"] = attention_mask
        if not bool(attention_mask.all()):
            inputs["position_ids"] = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    with model.trace(input_ids, **inputs):
        apply_edit(model, edit, targets)
        logits = model.output.logits.save()
    return logits


__all__ = ["apply_edit", "apply_edit_every_step", "attach", "edit_targets", "forward"]
