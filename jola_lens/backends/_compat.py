"""The one place jola_lens touches private internals of nnsight and TransformerLens.

Each function names the internal it relies on; when an upgrade removes it, the call raises :class:`CompatError`
with that name (and tests/test_compat.py fails by name) instead of an AttributeError deep inside a route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from torch import nn

_FIX = "update jola_lens/backends/_compat.py for this version, or install the versions pinned in pyproject.toml"


class CompatError(RuntimeError):
    """Another library no longer has an internal jola_lens relies on."""


def _internal(obj: object, attribute: str, name: str) -> Any:
    try:
        return getattr(obj, attribute)
    except AttributeError as error:
        raise CompatError(f"{type(obj).__name__} has no {name}, which jola_lens relies on; {_FIX}") from error


# ---- TransformerLens TransformerBridge ------------------------------------------------------------------
def _is_bridge(model: object) -> bool:
    return type(model).__module__.startswith("transformer_lens")


def _is_envoy(model: object) -> bool:
    return type(model).__module__.startswith("nnsight")


def hf_model_inside(model: object) -> nn.Module | None:
    """The Hugging Face model a TransformerBridge (``original_model``) or an nnsight model (``Envoy._module``)
    wraps; None for anything else."""
    if _is_bridge(model):
        return _internal(model, "original_model", "TransformerLens TransformerBridge.original_model")
    if _is_envoy(model):
        return _internal(model, "_module", "nnsight Envoy._module")
    return None


def wrapped_module(module: nn.Module) -> nn.Module:
    """The module a booted bridge wrapped in place (``LinearBridge.original_component``), or ``module`` itself."""
    if _is_bridge(module):
        return _internal(module, "original_component", "TransformerLens GeneralizedComponent.original_component")
    return module


def is_bridged(hf_model: nn.Module) -> bool:
    """Whether booting a TransformerBridge replaced modules inside ``hf_model``."""
    return any(_is_bridge(module) for module in hf_model.modules())


def plain_state_dict(hf_model: nn.Module) -> dict[str, Any]:
    """``hf_model``'s state dict under stock ``transformers`` names (a bridged model stores each wrapped module's
    tensors under ``<path>._original_component.<name>``)."""
    return {key.replace("._original_component", ""): value for key, value in hf_model.state_dict().items()}


def add_permanent_hook(hook_point: Any, fn: Callable[..., Any]) -> Callable[[], None]:
    """Add ``fn`` as a permanent TransformerLens hook (kept by ``reset_hooks``); returns what removes just it.

    Relies on ``HookPoint.add_hook(fn, is_permanent=True)`` returning a handle with ``.hook.remove()`` and on
    ``HookPoint.fwd_hooks`` listing the handles (TransformerLens removes permanent hooks only all at once).
    """
    add_hook = _internal(hook_point, "add_hook", "TransformerLens HookPoint.add_hook")
    handle = add_hook(fn, is_permanent=True)
    torch_handle = _internal(handle, "hook", "TransformerLens LensHandle.hook")
    _internal(hook_point, "fwd_hooks", "TransformerLens HookPoint.fwd_hooks")

    def remove() -> None:
        torch_handle.remove()
        hook_point.fwd_hooks = [h for h in hook_point.fwd_hooks if h is not handle]

    return remove


def register_tl_adapter(architecture: str, adapter: type) -> None:
    """Let ``TransformerBridge.boot_transformers`` boot HF class ``architecture`` with ``adapter``.

    TransformerLens 4.3's public ``ArchitectureAdapterFactory.register_adapter`` is not enough: its
    ``determine_architecture_from_hf_config`` only accepts names in ``architecture_adapter_factory.
    SUPPORTED_ARCHITECTURES``, so the adapter goes into that table too.
    """
    from transformer_lens.factories import architecture_adapter_factory as factory

    _internal(factory.ArchitectureAdapterFactory, "register_adapter",
              "TransformerLens ArchitectureAdapterFactory.register_adapter")(architecture, adapter)
    _internal(factory, "SUPPORTED_ARCHITECTURES", "TransformerLens architecture_adapter_factory.SUPPORTED_ARCHITECTURES")[
        architecture] = adapter


# ---- nnsight ------------------------------------------------------------------------------------------
def store_nnsight_edit(envoy: Any, body: Callable[[], None]) -> Callable[[], None]:
    """Run ``body`` inside ``envoy.edit(inplace=True)`` (stored, replayed on every trace and generate) and return
    what removes just that stored edit again. nnsight only offers ``clear_edits()`` for all of them, so this reads
    and rewrites ``Envoy._edits``."""
    stored_before = list(_internal(envoy, "_edits", "nnsight Envoy._edits"))
    with envoy.edit(inplace=True):
        body()
    stored = [mediator for mediator in envoy._edits if not any(mediator is s for s in stored_before)]

    def remove() -> None:
        envoy._edits = [m for m in envoy._edits if not any(m is s for s in stored)]

    return remove


def every_step() -> Iterator[Any]:
    """What ``tracer.all()`` iterates over, without needing the tracer (``Iterations()[:]``)."""
    from nnsight.intervention.iterator import Iterations

    return iter(Iterations()[:])


def __getattr__(name: str) -> Any:
    """``OutOfOrderError``: what nnsight throws into an open every-step loop once the run is over (imported on
    first use, so that importing jola_lens does not import nnsight)."""
    if name == "OutOfOrderError":
        from nnsight.intervention.interleaver import OutOfOrderError

        return OutOfOrderError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
