"""What an edit writes: the additive edits read through the unembedding (a logit lens), and the largest
multiplicative scalings.

For head h of layer l, the additive edit adds ``v = W_O[:, head h] @ (g_a a)`` to the residual stream; its
direct effect on the logits is read as ``W_U (w ⊙ v)``, where ``w`` is the final norm's scale (its weight, or
``1 + weight`` for Gemma) and ``W_U`` the unembedding, both found through the family's
:class:`~jola_lens.architectures.Architecture` record; ``g_a a`` is the edit's own shift (``JoLAEdit.affine_terms``).
Approximation: the final norm's data-dependent scale (1 / RMS, or 1 / std for LayerNorm) is left out, so logits
are on the scale of a unit-RMS residual, and the effect of later layers is ignored; for a LayerNorm ``v`` is
centred first (the linear part of the norm); lm_head biases are left out (they do not depend on the edit).
Rank tokens within a head; do not compare magnitudes with real logits.
"""

from __future__ import annotations

import logging
import os

import pandas as pd
import torch
from einops import rearrange
from jaxtyping import Float
from matplotlib.figure import Figure
from torch import Tensor, nn

from jola_lens.analysis.figures import finish, new_figure
from jola_lens.analysis.sources import SourceLike, load_source
from jola_lens.architectures import Architecture, architecture_of, find_head_sites, out_in_weight, unwrap_hf_model

logger = logging.getLogger(__name__)


def head_output_weights(out_proj: nn.Module, n_heads: int) -> Float[Tensor, "head d_model d_head"]:
    """An output projection split per head: [head, d_model, d_head] (``nn.Linear`` or GPT-2's ``Conv1D``)."""
    return rearrange(out_in_weight(out_proj), "m (h d) -> h m d", h=n_heads)


def head_output_weight(out_proj: nn.Module, head: int, d_head: int) -> Float[Tensor, "d_model d_head"]:
    """Head ``head``'s slice of an output projection, as [d_model, d_head] (nn.Linear: [out, in];
    GPT-2 Conv1D: weight [in, out], transposed here)."""
    return rearrange(out_in_weight(out_proj), "m (h d) -> h m d", d=d_head)[head]


def _through_final_norm(vectors: Float[Tensor, "n d_model"], record: Architecture,
                        hf_model: nn.Module) -> Float[Tensor, "n d_model"]:
    """Apply the final norm's linear part: centring (LayerNorm only) and its elementwise scale (``w``, or Gemma's
    ``1 + w``), as the family's record says."""
    norm = record.final_norm(hf_model)
    if norm is None:
        logger.warning("%s: its architecture record names no final norm; reading edits through the unembedding alone",
                       type(hf_model).__name__)
        return vectors
    if isinstance(norm, nn.LayerNorm):
        vectors = vectors - vectors.mean(dim=-1, keepdim=True)
    scale = record.final_norm_scale(hf_model)
    return vectors if scale is None else vectors * scale.to(vectors.device)


def _token_text(tokenizer: object, token_id: int) -> str:
    text = tokenizer.decode([token_id])
    return text.replace(" ", "␣").replace("\n", "\\n").replace("\t", "\\t") or repr(text)


def additive_logit_lens(item: SourceLike, model: object, tokenizer: object, *, heads: int = 6, tokens: int = 8,
                        include_closed: bool = False) -> pd.DataFrame:
    """Tokens the strongest additive edits promote and suppress (see the module docstring for the approximation).

    Heads are ranked by the norm of what they write, ``‖W_O[:, h] g_a a‖``; closed heads (gate 0) write nothing
    and are left out unless ``include_closed``. One row per (head, direction, rank): layer, head, gate,
    written_norm, direction ('promotes' / 'suppresses'), rank, token_id, token, logit.
    """
    source = load_source(item)
    edit, config = source.edit, source.edit.config
    if "additive" not in config.edit_kinds:
        raise ValueError(f"{source.label} has no additive edit to read")
    sites = find_head_sites(model)
    edit.check_fits(sites.shape)
    hf_model = unwrap_hf_model(model)
    record = architecture_of(hf_model)
    gates = edit.gates()["additive"]
    with torch.no_grad():
        written = []
        for row, layer in enumerate(config.edited_layers):
            shift = edit.affine_terms(layer)[1].float().cpu()  # [head, d_head]: g_a a
            w_o = head_output_weights(sites.weights[layer], config.n_heads).detach().float().cpu()
            for head in range(config.n_heads):
                if gates[row, head] <= 0 and not include_closed:
                    continue
                vector = w_o[head] @ shift[head]
                written.append((float(vector.norm()), layer, head, float(gates[row, head]), vector))
        written.sort(key=lambda item: -item[0])
        written = written[:heads]
        if not written:
            return pd.DataFrame(columns=["run", "layer", "head", "gate", "written_norm", "direction", "rank",
                                         "token_id", "token", "logit"])
        vectors = _through_final_norm(torch.stack([w[-1] for w in written]), record, hf_model)
        unembed = record.lm_head(hf_model).weight
        logits = (vectors.to(unembed.device, unembed.dtype) @ unembed.detach().T).float().cpu()
    records = []
    for (norm, layer, head, gate, _), head_logits in zip(written, logits):
        k = min(tokens, head_logits.numel())
        for direction, (values, ids) in (("promotes", head_logits.topk(k)),
                                         ("suppresses", head_logits.topk(k, largest=False))):
            for rank, (value, token_id) in enumerate(zip(values.tolist(), ids.tolist()), start=1):
                records.append({"run": source.label, "layer": layer, "head": head, "gate": gate,
                                "written_norm": norm, "direction": direction, "rank": rank, "token_id": token_id,
                                "token": _token_text(tokenizer, token_id), "logit": value})
    return pd.DataFrame(records)


def multiplicative_scalings(item: SourceLike, *, heads: int = 6, dims: int = 5) -> pd.DataFrame:
    """The largest per-dimension scalings ``1 + g_m m`` of the ``heads`` open heads whose scaling departs most
    from 1 (by ``max |g_m m|``). One row per (head, dimension): layer, head, gate, dim, m, scale."""
    source = load_source(item)
    edit, config = source.edit, source.edit.config
    columns = ["run", "layer", "head", "gate", "dim", "m", "scale"]
    if "multiplicative" not in config.edit_kinds:
        return pd.DataFrame(columns=columns)
    gates = edit.gates()["multiplicative"]
    m = edit.multiplicative.detach().float()
    deviation = gates[:, :, None] * m
    strength = deviation.abs().amax(dim=-1)
    order = [(int(r), int(h)) for r, h in zip(*torch.where(gates > 0))]
    order.sort(key=lambda rh: -float(strength[rh]))
    records = []
    for row, head in order[:heads]:
        top = deviation[row, head].abs().topk(min(dims, config.d_head)).indices
        for dim in top.tolist():
            records.append({"run": source.label, "layer": config.edited_layers[row], "head": head,
                            "gate": float(gates[row, head]), "dim": dim, "m": float(m[row, head, dim]),
                            "scale": float(1 + deviation[row, head, dim])})
    return pd.DataFrame(records, columns=columns)


def plot_logit_lens(lens: pd.DataFrame, *, title: str | None = None, path: str | os.PathLike | None = None) -> Figure:
    """Bars per head from :func:`additive_logit_lens` (one run): promoted tokens (right), suppressed (left).
    ``title`` defaults to the run label; pass e.g. 'task — model'."""
    if lens.empty:
        raise ValueError("the logit-lens table is empty: no additive head is open")
    if lens["run"].nunique() != 1:
        raise ValueError("plot_logit_lens shows one run; filter the table to one value of 'run'")
    heads = list(dict.fromkeys(zip(lens["layer"], lens["head"])))
    n_tokens = int(lens["rank"].max())
    columns = min(3, len(heads))
    rows = -(-len(heads) // columns)
    fig = new_figure(4.2 * columns, rows * (0.32 * n_tokens + 1.2) + 0.8)
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax, (layer, head) in zip(axes.ravel(), heads):
        part = lens[(lens["layer"] == layer) & (lens["head"] == head)]
        up = part[part["direction"] == "promotes"].iloc[::-1]  # strongest at the top
        down = part[part["direction"] == "suppresses"]  # strongest at the bottom
        both = pd.concat([down, up])
        ax.barh(range(len(both)), both["logit"], color=["#b2182b" if v > 0 else "#2166ac" for v in both["logit"]])
        ax.set_yticks(range(len(both)), [t if len(t) <= 16 else t[:15] + "…" for t in both["token"]], fontsize=7)
        ax.axvline(0, color="black", linewidth=0.6)
        ax.set_title(f"L{layer} H{head}  (g_a={part['gate'].iloc[0]:.2f}, ‖W_O g_a a‖={part['written_norm'].iloc[0]:.3g})",
                     fontsize=8)
        ax.set_xlabel("direct logit contribution (unit-RMS approximation)", fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
    for ax in axes.ravel()[len(heads):]:
        ax.set_axis_off()
    fig.suptitle(f"{title or lens['run'].iloc[0]}: tokens each additive edit promotes (red) and suppresses (blue)\n"
                 "logit lens of W_U·(w_norm ⊙ W_O[:, h]·g_a a); heads ranked by what they write", fontsize=10)
    return finish(fig, path)
