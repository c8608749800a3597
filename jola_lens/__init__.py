"""jola_lens: JoLA (Joint Localization and Activation Editing) for TransformerLens, nnsight and Hugging Face."""

__version__ = "0.1.0"

from jola_lens.architectures import UnsupportedModelError, find_head_sites, register_architecture
from jola_lens.config import JoLAConfig
from jola_lens.edit import EditShapeError, JoLAEdit
from jola_lens.gates import GateSchedule
from jola_lens.merge import merge_edit, save_merged
from jola_lens.models import boot_bridge, load_model

__all__ = [
    "EditShapeError",
    "GateSchedule",
    "JoLAConfig",
    "JoLAEdit",
    "UnsupportedModelError",
    "__version__",
    "boot_bridge",
    "find_head_sites",
    "load_model",
    "merge_edit",
    "register_architecture",
    "save_merged",
]
