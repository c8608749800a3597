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

from jola_lens.backends.head import Positions, gathered_logits, logits_only_at
from jola_lens.edit import JoLAEdit
from jola_lens.methods.base import Adapter
from jola_lens.methods.jola import JoLAAdapter

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
                attention_mask: Int[Tensor, "batch pos"], *,
                logits_at: Positions | None = None) -> Float[Tensor, "... vocab"]:
        """Logits with ``edit`` (a JoLA edit, or any method's adapter) applied (gradients reach the edit):
        ``[batch, pos, vocab]``, or ``[n, vocab]`` at ``logits_at`` only (the head projects just those)."""
        with logits_only_at(self.hf_model, logits_at):
            if isinstance(edit, Adapter):
                logits = edit.forward(input_ids, attention_mask)
            elif edit is None:
                logits = self.hf_model(input_ids=input_ids, attention_mask=attention_mask).logits
            else:
                logits = self.module.forward(self.model, edit, input_ids, attention_mask)
        return logits if logits_at is None else gathered_logits(logits, logits_at)

    def run(self, edit: JoLAEdit | Adapter | None, input_ids: Int[Tensor, "batch pos"],
            attention_mask: Int[Tensor, "batch cached_and_pos"], *, logits_at: Positions | None = None,
            **model_kwargs: Any) -> tuple[Float[Tensor, "... vocab"], Any]:
        """(logits, the model's KV cache) of one forward with ``edit`` applied; ``model_kwargs`` go to the Hugging
        Face forward (``position_ids``, ``past_key_values``, ``use_cache``), the edit through this route's own
        mechanism (hf hooks, TransformerLens hook_z, an nnsight trace). Logits as in :meth:`forward`."""
        if isinstance(edit, JoLAAdapter):
            edit = edit.edit
        with logits_only_at(self.hf_model, logits_at):
            if isinstance(edit, Adapter):
                with edit.attached():
                    output = self.hf_model(input_ids=input_ids, attention_mask=attention_mask, **model_kwargs)
            elif edit is not None and self.name == "nnsight":
                with self.model.trace(input_ids, attention_mask=attention_mask, **model_kwargs):
                    self.module.apply_edit(self.model, edit)
                    output = self.model.output.save()
            else:
                with edit.attached(self.model) if edit is not None else nullcontext():
                    output = self.hf_model(input_ids=input_ids, attention_mask=attention_mask, **model_kwargs)
        logits = output.logits if logits_at is None else gathered_logits(output.logits, logits_at)
        return logits, getattr(output, "past_key_values", None)

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
