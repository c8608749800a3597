"""One record per model family: where it keeps its decoder layers, each layer's attention output projection,
the final norm (and whether it scales by ``w`` or, like Gemma, by ``1 + w``) and the unembedding.

JoLA edits the input of the attention output projection, viewed as [batch, pos, heads, d_head]. The hf and nnsight
routes hook the projection these paths name, merge folds the edit into its weights, and the logit lens reads the
final norm and unembedding from here. A family that is not listed is added with :func:`register_architecture`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

from jaxtyping import Float
from torch import Tensor, nn
from transformers.pytorch_utils import Conv1D

from jola_lens.backends import _compat

_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class UnsupportedModelError(ValueError):
    """The backend cannot find the per-head attention outputs of this model."""


@dataclass(frozen=True)
class Architecture:
    """Where one model family keeps what JoLA edits and reads: dotted attribute paths from the causal-LM model
    (``layers_path``, ``final_norm_path``, ``lm_head_path``) and, inside one decoder layer, ``out_proj_path``.

    ``norm_offset``: the final norm multiplies by ``norm_offset + weight`` (0 for most families, 1 for Gemma's
    ``1 + w``). ``final_norm_path`` None: the logit lens reads edits through the unembedding alone.
    ``tl_adapter``: a TransformerLens ``ArchitectureAdapter`` class, for a family TransformerLens does not know;
    :func:`jola_lens.boot_bridge` registers it for the model's class before booting the bridge.
    """

    model_type: str
    layers_path: str
    out_proj_path: str
    final_norm_path: str | None = None
    norm_offset: float = 0.0
    lm_head_path: str = "lm_head"
    tl_adapter: type | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model_type, str) or not self.model_type:
            raise ValueError(f"Architecture.model_type must be a non-empty string, got {self.model_type!r}")
        for name in ("layers_path", "out_proj_path", "final_norm_path", "lm_head_path"):
            value = getattr(self, name)
            if value is None and name == "final_norm_path":
                continue
            if not isinstance(value, str) or not _PATH.match(value):
                raise ValueError(f"Architecture.{name} must be a dotted attribute path, got {value!r}")
        if self.norm_offset not in (0.0, 1.0):
            raise ValueError(f"Architecture.norm_offset must be 0.0 (w) or 1.0 (Gemma's 1 + w), got {self.norm_offset}")
        if self.tl_adapter is not None and not isinstance(self.tl_adapter, type):
            raise ValueError(f"Architecture.tl_adapter must be a TransformerLens ArchitectureAdapter class, got "
                             f"{self.tl_adapter!r}")

    def layers(self, hf_model: nn.Module) -> list[nn.Module]:
        return list(_get(hf_model, self.layers_path))

    def final_norm(self, hf_model: nn.Module) -> nn.Module | None:
        return None if self.final_norm_path is None else _compat.wrapped_module(_get(hf_model, self.final_norm_path))

    def final_norm_scale(self, hf_model: nn.Module) -> Float[Tensor, " d_model"] | None:
        """The final norm's elementwise scale (``norm_offset + weight``), or None where it has no weight."""
        norm = self.final_norm(hf_model)
        weight = getattr(norm, "weight", None)
        return None if weight is None else self.norm_offset + weight.detach().float()

    def lm_head(self, hf_model: nn.Module) -> nn.Module:
        return _compat.wrapped_module(_get(hf_model, self.lm_head_path))


def _llama_like(model_type: str, norm_offset: float = 0.0) -> Architecture:
    return Architecture(model_type, "model.layers", "self_attn.o_proj", "model.norm", norm_offset)


ARCHITECTURES: dict[str, Architecture] = {
    **{model_type: _llama_like(model_type) for model_type in (
        "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "olmo", "olmo2", "phi3",
        "smollm3", "granite", "stablelm", "cohere")},
    **{model_type: _llama_like(model_type, norm_offset=1.0) for model_type in ("gemma", "gemma2", "gemma3_text")},
    "gpt2": Architecture("gpt2", "transformer.h", "attn.c_proj", "transformer.ln_f"),
    "gpt_neox": Architecture("gpt_neox", "gpt_neox.layers", "attention.dense", "gpt_neox.final_layer_norm",
                             lm_head_path="embed_out"),
    "phi": Architecture("phi", "model.layers", "self_attn.dense", "model.final_layernorm"),
    "opt": Architecture("opt", "model.decoder.layers", "self_attn.out_proj", "model.decoder.final_layer_norm"),
}


def register_architecture(model_type: str | Architecture, layers_path: str | None = None,
                          out_proj_path: str | None = None, **record_fields: Any) -> Architecture:
    """Teach jola_lens a model family, for every route, merge and the logit lens; returns the record. E.g.
    ``register_architecture("my_arch", "model.layers", "self_attn.o_proj", final_norm_path="model.norm")``,
    or pass an :class:`Architecture`. A later registration of the same ``model_type`` replaces the earlier."""
    if isinstance(model_type, Architecture):
        record = replace(model_type, **record_fields) if record_fields else model_type
    elif isinstance(model_type, str):
        known = {f.name for f in fields(Architecture)}
        unknown = sorted(set(record_fields) - known)
        if unknown:
            raise TypeError(f"register_architecture got unknown fields {unknown}; known: {sorted(known)}")
        record = Architecture(model_type, layers_path, out_proj_path, **record_fields)
    else:
        raise TypeError(f"register_architecture takes an Architecture or a model_type string, got "
                        f"{type(model_type).__name__}")
    ARCHITECTURES[record.model_type] = record
    return record


@dataclass(frozen=True)
class HeadSites:
    """The output projections of one model, with the per-head shape of their input."""

    architecture: Architecture
    n_layers: int
    n_heads: int
    d_head: int
    out_projs: tuple[nn.Module, ...]
    """The modules called with the per-head outputs (hook these)."""
    weights: tuple[nn.Module, ...]
    """The Linear / Conv1D modules holding each projection's weight and bias (merge into these)."""

    @property
    def model_type(self) -> str:
        return self.architecture.model_type

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n_layers, self.n_heads, self.d_head)

    def out_proj_path(self, layer: int) -> str:
        """Dotted path of layer ``layer``'s output projection from the causal-LM model."""
        return f"{self.architecture.layers_path}.{layer}.{self.architecture.out_proj_path}"


def unwrap_hf_model(model: object) -> nn.Module:
    """The Hugging Face model inside a TransformerBridge or an nnsight wrapper (or the model itself)."""
    inner = _compat.hf_model_inside(model)
    if isinstance(inner, nn.Module) and hasattr(inner, "config"):
        return inner
    if isinstance(model, nn.Module) and hasattr(model, "config"):
        return model
    raise UnsupportedModelError(
        f"{type(model).__name__} is not a Hugging Face model, a TransformerLens TransformerBridge or an nnsight "
        "model wrapping one"
    )


def _get(root: object, path: str) -> Any:
    for part in path.split("."):
        root = getattr(root, part)
    return root


def architecture_of(model: object) -> Architecture:
    """The record of ``model``'s family (a HF model, a TransformerBridge or an nnsight model)."""
    hf_model = unwrap_hf_model(model)
    model_type = getattr(hf_model.config, "model_type", type(hf_model).__name__)
    record = ARCHITECTURES.get(model_type)
    if record is None:
        raise UnsupportedModelError(
            f"jola_lens does not know where {type(hf_model).__name__} (model_type={model_type!r}) keeps its attention "
            f"heads. Supported model types: {', '.join(sorted(ARCHITECTURES))}. Add yours with "
            f"jola_lens.register_architecture({model_type!r}, layers_path='model.layers', "
            "out_proj_path='self_attn.o_proj', final_norm_path='model.norm') using the attribute paths of your model."
        )
    return record


def find_head_sites(model: object) -> HeadSites:
    """Locate every layer's attention output projection and the (heads, d_head) split of its input."""
    hf_model = unwrap_hf_model(model)
    record = architecture_of(hf_model)
    config = hf_model.config
    try:
        out_projs = tuple(_get(layer, record.out_proj_path) for layer in record.layers(hf_model))
        weights_holders = tuple(projection_module(proj) for proj in out_projs)
    except AttributeError as error:
        raise UnsupportedModelError(
            f"{type(hf_model).__name__} (model_type={record.model_type!r}) has no '{record.layers_path}[i]."
            f"{record.out_proj_path}': {error}. Fix the mapping with jola_lens.register_architecture."
        ) from error
    n_heads = getattr(config, "num_attention_heads", None) or config.n_head
    hidden = getattr(config, "hidden_size", None) or config.n_embd
    d_head = getattr(config, "head_dim", None) or hidden // n_heads
    in_features = out_in_weight(weights_holders[0]).shape[1]
    if in_features != n_heads * d_head:
        raise UnsupportedModelError(
            f"{type(hf_model).__name__}: output projection takes {in_features} inputs, not heads x d_head = "
            f"{n_heads} x {d_head}; fix the mapping with jola_lens.register_architecture"
        )
    return HeadSites(record, len(out_projs), int(n_heads), int(d_head), out_projs, weights_holders)


def projection_module(module: nn.Module) -> nn.Module:
    """The Linear / Conv1D holding the weights (a booted TransformerBridge wraps some in a LinearBridge)."""
    return _compat.wrapped_module(module)


def out_in_weight(module: nn.Module) -> Float[Tensor, "d_out d_in"]:
    """A projection's weight as [out, in] (a view: in-place changes reach the module). ``nn.Linear`` stores it so;
    GPT-2's ``transformers.pytorch_utils.Conv1D`` stores [in, out]."""
    if isinstance(module, nn.Linear):
        return module.weight
    if isinstance(module, Conv1D):
        return module.weight.t()
    raise UnsupportedModelError(f"unsupported output projection type {type(module).__name__} (jola_lens merges into "
                                "torch.nn.Linear and transformers' Conv1D)")
