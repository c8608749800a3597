"""JoLA (and its ablations) as an Adapter: a JoLAEdit applied through the run's route."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxtyping import Float, Int
from torch import Tensor, nn
from transformers import GenerationConfig

from jola_lens.edit import JoLAEdit
from jola_lens.methods.base import Adapter

if TYPE_CHECKING:
    from jola_lens.backends.route import Route

ForwardFn = Callable[[JoLAEdit, Tensor, Tensor], Tensor]


class JoLAAdapter(Adapter):
    """``edit`` applied through ``backend`` (hf hooks, TransformerLens hook_z or nnsight)."""

    method: str = "jola"

    def __init__(self, edit: JoLAEdit, backend: Route | None, settings: dict[str, Any] | None = None,
                 forward: ForwardFn | None = None) -> None:
        if backend is None and forward is None:
            raise ValueError("a JoLAAdapter needs the backend it runs on, or at least its forward function")
        super().__init__(backend, settings or {"ablation": "none"})
        self._forward = forward
        self.edit = edit.to(backend.device) if backend is not None else edit
        self.edit.eval()

    @classmethod
    def from_forward(cls, edit: JoLAEdit, forward: ForwardFn) -> JoLAAdapter:
        """An adapter that trains ``edit`` through ``forward(edit, input_ids, attention_mask)`` (no route: it can
        train and validate, not generate)."""
        return cls(edit, None, forward=forward)

    @classmethod
    def build(cls, backend: Route, *, seed: int | None, settings: dict[str, Any], **edit_fields: Any) -> JoLAAdapter:
        """A fresh edit sized for the backend's model (``edit_fields``: JoLAConfig fields)."""
        return cls(JoLAEdit.for_model(backend.hf_model, seed=seed, **edit_fields), backend, settings)

    @classmethod
    def load_weights(cls, directory: Path, backend: Route, settings: dict[str, Any]) -> JoLAAdapter:
        return cls(JoLAEdit.from_pretrained(directory), backend, settings)

    def named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        return ((name, p) for name, p in self.edit.named_parameters() if p.requires_grad)

    def parameter_groups(self, lr: float, gate_lr: float) -> list[dict[str, Any]]:
        """Edit vectors at ``lr``, gate logits (if any) at ``gate_lr``."""
        named = list(self.named_parameters())
        vectors = [p for name, p in named if not name.endswith("_gate_logits")]
        gates = [p for name, p in named if name.endswith("_gate_logits")]
        return [{"params": vectors, "lr": lr}] + ([{"params": gates, "lr": gate_lr}] if gates else [])

    def num_trainable_parameters(self) -> int:
        """Vector entries of the heads each kind may edit (all heads without ``JoLAConfig.heads``) plus gates."""
        c = self.edit.config
        total = 0
        for name, p in self.named_parameters():
            kind = name.removesuffix("_gate_logits")
            mask = self.edit.head_mask(kind)
            heads = int(mask.sum()) if mask is not None else p.shape[0] * p.shape[1]
            total += heads * (1 if name.endswith("_gate_logits") else c.d_head)
        return total

    def to(self, device: Any) -> JoLAAdapter:
        self.edit.to(device)
        return self

    def train(self, mode: bool = True) -> JoLAAdapter:
        super().train(mode)
        self.edit.train(mode)
        return self

    def penalty(self, lam: float) -> Float[Tensor, ""]:
        return self.edit.penalty(lam)

    def head_gates(self) -> JoLAEdit | None:
        return self.edit if self.edit.config.gated else None

    def head_edit(self) -> JoLAEdit:
        return self.edit

    def attached(self) -> AbstractContextManager[JoLAEdit]:
        return self.edit.attached(self.backend.model)

    def forward(self, input_ids: Int[Tensor, "batch pos"],
                attention_mask: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
        if self._forward is not None:
            return self._forward(self.edit, input_ids, attention_mask)
        return self.backend.forward(self.edit, input_ids, attention_mask)

    def generate(self, input_ids: Int[Tensor, "batch pos"], attention_mask: Int[Tensor, "batch pos"],
                 config: GenerationConfig) -> Int[Tensor, "batch total"]:
        return self.backend.generate(self.edit, input_ids, attention_mask, config)

    def save_weights(self, directory: Path) -> None:
        self.edit.save_pretrained(directory)

    def read_state(self, directory: Path) -> dict[str, Tensor]:
        return {name: p.detach() for name, p in JoLAEdit.from_pretrained(directory).named_parameters()}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self.edit.extra_repr()}"
