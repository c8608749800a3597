"""Backends find the per-head attention outputs of a model and call ``edit(z, layer)`` there.

Three routes, one name each: ``hf`` (a plain Hugging Face model), ``tl`` (a TransformerLens TransformerBridge)
and ``nnsight`` (an nnsight model). Other libraries' private internals are touched only in :mod:`._compat`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jola_lens.backends.base import AlreadyAppliedError, Attachment

if TYPE_CHECKING:
    from jola_lens.edit import JoLAEdit

ROUTES = ("hf", "tl", "nnsight")


def backend_name(model: object) -> str:
    """'tl', 'nnsight' or 'hf', by the type of ``model``."""
    module = type(model).__module__
    if module.startswith("transformer_lens"):
        return "tl"
    if module.startswith("nnsight"):
        return "nnsight"
    return "hf"


def attach(model: object, edit: JoLAEdit, *, stack: bool = False) -> Attachment:
    """Attach ``edit`` to ``model`` with the route its type calls for (see :meth:`JoLAEdit.attach`)."""
    name = backend_name(model)
    if name == "tl":
        from jola_lens.backends import transformer_lens as backend
    elif name == "nnsight":
        from jola_lens.backends import nnsight as backend
    else:
        from jola_lens.backends import hf as backend
    return backend.attach(model, edit, stack=stack)


__all__ = ["ROUTES", "AlreadyAppliedError", "Attachment", "attach", "backend_name"]
