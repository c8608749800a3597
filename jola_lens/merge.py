"""Fold a deterministic JoLA edit into the attention output projections, safely and on the record.

Per head h of an edited layer, z' = s_h * z_h + t_h is affine, so for y = W z + b:
W[:, head h] <- W[:, head h] * s_h  and  b <- b + sum_h W[:, head h] t_h.

Each merge is recorded in the model's config (``config.jola_merged``: fingerprint, layers, kinds), which
``save_pretrained`` writes and ``from_pretrained`` reads back, so the same edit is never merged, or attached,
twice (see :mod:`jola_lens.backends.base`).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
from einops import einsum, rearrange
from torch import Tensor, nn

from jola_lens.architectures import find_head_sites, out_in_weight, projection_module, unwrap_hf_model
from jola_lens.backends import _compat
from jola_lens.backends.base import MERGED_KEY, AlreadyAppliedError, attachments, merged_records
from jola_lens.edit import JoLAEdit, NonFiniteEditError

logger = logging.getLogger(__name__)


def merged_edits(model: object) -> list[dict[str, Any]]:
    """The merges recorded in ``model``'s config, oldest first: ``{"fingerprint", "layers", "kinds", "heads",
    "base_model"}`` each (empty when nothing was merged)."""
    return merged_records(unwrap_hf_model(model))


@torch.no_grad()
def merge_edit(model: nn.Module, edit: JoLAEdit, *, safe_merge: bool = True) -> nn.Module:
    """Fold ``edit`` (its evaluation gates) into ``model``'s weights and return a plain HF model with no hooks.

    A plain HF model is changed in place and returned. A model that a TransformerBridge has wrapped (or the bridge
    itself) is first copied into a fresh plain model of the same class, so the result saves like any checkpoint.

    Refused (:class:`~jola_lens.backends.base.AlreadyAppliedError`): an edit already merged into ``model`` (by its
    fingerprint in ``config.jola_merged``) and an edit attached to it. ``safe_merge`` (default): refuse an edit whose
    parameters hold NaN/inf, and compute every merged weight first, refusing (with ``model`` untouched) if any is
    not finite (e.g. a float16 overflow); this holds a copy of the edited projections' weights meanwhile.

    Where an output projection has no bias and the edit adds a shift, a bias is added; for configs with an
    ``attention_bias`` switch (Llama, Qwen3, Gemma, ...) the switch is turned on and zero biases are given to
    the q/k/v projections, so the merged model saves and reloads with stock ``transformers``.
    """
    hf_model = unwrap_hf_model(model)
    fingerprint = edit.fingerprint()
    bridged = _compat.is_bridged(hf_model)
    _check_not_applied(hf_model, edit, fingerprint, attached_counts=not bridged)
    if safe_merge:
        edit.check_finite("merge", " (merge_edit(..., safe_merge=False) merges it as it is)")
    if bridged:
        hf_model = plain_copy(hf_model)
    sites = find_head_sites(hf_model)
    edit.check_fits(sites.shape, type(hf_model).__name__)
    needs_bias, pending = False, []
    for layer in edit.config.edited_layers:
        proj = sites.weights[layer]
        weight = out_in_weight(proj)
        new_weight, bias_delta = _merged_terms(weight, *edit.affine_terms(layer), sites.n_heads)
        if safe_merge:
            _check_finite(layer, proj, new_weight, bias_delta)
            pending.append((proj, weight, new_weight, bias_delta))
        else:
            needs_bias |= _write(proj, weight, new_weight, bias_delta)
    for update in pending:  # all checked: now write
        needs_bias |= _write(*update)
    if needs_bias:
        _declare_output_bias(hf_model, sites.n_layers)
    _record(hf_model, edit, fingerprint)
    return hf_model


def _merged_terms(weight: Tensor, scale: Tensor, shift: Tensor, n_heads: int) -> tuple[Tensor, Tensor | None]:
    """The scaled [out, in] weight and the bias change (None where the edit adds no shift)."""
    per_head = rearrange(weight, "o (h d) -> o h d", h=n_heads)
    new_weight = rearrange(per_head * scale.to(weight), "o h d -> o (h d)")
    if not bool(shift.any()):
        return new_weight, None
    return new_weight, einsum(per_head, shift.to(weight), "o h d, h d -> o")


def _check_finite(layer: int, proj: nn.Module, new_weight: Tensor, bias_delta: Tensor | None) -> None:
    new_bias = bias_delta if proj.bias is None or bias_delta is None else proj.bias + bias_delta
    if not bool(torch.isfinite(new_weight).all()) or (new_bias is not None and not bool(torch.isfinite(new_bias).all())):
        raise NonFiniteEditError(
            f"refusing to merge: layer {layer}'s merged output projection would hold values that are not finite in "
            f"{new_weight.dtype} (the edit scales or shifts beyond its range); the model is unchanged. Merge into a "
            "float32 copy, or attach the edit instead")


def _write(proj: nn.Module, weight: Tensor, new_weight: Tensor, bias_delta: Tensor | None) -> bool:
    """Write one layer's merged terms; True where a bias had to be added."""
    weight.copy_(new_weight)
    if bias_delta is None:
        return False
    added = proj.bias is None
    if added:
        proj.bias = nn.Parameter(torch.zeros_like(bias_delta), requires_grad=False)
    proj.bias.add_(bias_delta)
    return added


def _check_not_applied(hf_model: nn.Module, edit: JoLAEdit, fingerprint: str, *, attached_counts: bool) -> None:
    name = type(hf_model).__name__
    if any(record.get("fingerprint") == fingerprint for record in merged_records(hf_model)):
        raise AlreadyAppliedError(
            f"this JoLA edit is already merged into {name} (fingerprint {fingerprint[:12]}, recorded in "
            f"config.{MERGED_KEY}): merging it again would apply it twice. Use the merged model as it is, or merge "
            "into a fresh copy of the base model")
    if attached_counts and any(attachment.edit is edit for attachment in attachments(hf_model)):
        raise AlreadyAppliedError(
            f"this JoLA edit is attached to {name}: merging it as well would apply it twice; remove the attachment "
            "first (attachment.remove(), or merge outside the `with edit.attached(...)` block)")


def _record(hf_model: nn.Module, edit: JoLAEdit, fingerprint: str) -> None:
    config = edit.config
    heads = config.to_dict()["heads"]
    record = {"fingerprint": fingerprint, "layers": list(config.edited_layers), "kinds": list(config.edit_kinds),
              "heads": heads, "base_model": config.base_model}
    setattr(hf_model.config, MERGED_KEY, [*merged_records(hf_model), record])


def plain_copy(hf_model: nn.Module) -> nn.Module:
    """A fresh HF model of the same class, config (a copy) and weights, without the wrappers a TransformerBridge
    put in place."""
    state = _compat.plain_state_dict(hf_model)
    fresh = type(hf_model)(copy.deepcopy(hf_model.config)).to(next(hf_model.parameters()).dtype)
    wanted = fresh.state_dict().keys()
    missing = [key for key in wanted if key not in state]
    if missing:
        raise RuntimeError(f"cannot recover plain weights from the bridged model; missing {missing[:5]}")
    fresh.load_state_dict({key: state[key] for key in wanted})
    return fresh.eval().requires_grad_(False)


def _declare_output_bias(hf_model: nn.Module, n_layers: int) -> None:
    config = hf_model.config
    if not hasattr(config, "attention_bias"):
        logger.warning(
            "%s has no config switch for an attention output bias: the merged model is exact in memory, but a "
            "checkpoint saved from it reloads without the additive edit. Save the edit with save_pretrained and "
            "attach it instead, or merge an edit with additive=False.", type(hf_model).__name__)
        return
    config.attention_bias = True
    sites = find_head_sites(hf_model)
    for layer in range(n_layers):
        proj = sites.weights[layer]
        attention = _parent_of(hf_model, sites.out_projs[layer])
        siblings = (getattr(attention, name, None) for name in ("q_proj", "k_proj", "v_proj"))
        for sibling in (proj, *(projection_module(s) for s in siblings if s is not None)):
            if isinstance(sibling, nn.Linear) and sibling.bias is None:
                sibling.bias = nn.Parameter(torch.zeros(sibling.out_features, dtype=sibling.weight.dtype,
                                                        device=sibling.weight.device), requires_grad=False)


def _parent_of(root: nn.Module, child: nn.Module) -> nn.Module:
    for module in root.modules():
        if any(c is child for c in module.children()):
            return module
    raise LookupError("module not found in model")
