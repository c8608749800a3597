"""Where each Hugging Face architecture keeps its attention heads' output projection.

JoLA edits the input of the attention output projection, viewed as [batch, pos, heads, d_head].
Each supported family is described by an :class:`AttentionLayout`; add one with
:func:`register_architecture` for a model type that is not listed.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


class UnsupportedModelError(ValueError):
    """The backend cannot find the per-head attention outputs of this model."""


@dataclass(frozen=True)
class AttentionLayout:
    """Dotted paths, from the causal-LM model, to the decoder layers and, inside one layer, to the output projection."""

    layers_path: str
    out_proj_path: str


_LLAMA_LIKE = AttentionLayout("model.layers", "self_attn.o_proj")
ARCHITECTURES: dict[str, AttentionLayout] = {
    **{
        model_type: _LLAMA_LIKE
        for model_type in (
            "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2",
            "gemma3_text", "olmo", "olmo2", "phi3", "smollm3", "granite", "stablelm", "cohere",
        )
    },
    "gpt2": AttentionLayout("transformer.h", "attn.c_proj"),
    "gpt_neox": AttentionLayout("gpt_neox.layers", "attention.dense"),
    "phi": AttentionLayout("model.layers", "self_attn.dense"),
    "opt": AttentionLayout("model.decoder.layers", "self_attn.out_proj"),
}


def register_architecture(model_type: str, layers_path: str, out_proj_path: str) -> None:
    """Teach jola_lens where a model type keeps its heads, e.g.
    ``register_architecture("my_arch", "model.layers", "self_attn.o_proj")``."""
    ARCHITECTURES[model_type] = AttentionLayout(layers_path, out_proj_path)


@dataclass(frozen=True)
class HeadSites:
    """The output projections of one model, with the per-head shape of their input."""

    model_type: str
    n_layers: int
    n_heads: int
    d_head: int
    out_projs: tuple[nn.Module, ...]
    """The modules called with the per-head outputs (hook these)."""
    weights: tuple[nn.Module, ...]
    """The Linear / Conv1D modules holding each projection's weight and bias (merge into these)."""

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n_layers, self.n_heads, self.d_head)


def unwrap_hf_model(model: object) -> nn.Module:
    """The Hugging Face model inside a TransformerBridge or an nnsight wrapper (or the model itself)."""
    for attribute in ("original_model", "_model", "_module"):
        inner = getattr(model, attribute, None)
        if isinstance(inner, nn.Module) and hasattr(inner, "config"):
            return inner
    if isinstance(model, nn.Module) and hasattr(model, "config"):
        return model
    raise UnsupportedModelError(
        f"{type(model).__name__} is not a Hugging Face model, a TransformerLens TransformerBridge or an nnsight "
        "model wrapping one"
    )


def _get(root: object, path: str) -> object:
    for part in path.split("."):
        root = getattr(root, part)
    return root


def find_head_sites(model: object) -> HeadSites:
    """Locate every layer's attention output projection and the (heads, d_head) split of its input."""
    hf_model = unwrap_hf_model(model)
    config = hf_model.config
    model_type = getattr(config, "model_type", type(hf_model).__name__)
    layout = ARCHITECTURES.get(model_type)
    if layout is None:
        raise UnsupportedModelError(
            f"jola_lens does not know where {type(hf_model).__name__} (model_type={model_type!r}) keeps its attention "
            f"heads. Supported model types: {', '.join(sorted(ARCHITECTURES))}. Add yours with "
            f"jola_lens.register_architecture({model_type!r}, layers_path='model.layers', "
            "out_proj_path='self_attn.o_proj') using the attribute paths of your model."
        )
    try:
        layers = _get(hf_model, layout.layers_path)
        out_projs = tuple(_get(layer, layout.out_proj_path) for layer in layers)
        weights_holders = tuple(projection_module(proj) for proj in out_projs)
    except AttributeError as error:
        raise UnsupportedModelError(
            f"{type(hf_model).__name__} (model_type={model_type!r}) has no '{layout.layers_path}[i]."
            f"{layout.out_proj_path}': {error}. Fix the mapping with jola_lens.register_architecture."
        ) from error
    n_heads = getattr(config, "num_attention_heads", None) or config.n_head
    hidden = getattr(config, "hidden_size", None) or config.n_embd
    d_head = getattr(config, "head_dim", None) or hidden // n_heads
    in_features = _in_features(weights_holders[0])
    if in_features != n_heads * d_head:
        raise UnsupportedModelError(
            f"{type(hf_model).__name__}: output projection takes {in_features} inputs, not heads x d_head = "
            f"{n_heads} x {d_head}; fix the mapping with jola_lens.register_architecture"
        )
    return HeadSites(model_type, len(out_projs), int(n_heads), int(d_head), out_projs, weights_holders)


def projection_module(module: nn.Module) -> nn.Module:
    """The Linear / Conv1D holding the weights (a booted TransformerBridge wraps some in a LinearBridge)."""
    return getattr(module, "original_component", module)


def _in_features(module: nn.Module) -> int:
    if isinstance(module, nn.Linear):
        return module.in_features
    weight = getattr(module, "weight", None)
    if weight is not None and weight.dim() == 2 and type(module).__name__ == "Conv1D":
        return weight.shape[0]
    raise UnsupportedModelError(f"unsupported output projection type {type(module).__name__}")
