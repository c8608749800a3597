"""Backends find the per-head attention outputs of a model and call ``edit(z, layer)`` there."""

from __future__ import annotations

from jola_lens.backends.base import Attachment
from jola_lens.edit import JoLAEdit


def backend_name(model: object) -> str:
    """'transformer_lens', 'nnsight' or 'hf', by the type of ``model``."""
    module = type(model).__module__
    if module.startswith("transformer_lens"):
        return "transformer_lens"
    if module.startswith("nnsight"):
        return "nnsight"
    return "hf"


def attach(model: object, edit: JoLAEdit) -> Attachment:
    """Attach ``edit`` to ``model`` with the backend its type calls for."""
    name = backend_name(model)
    if name == "transformer_lens":
        from jola_lens.backends import transformer_lens as backend
    elif name == "nnsight":
        from jola_lens.backends import nnsight as backend
    else:
        from jola_lens.backends import hf as backend
    return backend.attach(model, edit)


__all__ = ["Attachment", "attach", "backend_name"]
