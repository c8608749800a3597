"""Attachment: the live hooks of one edit on one model; and the check that no edit is applied twice.

Every route records its attachments on the Hugging Face model underneath (a TransformerBridge or an nnsight model
and the HF model it wraps count as one model), and :func:`jola_lens.merge_edit` records merges in the model's
config (``config.jola_merged``, which ``save_pretrained`` writes and ``from_pretrained`` reads back). Before an
edit is applied, :func:`check_can_apply` refuses the same edit a second time, an edit already merged into the
model, and a second, different edit unless stacking was asked for.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from jola_lens.edit import JoLAEdit

MERGED_KEY = "jola_merged"
"""The model config attribute listing the edits merged into its weights (one dict per merge)."""


class AlreadyAppliedError(RuntimeError):
    """An edit would be applied to a model a second time (attached twice, merged twice, or attached after a merge),
    or a second edit would stack on one without ``stack=True``."""


class Attachment:
    """Handles of the hooks that apply an edit; ``remove()`` (or leaving a ``with`` block) detaches them."""

    def __init__(self, removers: list[Callable[[], None]], backend: str, *, edit: JoLAEdit | None = None,
                 hf_model: nn.Module | None = None) -> None:
        self._removers = removers
        self.backend = backend
        self.edit = edit
        if hf_model is not None:
            _ATTACHMENTS.setdefault(hf_model, []).append(self)
            self._removers.insert(0, lambda: _forget(hf_model, self))

    @property
    def active(self) -> bool:
        return bool(self._removers)

    def remove(self) -> None:
        while self._removers:
            self._removers.pop()()

    def __enter__(self) -> Attachment:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"Attachment(backend={self.backend!r}, active={self.active})"


_ATTACHMENTS: weakref.WeakKeyDictionary[nn.Module, list[Attachment]] = weakref.WeakKeyDictionary()


def _forget(hf_model: nn.Module, attachment: Attachment) -> None:
    live = [a for a in _ATTACHMENTS.get(hf_model, []) if a is not attachment]
    if live:
        _ATTACHMENTS[hf_model] = live
    else:
        _ATTACHMENTS.pop(hf_model, None)


def attachments(hf_model: nn.Module) -> list[Attachment]:
    """The live attachments on ``hf_model`` (through any route)."""
    return [a for a in _ATTACHMENTS.get(hf_model, []) if a.active]


def merged_records(hf_model: nn.Module) -> list[dict[str, Any]]:
    """The merges recorded in ``hf_model.config`` (empty for a model nothing was merged into)."""
    return list(getattr(hf_model.config, MERGED_KEY, None) or [])


def check_can_apply(hf_model: nn.Module, edit: JoLAEdit, route: str, *, stack: bool) -> None:
    """Raise :class:`AlreadyAppliedError` unless applying ``edit`` to ``hf_model`` through ``route`` applies it once."""
    name = type(hf_model).__name__
    records = merged_records(hf_model)
    if records:
        fingerprint = edit.fingerprint()
        if any(record.get("fingerprint") == fingerprint for record in records):
            raise AlreadyAppliedError(
                f"this JoLA edit is already merged into {name} (fingerprint {fingerprint[:12]}, recorded in "
                f"config.{MERGED_KEY}): attaching it would apply it twice. Use the merged model without the edit, "
                "or attach the edit to the unmerged base model")
    live = attachments(hf_model)
    for attachment in live:
        if attachment.edit is edit:
            raise AlreadyAppliedError(
                f"this JoLA edit is already attached to {name} (route {attachment.backend!r}); applying it again "
                "would apply it twice: remove it first (attachment.remove(), or leave its `with edit.attached(...)` "
                "block), or use the attachment you have")
    if live and not stack:
        raise AlreadyAppliedError(
            f"another JoLA edit is already attached to {name} (route {live[0].backend!r}); pass stack=True "
            f"(edit.attach(model, stack=True) / edit.attached(model, stack=True)) to apply both, one after the "
            f"other, or remove the other edit first (route {route!r} was asked for)")
