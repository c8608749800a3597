"""A sweep worker's loaded base model, kept for its next trial when that trial loads the same model.

A trial may leave the model changed (a LoRA adapter injected, TransformerLens switching attention to eager, hooks
left behind); :class:`ModelCache` compares the model's state with the state it had when loaded and loads afresh
when they differ, so a trial's result never depends on which trials ran before it in the same worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from torch import nn

logger = logging.getLogger(__name__)


def model_state(model: nn.Module, tokenizer: Any) -> tuple:
    """What a trial must find unchanged to reuse a model: modules and their hooks, parameter dtypes, shapes and
    trainability, train/eval modes, the config (attention implementation included) and the tokenizer's padding."""
    modules = tuple((name, type(m).__qualname__, m.training, len(m._forward_hooks), len(m._forward_pre_hooks),
                     len(m._backward_hooks)) for name, m in model.named_modules())
    parameters = tuple((name, str(p.dtype), tuple(p.shape), p.requires_grad) for name, p in model.named_parameters())
    config = getattr(model, "config", None)
    settings = (config.to_json_string(use_diff=False), getattr(config, "_attn_implementation", None)) \
        if config is not None else ()
    padding = (getattr(tokenizer, "padding_side", None), getattr(tokenizer, "pad_token", None), len(tokenizer))
    return modules, parameters, settings, padding


class ModelCache:
    """The last model a worker loaded (one at a time, to bound memory), with hit and load counts."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._loaded: tuple[nn.Module, Any] | None = None
        self._state: tuple | None = None
        self.loads = 0
        self.hits = 0

    def get(self, key: tuple, load: Callable[[], tuple[nn.Module, Any]]) -> tuple[nn.Module, Any]:
        if self._loaded is not None and key == self._key:
            if model_state(*self._loaded) == self._state:
                self.hits += 1
                logger.info("reusing the base model this worker loaded for an earlier trial")
                return self._loaded
            logger.info("an earlier trial changed the loaded base model; loading it again")
        self.clear()
        self._loaded = load()
        self._key, self._state = key, model_state(*self._loaded)
        self.loads += 1
        return self._loaded

    def clear(self) -> None:
        self._key = self._loaded = self._state = None
