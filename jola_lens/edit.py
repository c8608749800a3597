"""JoLAEdit: the gated additive and multiplicative head edits, held as whole tensors.

    z'[l, h] = (1 + g_m[l, h] * m[l, h]) * z[l, h] + g_a[l, h] * a[l, h]

Backends only find the edit sites and call ``edit(z, layer)``; all the edit math lives here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn

from jola_lens import gates as hc
from jola_lens.config import EDIT_KINDS, JoLAConfig
from jola_lens.heads import head_count, head_mask

if TYPE_CHECKING:
    from jola_lens.backends.base import Attachment


class EditShapeError(ValueError):
    """An edit was used with a model, or a z, of another shape."""


class LayerNotEditedError(LookupError):
    """``edit(z, layer)`` was called for a layer the edit does not cover."""


class NonFiniteEditError(ValueError):
    """An edit's parameters (or what merging it would write) hold NaN or inf."""


def non_finite_report(tensors: Mapping[str, Tensor]) -> list[str]:
    """One line per tensor holding NaN/inf: its name, how many, and the index of the first."""
    report = []
    for name, tensor in tensors.items():
        bad = ~torch.isfinite(tensor.detach())
        if bool(bad.any()):
            first = tuple(int(i) for i in bad.nonzero()[0])
            report.append(f"parameter {name!r} holds {int(bad.sum())} NaN/inf values (first at {first})")
    return report


class JoLAEdit(nn.Module):
    """Parameters of one JoLA edit.

    ``additive`` / ``multiplicative``: [edited layers, heads, d_head] vectors (N(0, init_std));
    ``additive_gate_logits`` / ``multiplicative_gate_logits``: [edited layers, heads] Hard Concrete
    logits (uniform in +-sqrt(6 / (1 + heads)), or all ``config.gate_init``). Gates are sampled in training mode,
    deterministic in eval.

    Two run-time switches (not saved with the edit; the trainer sets them from ``TrainConfig``): training-mode gates
    draw their Hard-Concrete noise from ``noise_generator`` (None: torch's global random stream, as the spec does),
    and ``sample_training_gates = False`` trains with the deterministic evaluation gates (an ablation of the spec).
    """

    def __init__(self, config: JoLAConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        self._row = {layer: row for row, layer in enumerate(config.edited_layers)}
        self.noise_generator: torch.Generator | None = None
        self.sample_training_gates = True
        n_rows, n_heads, d_head = len(self._row), config.n_heads, config.d_head
        bound = math.sqrt(6.0 / (1 + n_heads))
        for kind in config.edit_kinds:
            vector = torch.randn(n_rows, n_heads, d_head, generator=generator) * config.init_std
            self.register_parameter(kind, nn.Parameter(vector))
            if config.gated:
                logits = ((torch.rand(n_rows, n_heads, generator=generator) * 2 - 1) * bound
                          if config.gate_init is None else torch.full((n_rows, n_heads), float(config.gate_init)))
                self.register_parameter(f"{kind}_gate_logits", nn.Parameter(logits))
            if config.heads is not None and kind in config.heads:
                mask = head_mask(config.heads[kind], config.edited_layers, n_heads)
                self.register_buffer(f"{kind}_head_mask", mask, persistent=False)

    @classmethod
    def for_model(cls, model: object, *, seed: int | None = None, **config_fields: object) -> JoLAEdit:
        """An edit sized for ``model`` (a HF model, a TransformerBridge or an nnsight model)."""
        from jola_lens.architectures import find_head_sites, unwrap_hf_model

        sites = find_head_sites(model)
        hf_model = unwrap_hf_model(model)
        config_fields.setdefault("base_model", getattr(hf_model.config, "_name_or_path", None) or None)
        config_fields.setdefault("architecture", sites.model_type)
        config = JoLAConfig(n_layers=sites.n_layers, n_heads=sites.n_heads, d_head=sites.d_head, **config_fields)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        return cls(config, generator=generator)

    # ---- gates ---------------------------------------------------------------------------------
    def gate_logits(self, kind: str) -> Float[Tensor, "layer head"] | None:
        return getattr(self, f"{kind}_gate_logits", None)

    def head_mask(self, kind: str) -> Bool[Tensor, "layer head"] | None:
        """The heads ``kind`` may edit (``JoLAConfig.heads``), or None when it may edit every head."""
        return getattr(self, f"{kind}_head_mask", None)

    def _layer_gate(self, kind: str, row: int) -> Float[Tensor, " head"] | None:
        logits = self.gate_logits(kind)
        if logits is None:
            return None
        c = self.config
        if self.training and self.sample_training_gates:
            return hc.sample_gates(logits[row], c.beta, c.gamma, c.zeta, c.eps, generator=self.noise_generator)
        return hc.deterministic_gates(logits[row], c.gamma, c.zeta)

    def gates(self) -> dict[str, Float[Tensor, "layer head"]]:
        """Deterministic (evaluation) gate values per edit kind; ones where ungated, zeros outside ``config.heads``."""
        c = self.config
        out = {}
        for kind in c.edit_kinds:
            logits = self.gate_logits(kind)
            gate = (torch.ones(len(self._row), c.n_heads) if logits is None
                    else hc.deterministic_gates(logits.detach(), c.gamma, c.zeta))
            out[kind] = self._masked(kind, gate)
        return out

    def prob_nonzero(self) -> dict[str, Float[Tensor, "layer head"]]:
        """P(g != 0) per edit kind (ones where the edit is ungated, zeros outside ``config.heads``)."""
        c = self.config
        out = {}
        for kind in c.edit_kinds:
            logits = self.gate_logits(kind)
            p = (torch.ones(len(self._row), c.n_heads) if logits is None
                 else hc.prob_nonzero(logits.detach(), c.beta, c.gamma, c.zeta))
            out[kind] = self._masked(kind, p)
        return out

    def _masked(self, kind: str, values: Tensor) -> Tensor:
        mask = self.head_mask(kind)
        return values if mask is None else values * mask.to(values)

    def penalty(self, lam: float) -> Tensor:
        """The spec's expected-L0 gate penalty for mix ``lam`` (see :func:`jola_lens.gates.expected_l0_penalty`);
        heads outside ``config.heads`` cannot be selected and add nothing."""
        c = self.config
        probs = {kind: hc.prob_nonzero(logits, c.beta, c.gamma, c.zeta) for kind in c.edit_kinds
                 if (logits := self.gate_logits(kind)) is not None}
        masks = {kind: self.head_mask(kind) for kind in probs if self.head_mask(kind) is not None}
        return hc.expected_l0_penalty(probs, lam, len(self._row), c.n_heads, masks=masks)

    def selected_heads(self) -> dict[str, Tensor]:
        """Boolean [layer, head] masks of the heads each edit kind changes at evaluation (gate > 0)."""
        return {kind: gate > 0 for kind, gate in self.gates().items()}

    def pruned(self, keep: int | float) -> JoLAEdit:
        """A copy that edits only the ``keep`` heads (a number, or a share of the heads it may edit) per gated edit
        kind with the highest gate logits, i.e. the highest P(g != 0): the final pruning to a sparsity target of
        L0-gate training (as in CoFi, Xia et al. 2022), so that runs compare at equal sparsity. The other heads are
        left bit-exactly unedited through ``config.heads``; the kept heads keep their gates (one whose gate is 0
        stays closed). Parameters are copied; pruning a pruned edit to the same ``keep`` changes nothing."""
        c = self.config
        if not c.gated:
            raise ValueError("pruning keeps the heads with the highest gate logits, but this edit has no gates "
                             "(gated=False): restrict it with JoLAConfig.heads instead")
        heads = {}
        for kind in c.edit_kinds:
            logits = self.gate_logits(kind).detach().cpu()
            mask = self.head_mask(kind)
            allowed = torch.ones_like(logits, dtype=torch.bool) if mask is None else mask.cpu()
            n_keep = head_count(keep, int(allowed.sum()), f"keep ({kind} heads this edit may edit)")
            order = torch.argsort(logits.masked_fill(~allowed, -math.inf).flatten(), descending=True, stable=True)
            heads[kind] = [(c.edited_layers[int(i) // c.n_heads], int(i) % c.n_heads) for i in order[:n_keep]]
        copy = JoLAEdit(replace(c, heads=heads))
        copy.load_state_dict(self.state_dict())
        return copy.to(next(self.parameters()).device).train(self.training)

    # ---- the edit --------------------------------------------------------------------------------
    def edits_layer(self, layer: int) -> bool:
        return layer in self._row

    def _row_of(self, layer: int) -> int:
        row = self._row.get(layer)
        if row is None:
            raise LayerNotEditedError(f"this JoLA edit does not edit layer {layer}; it edits layers "
                                      f"{list(self.config.edited_layers)}")
        return row

    def forward(self, z: Float[Tensor, "batch pos head d_head"], layer: int) -> Float[Tensor, "batch pos head d_head"]:
        """Edit one layer's per-head attention outputs (gates sampled once per call in training)."""
        row = self._row_of(layer)
        c = self.config
        if z.dim() < 2 or z.shape[-2:] != (c.n_heads, c.d_head):
            raise EditShapeError(f"edit(z, layer={layer}) needs z of shape [..., heads={c.n_heads}, "
                                 f"d_head={c.d_head}], got {list(z.shape)}")
        if "multiplicative" in self._parameters:
            scale = self.multiplicative[row]
            gate = self._layer_gate("multiplicative", row)
            if gate is not None:
                scale = gate[:, None] * scale
            z = self._within_heads("multiplicative", row, z * (1 + scale.to(device=z.device, dtype=z.dtype)), z)
        if "additive" in self._parameters:
            shift = self.additive[row]
            gate = self._layer_gate("additive", row)
            if gate is not None:
                shift = gate[:, None] * shift
            z = self._within_heads("additive", row, z + shift.to(device=z.device, dtype=z.dtype), z)
        return z

    def _within_heads(self, kind: str, row: int, edited: Tensor, unedited: Tensor) -> Tensor:
        """``edited`` on the heads ``kind`` may edit, ``unedited`` bit for bit elsewhere."""
        mask = self.head_mask(kind)
        return edited if mask is None else torch.where(mask[row, :, None].to(edited.device), edited, unedited)

    @torch.no_grad()
    def affine_terms(self, layer: int) -> tuple[Float[Tensor, "head d_head"], Float[Tensor, "head d_head"]]:
        """The deterministic edit of one layer as ``z' = scale * z + shift`` (used by merge and the logit lens)."""
        row = self._row_of(layer)
        c = self.config
        scale = torch.ones(c.n_heads, c.d_head)
        shift = torch.zeros(c.n_heads, c.d_head)
        gates = self.gates()
        if "multiplicative" in self._parameters:
            scale = 1 + gates["multiplicative"][row, :, None] * self.multiplicative[row].detach().float()
        if "additive" in self._parameters:
            shift = gates["additive"][row, :, None] * self.additive[row].detach().float()
        return scale, shift

    def num_trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def check_fits(self, shape: tuple[int, int, int], model_name: str = "the model") -> None:
        """Raise :class:`EditShapeError` unless this edit was made for a model of ``shape``."""
        if tuple(shape) != self.config.shape:
            raise EditShapeError(
                f"this JoLA edit was made for a model with (layers, heads, d_head) = {self.config.shape}"
                f" (base model {self.config.base_model!r}), but {model_name} has {tuple(shape)}. "
                "Create a new edit with JoLAEdit.for_model(model), or load the model this edit was trained on."
            )

    def check_finite(self, action: str, hint: str = "") -> None:
        """Raise :class:`NonFiniteEditError` naming each parameter that holds NaN/inf (``action``: what is refused,
        ``hint``: a last sentence on what else to do)."""
        report = non_finite_report(dict(self.named_parameters()))
        if report:
            raise NonFiniteEditError(f"refusing to {action}: " + "; ".join(report) + ". The edit diverged in "
                                     "training: restore an earlier checkpoint, or train again with a lower learning "
                                     f"rate{hint}")

    def fingerprint(self) -> str:
        """SHA-256 of this edit's config and parameter values: what a merge records, so that it is not merged or
        attached twice (equal for copies and for a saved and reloaded edit)."""
        digest = hashlib.sha256()
        config = {key: value for key, value in self.config.to_dict().items() if key != "metadata"}
        digest.update(json.dumps(config, sort_keys=True).encode())
        for name, parameter in sorted(self.named_parameters()):
            values = parameter.detach().float().cpu().contiguous()
            digest.update(f"{name}{tuple(values.shape)}".encode())
            digest.update(values.numpy().tobytes())
        return digest.hexdigest()

    # ---- using it on a model -------------------------------------------------------------------
    def attach(self, model: object, *, stack: bool = False) -> Attachment:
        """Hook this edit into ``model`` (HF model, TransformerBridge or nnsight model) until ``.remove()``.

        Attaching an edit twice to one model is refused (a bridge or nnsight model and its HF model count as one);
        so is attaching a second, different edit unless ``stack=True`` (then both apply, this one after the other).
        """
        from jola_lens.backends import attach

        return attach(model, self, stack=stack)

    @contextmanager
    def attached(self, model: object, *, stack: bool = False) -> Iterator[JoLAEdit]:
        """``with edit.attached(model): ...`` edits every forward pass (and generated token) inside the block."""
        attachment = self.attach(model, stack=stack)
        try:
            yield self
        finally:
            attachment.remove()

    def fwd_hooks(self) -> list:
        """``(hook_name, fn)`` pairs for TransformerLens ``run_with_hooks`` / ``hooks(fwd_hooks=...)`` (not tracked:
        do not use them while the edit is attached to the same bridge)."""
        from jola_lens.backends.transformer_lens import fwd_hooks

        return fwd_hooks(self)

    # ---- files -----------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> None:
        from jola_lens.serialization import save_edit

        save_edit(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> JoLAEdit:
        from jola_lens.serialization import load_edit

        return load_edit(directory)

    def extra_repr(self) -> str:
        c = self.config
        return (f"layers={len(self._row)}/{c.n_layers}, heads={c.n_heads}, d_head={c.d_head}, "
                f"kinds={c.edit_kinds}, gated={c.gated}")


__all__ = ["EDIT_KINDS", "EditShapeError", "JoLAEdit", "LayerNotEditedError", "NonFiniteEditError", "non_finite_report"]
