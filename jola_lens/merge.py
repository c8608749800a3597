"""Fold a deterministic JoLA edit into the attention output projections.

Per head h of an edited layer, z' = s_h * z_h + t_h is affine, so for y = W z + b:
W[:, head h] <- W[:, head h] * s_h  and  b <- b + sum_h W[:, head h] t_h.
"""

from __future__ import annotations

import logging
import os

import torch
from torch import nn

from jola_lens.architectures import find_head_sites, projection_module, unwrap_hf_model
from jola_lens.edit import JoLAEdit

logger = logging.getLogger(__name__)


@torch.no_grad()
def merge_edit(model: nn.Module, edit: JoLAEdit) -> nn.Module:
    """Fold ``edit`` (its evaluation gates) into ``model``'s weights and return a plain HF model with no hooks.

    A plain HF model is changed in place and returned. A model that a TransformerBridge has wrapped (or the bridge
    itself) is first copied into a fresh plain model of the same class, so the result saves like any checkpoint.

    Where an output projection has no bias and the edit adds a shift, a bias is added; for configs with an
    ``attention_bias`` switch (Llama, Qwen3, Gemma, ...) the switch is turned on and zero biases are given to
    the q/k/v projections, so the merged model saves and reloads with stock ``transformers``.
    """
    hf_model = unwrap_hf_model(model)
    if _is_bridged(hf_model):
        hf_model = plain_copy(hf_model)
    sites = find_head_sites(hf_model)
    edit.check_fits(sites.shape, type(hf_model).__name__)
    needs_bias = False
    for layer in edit.config.edited_layers:
        scale, shift = edit.affine_terms(layer)
        proj = sites.weights[layer]
        is_conv1d = type(proj).__name__ == "Conv1D"
        weight = proj.weight.t() if is_conv1d else proj.weight  # [out, in] view
        in_scale = scale.reshape(-1).to(weight)
        in_shift = shift.reshape(-1).to(weight)
        bias_delta = weight @ in_shift
        weight.mul_(in_scale)
        if bool(in_shift.any()):
            if proj.bias is None:
                proj.bias = nn.Parameter(torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device),
                                         requires_grad=False)
                needs_bias = True
            proj.bias.add_(bias_delta)
    if needs_bias:
        _declare_output_bias(hf_model, sites.n_layers)
    return hf_model


def _is_bridged(hf_model: nn.Module) -> bool:
    return any(type(module).__module__.startswith("transformer_lens") for module in hf_model.modules())


def plain_copy(hf_model: nn.Module) -> nn.Module:
    """A fresh HF model of the same class and weights, without the wrappers a TransformerBridge put in place."""
    state = {key.replace("._original_component", ""): value for key, value in hf_model.state_dict().items()}
    fresh = type(hf_model)(hf_model.config).to(next(hf_model.parameters()).dtype)
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


def save_merged(model: nn.Module, tokenizer: object | None, directory: str | os.PathLike) -> None:
    """Save a merged model (and tokenizer) as a plain ``transformers`` checkpoint."""
    hf_model = unwrap_hf_model(model)
    hf_model.save_pretrained(directory)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
