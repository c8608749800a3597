"""Methods a run can train, behind one interface (:class:`Adapter`): JoLA and its ablations, LoRA and IA3 through
peft, and LoFiT's two stages on JoLA's head-restricted edit."""

from jola_lens.methods.base import Adapter, read_method_record
from jola_lens.methods.config import ABLATIONS, METHODS, MethodConfig, MethodFlagError
from jola_lens.methods.jola import JoLAAdapter
from jola_lens.methods.lofit import LoFiTOffsets, LoFiTScaling
from jola_lens.methods.peft_adapters import MethodRouteError, MissingDependencyError, PeftAdapter, TargetModulesError
from jola_lens.methods.registry import (
    Stage,
    build_adapter,
    check_train_settings,
    load_adapter,
    no_head_gates_reason,
    stages,
)

__all__ = [
    "ABLATIONS",
    "METHODS",
    "Adapter",
    "JoLAAdapter",
    "LoFiTOffsets",
    "LoFiTScaling",
    "MethodConfig",
    "MethodFlagError",
    "MethodRouteError",
    "MissingDependencyError",
    "PeftAdapter",
    "Stage",
    "TargetModulesError",
    "build_adapter",
    "check_train_settings",
    "load_adapter",
    "no_head_gates_reason",
    "read_method_record",
    "stages",
]
