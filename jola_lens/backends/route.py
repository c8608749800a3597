"""One model seen through one route (hf, tl = TransformerLens bridge, nnsight): forward and generate.

Training and evaluation both run a model through a :class:`Route`; neither imports the other."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformers import GenerationConfig

from jola_lens.edit import JoLAEdit
from jola_lens.methods.base import Adapter

ROUTES = ("hf", "tl", "nnsight")


@dataclass
class Route:
    """``model`` is what edits attach to (the HF model, a TransformerBridge or an nnsight wrapper);
    ``hf_model`` is the Hugging Face model inside it. Without an edit every route runs ``hf_model``."""

    name: str
    model: Any
    hf_model: nn.Module
    module: ModuleType

    @property
    def device(self) -> torch.device:
        return next(self.hf_model.parameters()).device

    def forward(self, edit: JoLAEdit | Adapter | None, input_ids: Int[Tensor, "batch pos"],
                attention_mask: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
        """Logits with ``edit`` (a JoLA edit, or any method's adapter) applied (gradients reach the edit)."""
        if isinstance(edit, Adapter):
            return edit.forward(input_ids, attention_mask)
        if edit is None:
            return self.hf_model(input_ids=input_ids, attention_mask=attention_mask).logits
        return self.module.forward(self.model, edit, input_ids, attention_mask)

    def generate(self, edit: JoLAEdit | Adapter | None, input_ids: Int[Tensor, "batch pos"],
                 attention_mask: Int[Tensor, "batch pos"], config: GenerationConfig) -> Int[Tensor, "batch total"]:
        """Prompt + generated ids, with ``edit`` (a JoLA edit or an adapter) applied at every decoding step."""
        if isinstance(edit, Adapter):
            return edit.generate(input_ids, attention_mask, config)
        with edit.attached(self.model) if edit is not None else nullcontext():
            if self.name == "nnsight" and edit is not None:
                return _nnsight_generate(self.model, input_ids, attention_mask, config)
            return self.hf_model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)


def _nnsight_generate(model: Any, input_ids: Tensor, attention_mask: Tensor, config: GenerationConfig) -> Tensor:
    with model.generate(input_ids, attention_mask=attention_mask, generation_config=config) as tracer:
        result = tracer.result.save()
    return result


def make_route(name: str, hf_model: nn.Module, tokenizer: Any) -> Route:
    """Wrap a loaded (frozen) HF model for ``name``: 'hf', 'tl' (TransformerBridge) or 'nnsight'."""
    if name == "hf":
        from jola_lens.backends import hf as module

        return Route(name, hf_model, hf_model, module)
    if name == "tl":
        from jola_lens.backends import transformer_lens as module
        from jola_lens.models import boot_bridge

        return Route(name, boot_bridge(hf_model, tokenizer), hf_model, module)
    if name == "nnsight":
        from nnsight.modeling.transformers import TransformersModel

        from jola_lens.backends import nnsight as module

        return Route(name, TransformersModel(hf_model, tokenizer=tokenizer), hf_model, module)
    raise ValueError(f"unknown route {name!r}; choose one of {ROUTES}")
