"""Adapter: the one interface the trainer and the evaluator use, whatever the method.

An adapter is one trained (or trainable) change of one frozen model on one route (a
:class:`~jola_lens.backends.route.Route`): JoLA's gated head edits, a peft LoRA / IA3 adapter, or a LoFiT stage.
Outside :meth:`Adapter.attached` and :meth:`Adapter.forward` the model runs unchanged.

A saved adapter is a folder with ``method.json`` (method, settings, trainable parameters) beside the method's own
files (``jola_config.json`` + ``jola_edit.safetensors``, or peft's ``adapter_config.json`` +
``adapter_model.safetensors``).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformers import GenerationConfig

from jola_lens import atomic

if TYPE_CHECKING:
    from jola_lens.backends.route import Route
    from jola_lens.edit import JoLAEdit

METHOD_FILE = "method.json"
FORMAT_VERSION = 1


class Adapter(ABC):
    """A method's trainable parameters bound to one model and route."""

    method: str
    """The method name written to method.json (jola, lora, ia3, lofit_scaling, lofit)."""

    def __init__(self, backend: Route, settings: dict[str, Any]) -> None:
        self.backend = backend
        self.settings = dict(settings)
        self.training = False

    # ---- parameters --------------------------------------------------------------------------------
    @abstractmethod
    def named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """The trainable parameters only (never the frozen model's)."""

    def parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self.named_parameters()]

    def parameter_groups(self, lr: float, gate_lr: float) -> list[dict[str, Any]]:
        """AdamW parameter groups; the first group's lr is the one logged as ``lr``."""
        return [{"params": self.parameters(), "lr": lr}]

    def num_trainable_parameters(self) -> int:
        """Parameters the method really trains (a head-restricted edit counts its heads only)."""
        return sum(p.numel() for p in self.parameters())

    def state_dict(self) -> dict[str, Tensor]:
        return {name: p.detach() for name, p in self.named_parameters()}

    @torch.no_grad()
    def load_state_dict(self, tensors: dict[str, Tensor]) -> None:
        """Copy ``tensors`` (as :meth:`state_dict` returns them) into the parameters, checking names and shapes."""
        params = dict(self.named_parameters())
        expected = {name: tuple(p.shape) for name, p in params.items()}
        found = {name: tuple(t.shape) for name, t in tensors.items()}
        if expected != found:
            raise ValueError(f"these {self.method} tensors do not fit this adapter: expected {expected}, "
                             f"got {found}")
        for name, p in params.items():
            p.copy_(tensors[name].to(p))

    def to(self, device: torch.device | str) -> Adapter:
        return self

    # ---- modes, loss ---------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Adapter:
        """Training mode of the method's own stochastic parts (gates, adapter dropout); the model stays in eval."""
        self.training = mode
        return self

    def eval(self) -> Adapter:
        return self.train(False)

    def penalty(self, lam: float) -> Float[Tensor, ""]:
        """The method's regularizer for penalty mix ``lam`` (0 for methods without one)."""
        return torch.zeros((), device=self.backend.device)

    def head_gates(self) -> JoLAEdit | None:
        """The JoLA edit whose Hard Concrete gates select heads, or None (LoRA, IA3, LoFiT have no head gates)."""
        return None

    def head_edit(self) -> JoLAEdit | None:
        """The JoLA edit this adapter applies, if it is one (JoLA, LoFiT), for head counts and analysis."""
        return None

    # ---- running the model ---------------------------------------------------------------------------------
    @abstractmethod
    def attached(self) -> AbstractContextManager[Any]:
        """``with adapter.attached(): ...``: the route's model runs adapted inside the block."""

    def forward(self, input_ids: Int[Tensor, "batch pos"],
                attention_mask: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
        """Logits of the adapted model (gradients reach the adapter)."""
        with self.attached():
            return self.backend.hf_model(input_ids=input_ids, attention_mask=attention_mask).logits

    def generate(self, input_ids: Int[Tensor, "batch pos"], attention_mask: Int[Tensor, "batch pos"],
                 config: GenerationConfig) -> Int[Tensor, "batch total"]:
        """Prompt + generated ids of the adapted model."""
        with self.attached():
            return self.backend.hf_model.generate(input_ids=input_ids, attention_mask=attention_mask,
                                                  generation_config=config)

    def remove(self) -> None:
        """Take the adapter out of the model for good (peft's injected layers); JoLA edits hook only when used."""

    # ---- files -----------------------------------------------------------------------------------------
    @abstractmethod
    def save_weights(self, directory: Path) -> None:
        """Write the method's own files into ``directory`` (each atomically)."""

    @abstractmethod
    def read_state(self, directory: Path) -> dict[str, Tensor]:
        """The tensors saved in ``directory``, keyed as :meth:`state_dict` keys them (this adapter unchanged)."""

    def save(self, directory: str | os.PathLike) -> None:
        """Write the adapter into ``directory``: the method's files, then ``method.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.save_weights(directory)
        atomic.write_json(directory / METHOD_FILE, self.record())

    def record(self) -> dict[str, Any]:
        """``method.json``: what a reader needs to know which method and settings made these files."""
        settings = {k: list(v) if isinstance(v, tuple) else v for k, v in self.settings.items()}
        return {"format_version": FORMAT_VERSION, "method": self.method, "settings": settings,
                "trainable_parameters": self.num_trainable_parameters()}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.settings.items())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


def read_method_record(directory: str | os.PathLike) -> dict[str, Any] | None:
    """``method.json`` of a saved adapter, or None when the folder has none (a JoLA edit saved before methods)."""
    path = Path(directory) / METHOD_FILE
    if not path.is_file():
        return None
    return atomic.read_versioned_json(path, FORMAT_VERSION, damaged="the saved adapter is damaged")
