"""Attachment: the live hooks of one edit on one model."""

from __future__ import annotations

from collections.abc import Callable


class Attachment:
    """Handles of the hooks that apply an edit; ``remove()`` (or leaving a ``with`` block) detaches them."""

    def __init__(self, removers: list[Callable[[], None]], backend: str) -> None:
        self._removers = removers
        self.backend = backend

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
