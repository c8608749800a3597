"""Capture and restore the random states (torch CPU and CUDA, Python ``random``, NumPy) as tensors + JSON."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch import Tensor


def seed_everything(seed: int) -> None:
    """Seed Python ``random``, NumPy and torch (every device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The current random states, split into tensors (for safetensors) and JSON scalars."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(keys.astype(np.int64))}
    if torch.cuda.is_available():
        tensors |= {f"cuda.{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())}
    scalars = {"python": [version, list(internal), gauss],
               "numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}}
    return tensors, scalars


def restore_rng(tensors: dict[str, Tensor], scalars: dict[str, Any]) -> None:
    """Put back the states written by :func:`capture_rng`."""
    version, internal, gauss = scalars["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = scalars["numpy"]
    np.random.set_state((numpy["kind"], tensors["numpy_keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["cached"]))
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda.{i}"] for i in range(len(tensors)) if f"cuda.{i}" in tensors]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
