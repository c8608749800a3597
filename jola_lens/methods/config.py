"""MethodConfig: which method a run trains (jola, lora, ia3, lofit) and that method's own settings, validated.

Every method-specific field belongs to one method (``lora_*`` to lora, ``ia3_*`` to ia3, ``lofit_*`` to lofit,
``ablation`` to jola); setting a field of another method is refused, naming the method it belongs to. ``None``
means "the method's default" (see :data:`DEFAULTS`); :meth:`MethodConfig.settings` fills them in.

Defaults and where they come from:

- lora: rank 8, alpha 16 (scaling alpha / rank = 2), dropout 0.05, target modules: peft's default for the model's
  architecture (``q_proj``/``v_proj`` for Llama-like models: the LoRA paper's W_q, W_v choice, Hu et al. 2021
  section 7.1). r=8 / alpha=16 / dropout 0.05 is common peft practice for small instruction-tuning runs.
- ia3: target and feed-forward modules: peft's defaults per architecture (Llama: ``k_proj, v_proj, down_proj``
  with ``down_proj`` as the feed-forward module, i.e. the (IA)^3 paper's keys, values and FFN inner activations).
- lofit: the LoFiT reference scripts for SFT tasks on Llama 2-7B (Yin et al. 2024): stage 1 scaling vectors
  ``z * (1 + A)`` on every head, A ~ N(0, 1e-3), L1 penalty ``1e-3 * sum |A|`` at the run's --lr (their 5e-3 is
  this project's default), then the top K heads by ||A||, K = 3% of all heads (their 32 of 1024); stage 2 offsets
  ``z + v`` on those heads only, v ~ N(0, 1e-3), trained from scratch at lr 1e-2 without penalty. Both stages
  run the run's schedule (epochs, batch, warm-up).
- jola: the ablation presets switch off parts of JoLA (``JoLAConfig`` fields): ``no_gates`` (gated=False),
  ``additive_only`` (multiplicative=False), ``multiplicative_only`` (additive=False).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from jola_lens.config import check_known_fields

METHODS = ("jola", "lora", "ia3", "lofit")
ABLATIONS: dict[str, dict[str, bool]] = {
    "none": {},
    "no_gates": {"gated": False},
    "additive_only": {"multiplicative": False},
    "multiplicative_only": {"additive": False},
}
DEFAULTS: dict[str, Any] = {
    "ablation": "none",
    "lora_rank": 8,
    "lora_alpha": 16.0,
    "lora_dropout": 0.05,
    "lora_target_modules": None,
    "ia3_target_modules": None,
    "ia3_feedforward_modules": None,
    "lofit_top_k": None,
    "lofit_l1": 1e-3,
    "lofit_offset_lr": 1e-2,
}
LOFIT_HEAD_SHARE = 0.03
"""LoFiT's default K as a share of all heads (32 of Llama 2-7B's 1024)."""
LOFIT_INIT_STD = 1e-3


class MethodFlagError(ValueError):
    """A method setting that is invalid, or that belongs to another method than the run's."""


def owner(field_name: str) -> str:
    """The method a MethodConfig field belongs to."""
    return "jola" if field_name == "ablation" else field_name.split("_", 1)[0]


def flag(field_name: str) -> str:
    return f"--{field_name}"


@dataclass(frozen=True)
class MethodConfig:
    """The run's method and its settings (None: that method's default)."""

    method: str = "jola"
    ablation: str | None = None
    lora_rank: int | None = None
    lora_alpha: float | None = None
    lora_dropout: float | None = None
    lora_target_modules: tuple[str, ...] | None = None
    ia3_target_modules: tuple[str, ...] | None = None
    ia3_feedforward_modules: tuple[str, ...] | None = None
    lofit_top_k: int | None = None
    lofit_l1: float | None = None
    lofit_offset_lr: float | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise MethodFlagError(f"unknown method {self.method!r}; choose one of {METHODS}")
        foreign = [f.name for f in dataclasses.fields(self)
                   if f.name != "method" and getattr(self, f.name) is not None and owner(f.name) != self.method]
        if foreign:
            raise MethodFlagError("; ".join(
                f"{flag(name)} belongs to --method {owner(name)}, not --method {self.method}" for name in foreign)
                + ": drop it, or pass the method it belongs to")
        if self.ablation is not None and self.ablation not in ABLATIONS:
            raise MethodFlagError(f"unknown --ablation {self.ablation!r}; choose one of {tuple(ABLATIONS)}")
        for name in ("lora_rank", "lofit_top_k"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise MethodFlagError(f"{flag(name)} must be a positive integer, got {value!r}")
        for name, low_open in (("lora_alpha", True), ("lofit_offset_lr", True), ("lofit_l1", False)):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and (value > 0 if low_open else value >= 0)):
                raise MethodFlagError(f"{flag(name)} must be a finite number {'>' if low_open else '>='} 0, "
                                      f"got {value!r}")
        if self.lora_dropout is not None and not 0 <= self.lora_dropout < 1:
            raise MethodFlagError(f"--lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        for name in ("lora_target_modules", "ia3_target_modules", "ia3_feedforward_modules"):
            value = getattr(self, name)
            if value is None:
                continue
            modules = tuple(str(m).strip() for m in ([value] if isinstance(value, str) else value))
            if not modules or not all(modules):
                raise MethodFlagError(f"{flag(name)} must name at least one module, e.g. q_proj,v_proj; "
                                      f"got {value!r}")
            object.__setattr__(self, name, modules)
        if self.ia3_feedforward_modules is not None and self.ia3_target_modules is not None:
            extra = sorted(set(self.ia3_feedforward_modules) - set(self.ia3_target_modules))
            if extra:
                raise MethodFlagError(f"--ia3_feedforward_modules {extra} are not among --ia3_target_modules "
                                      f"{list(self.ia3_target_modules)}: peft needs them to be a subset")

    def settings(self) -> dict[str, Any]:
        """This method's own fields, defaults filled in (target modules stay None: the architecture decides)."""
        return {name: DEFAULTS[name] if getattr(self, name) is None else getattr(self, name)
                for name in DEFAULTS if owner(name) == self.method}

    @property
    def jola_fields(self) -> dict[str, bool]:
        """The JoLAConfig fields of the ablation preset (empty for plain JoLA and for other methods)."""
        return dict(ABLATIONS[self.ablation or "none"]) if self.method == "jola" else {}

    @property
    def gated(self) -> bool:
        """Whether this method has JoLA's Hard Concrete gates (and so uses the gate flags)."""
        return self.method == "jola" and self.jola_fields.get("gated", True)

    @property
    def is_default(self) -> bool:
        """Plain JoLA: runs made before methods existed have this method."""
        return self.method == "jola" and self.settings()["ablation"] == "none"

    @property
    def slug(self) -> str:
        """A short name for folder names: ``lora``, ``jola-no_gates``, ...; empty for plain JoLA."""
        if self.is_default:
            return ""
        ablation = self.settings().get("ablation")
        return self.method + (f"-{ablation}" if ablation not in (None, "none") else "")

    def identity(self) -> dict[str, Any]:
        """What a run folder's identity records of the method: nothing for plain JoLA (so that run folders
        written before methods existed still resume), else the method and its resolved settings."""
        if self.is_default:
            return {}
        settings = {k: list(v) if isinstance(v, tuple) else v for k, v in self.settings().items()}
        return {"method": {"name": self.method, **settings}}

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
                if k == "method" or v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MethodConfig:
        check_known_fields(cls, data)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    @classmethod
    def from_identity(cls, identity: dict[str, Any] | None) -> MethodConfig:
        """The method of a run identity (or config.json) holding :meth:`identity`'s record; none is plain JoLA."""
        record = dict((identity or {}).get("method") or {})
        if not record:
            return cls()
        name = record.pop("name")
        return cls.from_dict({"method": name, **record})
