"""``jola-lens train`` flags that choose the method and set its own settings (one argument group)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from jola_lens.methods.config import ABLATIONS, DEFAULTS, LOFIT_HEAD_SHARE, METHODS, MethodConfig

_D = DEFAULTS
_HELP = {
    "ablation": "JoLA with parts switched off: no_gates (every head edited, no gates), additive_only, "
                "multiplicative_only (default: none)",
    "lora_rank": f"LoRA rank r (default: {_D['lora_rank']})",
    "lora_alpha": f"LoRA alpha; updates are scaled by alpha / r (default: {_D['lora_alpha']})",
    "lora_dropout": f"dropout on LoRA's input (default: {_D['lora_dropout']})",
    "lora_target_modules": "comma-separated modules LoRA adapts, e.g. q_proj,k_proj,v_proj,o_proj "
                           "(default: peft's for the architecture; q_proj,v_proj for Llama-like models)",
    "ia3_target_modules": "comma-separated modules IA3 rescales (default: peft's for the architecture; "
                          "k_proj,v_proj,down_proj for Llama)",
    "ia3_feedforward_modules": "which of the IA3 targets are feed-forward layers (their input is rescaled) "
                               "(default: peft's; down_proj for Llama)",
    "lofit_top_k": "heads LoFiT keeps after stage 1, by the norm of their scaling vector "
                   f"(default: {round(100 * LOFIT_HEAD_SHARE)}%% of all heads)",
    "lofit_l1": f"L1 penalty weight on the stage-1 scaling vectors (default: {_D['lofit_l1']})",
    "lofit_offset_lr": f"learning rate of the stage-2 offsets; stage 1 uses --lr (default: {_D['lofit_offset_lr']})",
}
_TYPES = {"lora_rank": int, "lofit_top_k": int, "lora_alpha": float, "lora_dropout": float, "lofit_l1": float,
          "lofit_offset_lr": float}


def _modules(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def add_method_flags(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add ``--method`` and every method's flags (each also spelled with dashes) as one argument group."""
    group = parser.add_argument_group(
        "method", "what is trained: jola (default), lora or ia3 (through peft, --backend hf only), or lofit "
                  "(two stages: scaling vectors with an L1 penalty pick the top-K heads, then offsets on those "
                  "heads). A flag of one method is refused with another.")
    group.add_argument("--method", choices=METHODS, default="jola", help="the method (default: %(default)s)")
    for field in dataclasses.fields(MethodConfig):
        name = field.name
        if name == "method":
            continue
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": _HELP[name]}
        if name == "ablation":
            kwargs["choices"] = tuple(ABLATIONS)
        elif name.endswith("_modules"):
            kwargs.update(type=_modules, metavar="M1,M2")
        else:
            kwargs.update(type=_TYPES[name], metavar="N" if _TYPES[name] is int else "X")
        group.add_argument(*flags, **kwargs)
    return group


def method_config(args: argparse.Namespace) -> MethodConfig:
    """The MethodConfig the parsed flags describe (refuses flags of another method)."""
    return MethodConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(MethodConfig)})
