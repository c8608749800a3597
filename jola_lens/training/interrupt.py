"""Graceful Ctrl-C: the first press asks the trainer to checkpoint at the next step boundary and stop."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

logger = logging.getLogger(__name__)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on request after saving a checkpoint (``checkpoint`` is None when none is kept)."""

    def __init__(self, epoch: int, step: int, checkpoint: str | None) -> None:
        self.epoch, self.step, self.checkpoint = epoch, step, checkpoint
        where = f"checkpoint saved in {checkpoint}" if checkpoint else "no checkpoint kept (--save_strategy no)"
        super().__init__(f"training interrupted in epoch {epoch} after step {step}; {where}")


class StopRequest:
    """A stop flag the trainer polls; inside ``with``, SIGINT sets it (a second SIGINT aborts at once).

    Outside the main thread the signal handler is not installed and only :meth:`set` raises the flag.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: object = None

    def set(self) -> None:
        self.requested = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("Ctrl-C: saving a checkpoint after the current step, then stopping "
                       "(press Ctrl-C again to abort without saving)")

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
