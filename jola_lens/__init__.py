"""jola_lens: JoLA (Joint Localization and Activation Editing) for TransformerLens, nnsight and Hugging Face."""

__version__ = "0.1.0"

from jola_lens.architectures import Architecture, UnsupportedModelError, find_head_sites, register_architecture
from jola_lens.backends.base import AlreadyAppliedError
from jola_lens.config import JoLAConfig
from jola_lens.edit import EditShapeError, JoLAEdit, LayerNotEditedError, NonFiniteEditError
from jola_lens.gates import GateSchedule
from jola_lens.merge import merge_edit, merged_edits
from jola_lens.models import boot_bridge, load_model

__all__ = [
    "AlreadyAppliedError",
    "Architecture",
    "EditShapeError",
    "GateSchedule",
    "JoLAConfig",
    "JoLAEdit",
    "LayerNotEditedError",
    "NonFiniteEditError",
    "UnsupportedModelError",
    "__version__",
    "boot_bridge",
    "find_head_sites",
    "load_model",
    "merge_edit",
    "merged_edits",
    "register_architecture",
]
