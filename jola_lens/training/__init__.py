"""Training JoLA edits with the paper's protocol, resumably. Whole runs (``jola-lens train`` / ``eval``)
live in :mod:`jola_lens.training.pipeline`."""

from jola_lens.training.checkpoint import CheckpointMismatchError, TrainState
from jola_lens.training.config import SAVE_STRATEGIES, TrainConfig
from jola_lens.training.interrupt import TrainingInterrupted
from jola_lens.training.output_dir import OutputDirError
from jola_lens.training.trainer import NonFiniteLossError, Trainer, TrainResult

__all__ = [
    "SAVE_STRATEGIES",
    "CheckpointMismatchError",
    "NonFiniteLossError",
    "OutputDirError",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "Trainer",
    "TrainingInterrupted",
]
