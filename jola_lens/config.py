"""JoLAConfig: the shape and constants of one JoLA edit, validated on construction."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

EDIT_KINDS = ("additive", "multiplicative")


def check_known_fields(cls: type, data: dict[str, Any]) -> None:
    """Raise a ValueError naming the keys of ``data`` that are not fields of the dataclass ``cls``."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}; known: {sorted(known)}")


@dataclass(frozen=True)
class JoLAConfig:
    """Everything needed to rebuild a JoLA edit's parameters.

    Shapes follow the model: ``n_layers`` x ``n_heads`` query heads of ``d_head`` each.
    ``layers`` restricts editing to a subset (default: all layers). The gate constants are the
    Hard Concrete ones of the spec (beta = temperature, [gamma, zeta] = stretch interval).
    ``additive`` / ``multiplicative`` / ``gated`` switch parts of the method off for ablations.
    ``heads`` restricts editing to a head set: None (every head), or for every edit kind one set, or a dict from
    edit kind to set; a set is ``"L12H3,L20H0"``, (layer, head) pairs or a [layer, head] mask (see
    :mod:`jola_lens.heads`). Heads outside the set stay bit-exactly unedited. Stored as ``{kind: ((layer, head), ...)}``.
    ``gate_init``: None draws every gate logit uniform in +-sqrt(6 / (1 + heads)) (the spec); a number starts every
    logit there, so that which heads close is decided by training alone, not by the random starting point.
    """

    n_layers: int
    n_heads: int
    d_head: int
    layers: tuple[int, ...] | None = None
    additive: bool = True
    multiplicative: bool = True
    gated: bool = True
    init_std: float = 1e-3
    gate_init: float | None = None
    heads: Any = None
    beta: float = 0.33
    gamma: float = -0.1
    zeta: float = 1.1
    eps: float = 1e-6
    base_model: str | None = None
    architecture: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("n_layers", "n_heads", "d_head"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"JoLAConfig.{name} must be a positive integer, got {value!r}")
        if self.layers is not None:
            layers = tuple(int(layer) for layer in self.layers)
            if not layers:
                raise ValueError("JoLAConfig.layers is empty: pass None to edit every layer")
            if len(set(layers)) != len(layers):
                raise ValueError(f"JoLAConfig.layers has duplicates: {layers}")
            bad = [layer for layer in layers if not 0 <= layer < self.n_layers]
            if bad:
                raise ValueError(f"JoLAConfig.layers {bad} outside [0, {self.n_layers})")
            object.__setattr__(self, "layers", tuple(sorted(layers)))
        if not (self.additive or self.multiplicative):
            raise ValueError("JoLAConfig: at least one of additive / multiplicative must be on")
        if self.heads is not None:
            object.__setattr__(self, "heads", self._normalized_heads(self.heads))
        if not self.init_std >= 0:
            raise ValueError(f"JoLAConfig.init_std must be >= 0, got {self.init_std}")
        if self.gate_init is not None and not math.isfinite(self.gate_init):
            raise ValueError(f"JoLAConfig.gate_init must be a finite logit or None, got {self.gate_init}")
        if not self.beta > 0:
            raise ValueError(f"JoLAConfig.beta (temperature) must be > 0, got {self.beta}")
        if not self.gamma < 0:
            raise ValueError(f"JoLAConfig.gamma must be < 0 (gates must reach exactly 0), got {self.gamma}")
        if not self.zeta > 1:
            raise ValueError(f"JoLAConfig.zeta must be > 1 (gates must reach exactly 1), got {self.zeta}")
        if not 0 < self.eps < 0.5:
            raise ValueError(f"JoLAConfig.eps must be in (0, 0.5), got {self.eps}")

    def _normalized_heads(self, heads: Any) -> dict[str, tuple[tuple[int, int], ...]]:
        from jola_lens.heads import HeadSpecError, head_name, parse_heads

        by_kind = heads if isinstance(heads, Mapping) else {kind: heads for kind in self.edit_kinds}
        unknown = sorted(set(by_kind) - set(self.edit_kinds))
        if unknown:
            raise HeadSpecError(f"JoLAConfig.heads names edit kinds {unknown}, but this edit has {list(self.edit_kinds)}")
        edited = set(self.edited_layers)
        normalized = {}
        for kind in self.edit_kinds:
            if kind not in by_kind:
                continue
            head_set = parse_heads(by_kind[kind], self.n_layers, self.n_heads)
            outside = [head_name(h) for h in head_set if h[0] not in edited]
            if outside:
                raise HeadSpecError(f"JoLAConfig.heads: {', '.join(outside)} lie in layers this edit does not edit "
                                    f"(layers={list(self.edited_layers)})")
            normalized[kind] = head_set
        return normalized

    @property
    def edited_layers(self) -> tuple[int, ...]:
        """The layers this edit touches, ascending."""
        return self.layers if self.layers is not None else tuple(range(self.n_layers))

    @property
    def edit_kinds(self) -> tuple[str, ...]:
        """The edit kinds switched on, in canonical order."""
        return tuple(kind for kind in EDIT_KINDS if getattr(self, kind))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(n_layers, n_heads, d_head) of the model this edit fits."""
        return (self.n_layers, self.n_heads, self.d_head)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["layers"] = list(self.layers) if self.layers is not None else None
        if self.heads is not None:
            from jola_lens.heads import head_name

            data["heads"] = {kind: [head_name(h) for h in head_set] for kind, head_set in self.heads.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JoLAConfig:
        check_known_fields(cls, data)
        data = dict(data)
        if data.get("layers") is not None:
            data["layers"] = tuple(data["layers"])
        return cls(**data)

    def replace(self, **changes: Any) -> JoLAConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
