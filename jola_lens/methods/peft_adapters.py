"""LoRA and IA3 through peft (an optional dependency: ``pip install 'jola_lens[baselines]'``).

peft injects its layers into the Hugging Face model itself, so these methods run on the hf route only. The adapter
layers are switched off outside :meth:`PeftAdapter.attached` / :meth:`PeftAdapter.forward`, so the model stays the
bare model everywhere else; the frozen model stays in eval mode, only LoRA's own dropout follows train / eval.
Saved with peft's own ``save_pretrained`` (``adapter_config.json`` + ``adapter_model.safetensors``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from jola_lens.atomic import atomic_path
from jola_lens.methods.base import Adapter

if TYPE_CHECKING:
    from jola_lens.backends.route import Route

INSTALL_HINT = "pip install 'jola_lens[baselines]'  (or: pip install 'peft>=0.21,<1')"
PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")
LLAMA_LIKE_DEFAULTS = {"lora": (("q_proj", "v_proj"), None), "ia3": (("k_proj", "v_proj", "down_proj"), ("down_proj",))}
"""peft's Llama defaults, used for model types peft's own table does not list but that have these projections."""


class MissingDependencyError(ImportError):
    """An optional dependency (peft) is not installed."""


class MethodRouteError(ValueError):
    """A method that cannot run on the requested route (backend)."""


class TargetModulesError(ValueError):
    """Target modules that the model does not have."""


def require_peft(method: str) -> ModuleType:
    """The peft module, or a clear error saying how to install it."""
    try:
        import peft
    except ImportError as error:
        raise MissingDependencyError(f"--method {method} needs peft, which is not installed: {INSTALL_HINT}") from error
    return peft


def check_route(backend: Route, method: str) -> None:
    if backend.name != "hf":
        raise MethodRouteError(f"--method {method} runs through peft, which replaces the model's linear layers, so it "
                               f"needs --backend hf (got --backend {backend.name}); JoLA and LoFiT run on every backend")


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"


def linear_modules(hf_model: nn.Module) -> dict[str, nn.Module]:
    """Dotted name -> module of every Linear / Conv1D inside the model's blocks (lm_head and other top-level
    layers left out)."""
    return {name: module for name, module in hf_model.named_modules() if "." in name and _is_linear(module)}


def module_candidates(hf_model: nn.Module) -> list[str]:
    """The short names target modules can use (each linear layer's last name part)."""
    return sorted({name.rsplit(".", 1)[-1] for name in linear_modules(hf_model)})


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def resolve_targets(hf_model: nn.Module, method: str, targets: tuple[str, ...] | None,
                    feedforward: tuple[str, ...] | None = None) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """The target (and, for ia3, feed-forward) modules: the given ones, checked against the model, else peft's
    default for the model's architecture."""
    peft = require_peft(method)
    model_type = getattr(hf_model.config, "model_type", type(hf_model).__name__)
    linears = linear_modules(hf_model)
    if targets is None:
        targets, default_ff = _default_targets(peft, method, model_type, hf_model)
        feedforward = default_ff if feedforward is None else feedforward
    option = f"--{method}_target_modules"
    missing = [t for t in targets if not any(_matches(name, t) for name in linears)]
    if missing:
        raise TargetModulesError(f"{option} {missing}: the {model_type} model has no such module. Its linear layers "
                                 f"are: {', '.join(module_candidates(hf_model))}")
    if method == "ia3":
        feedforward = feedforward or ()
        extra = [f for f in feedforward if f not in targets]
        if extra:
            raise TargetModulesError(f"--ia3_feedforward_modules {extra} are not among the target modules "
                                     f"{list(targets)}: peft needs them to be a subset")
    return tuple(targets), (tuple(feedforward) if method == "ia3" else None)


def _default_targets(peft: ModuleType, method: str, model_type: str,
                     hf_model: nn.Module) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    from peft import utils

    if method == "lora":
        targets = utils.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type)
        feedforward = None
    else:
        targets = utils.TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING.get(model_type)
        feedforward = utils.TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING.get(model_type)
    if targets is not None:
        return tuple(targets), tuple(feedforward) if feedforward is not None else None
    candidates = module_candidates(hf_model)
    fallback, fallback_ff = LLAMA_LIKE_DEFAULTS[method]
    if set(fallback) <= set(candidates):
        return fallback, fallback_ff
    raise TargetModulesError(f"peft has no default target modules for model_type {model_type!r}: pass "
                             f"--{method}_target_modules, chosen from its linear layers: {', '.join(candidates)}")


class PeftAdapter(Adapter):
    """A peft adapter (LoRA or IA3) injected into the backend's Hugging Face model."""

    method: str = "lora"  # or "ia3": set per instance

    def __init__(self, peft_model: nn.Module, backend: Route, method: str, settings: dict[str, Any]) -> None:
        super().__init__(backend, settings)
        self.method = method
        self.peft_model = peft_model
        self._enable(False)
        self.eval()

    # ---- building and loading ----------------------------------------------------------------------------
    @classmethod
    def build(cls, backend: Route, method: str, *, seed: int | None, settings: dict[str, Any]) -> PeftAdapter:
        """Inject a fresh ``method`` ('lora' or 'ia3') adapter with ``settings`` (MethodConfig.settings())."""
        peft = require_peft(method)
        check_route(backend, method)
        hf_model = backend.hf_model
        targets, feedforward = resolve_targets(hf_model, method, settings.get(f"{method}_target_modules"),
                                               settings.get("ia3_feedforward_modules"))
        linears = linear_modules(hf_model)
        conv1d = any(type(m).__name__ == "Conv1D" for name, m in linears.items()
                     if any(_matches(name, t) for t in targets))
        if method == "lora":
            config = peft.LoraConfig(r=settings["lora_rank"], lora_alpha=settings["lora_alpha"],
                                     lora_dropout=settings["lora_dropout"], target_modules=list(targets),
                                     bias="none", task_type="CAUSAL_LM", fan_in_fan_out=conv1d)
            resolved = {**settings, "lora_target_modules": targets}
        elif method == "ia3":
            config = peft.IA3Config(target_modules=list(targets), feedforward_modules=list(feedforward),
                                    task_type="CAUSAL_LM", fan_in_fan_out=conv1d)
            resolved = {**settings, "ia3_target_modules": targets, "ia3_feedforward_modules": feedforward}
        else:
            raise ValueError(f"PeftAdapter builds 'lora' or 'ia3', not {method!r}")
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            peft_model = peft.get_peft_model(hf_model, config)
        return cls(peft_model, backend, method, resolved)

    @classmethod
    def load_weights(cls, directory: Path, backend: Route, method: str, settings: dict[str, Any]) -> PeftAdapter:
        """Inject the adapter saved in ``directory`` (peft's files) into the backend's model."""
        peft = require_peft(method)
        check_route(backend, method)
        missing = [name for name in PEFT_FILES if not (directory / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{directory} has no {', '.join(missing)}: a saved {method} adapter holds peft's "
                                    f"{' and '.join(PEFT_FILES)}")
        peft_model = peft.PeftModel.from_pretrained(backend.hf_model, str(directory), is_trainable=True)
        return cls(peft_model, backend, method, settings)

    # ---- the Adapter interface ----------------------------------------------------------------------------
    def named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """peft's adapter parameters (named by its prefix, ``lora_`` / ``ia3_``)."""
        prefix = self.peft_model.base_model.prefix
        return ((name, p) for name, p in self.peft_model.named_parameters() if prefix in name)

    def train(self, mode: bool = True) -> PeftAdapter:
        """Only the adapter's dropout changes mode; the frozen model stays in eval, as it does for JoLA."""
        super().train(mode)
        for name, module in self.peft_model.named_modules():
            if isinstance(module, nn.Dropout) and ".lora_dropout." in f".{name}.":
                module.train(mode)
        return self

    def _enable(self, enabled: bool) -> None:
        """Switch peft's layers on or off; the parameters stay trainable either way (peft's switch also turns off
        requires_grad, and autograd drops gradients of leaves that lose it before ``backward``)."""
        if enabled:
            self.peft_model.base_model.enable_adapter_layers()
        else:
            self.peft_model.base_model.disable_adapter_layers()
        for p in self.parameters():
            p.requires_grad_(True)

    @contextmanager
    def attached(self) -> Iterator[PeftAdapter]:
        self._enable(True)
        try:
            yield self
        finally:
            self._enable(False)

    def remove(self) -> None:
        """Unload peft's layers: the model is the bare model again, and this adapter is unusable."""
        self.peft_model.unload()

    def read_state(self, directory: Path) -> dict[str, torch.Tensor]:
        from peft import set_peft_model_state_dict
        from peft.utils import load_peft_weights

        current = {name: t.clone() for name, t in self.state_dict().items()}
        set_peft_model_state_dict(self.peft_model, load_peft_weights(str(directory), device="cpu"))
        saved = {name: t.clone() for name, t in self.state_dict().items()}
        self.load_state_dict(current)
        return saved

    def save_weights(self, directory: Path) -> None:
        with tempfile.TemporaryDirectory(dir=directory, prefix=".peft-") as tmp:
            self.peft_model.save_pretrained(tmp)
            for name in PEFT_FILES:
                with atomic_path(directory / name) as target:
                    Path(tmp, name).replace(target)
