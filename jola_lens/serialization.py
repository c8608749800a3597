"""save_pretrained / from_pretrained for JoLA edits: a JSON config and safetensors tensors, no pickle."""

from __future__ import annotations

import os
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from jola_lens import atomic
from jola_lens.config import JoLAConfig
from jola_lens.edit import JoLAEdit, NonFiniteEditError, non_finite_report

CONFIG_NAME = "jola_config.json"
WEIGHTS_NAME = "jola_edit.safetensors"
FORMAT_VERSION = 1


class EditFileError(ValueError):
    """A saved edit's files are damaged or do not describe one edit."""


def save_edit(edit: JoLAEdit, directory: str | os.PathLike) -> None:
    """Write ``jola_config.json`` and ``jola_edit.safetensors`` into ``directory`` (each atomically); an edit whose
    parameters hold NaN/inf is refused (:class:`~jola_lens.edit.NonFiniteEditError`, naming each parameter)."""
    from jola_lens import __version__

    edit.check_finite("save")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: p.detach().cpu().contiguous().float() for name, p in edit.named_parameters()}
    with atomic.atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "jola_lens", "format_version": str(FORMAT_VERSION)})
    record = {"format_version": FORMAT_VERSION, "library_version": __version__, **edit.config.to_dict()}
    atomic.write_json(directory / CONFIG_NAME, record)


def load_edit(directory: str | os.PathLike) -> JoLAEdit:
    """Rebuild an edit written by :func:`save_edit`, in eval mode (deterministic gates)."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: a saved JoLA edit is a folder holding {CONFIG_NAME} and {WEIGHTS_NAME} "
                "(written by JoLAEdit.save_pretrained)"
            )
    record = atomic.read_versioned_json(config_path, FORMAT_VERSION, error=EditFileError,
                                        damaged="the edit file is damaged: save the edit again with "
                                                "JoLAEdit.save_pretrained")
    record.pop("format_version")
    record.pop("library_version", None)
    edit = JoLAEdit(JoLAConfig.from_dict(record))
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError) as error:
        raise EditFileError(
            f"{weights_path} is damaged (safetensors: {error}); it is not a complete edit file. Save the edit again "
            "with JoLAEdit.save_pretrained, or restore the folder from a checkpoint or copy") from error
    expected = {name: tuple(p.shape) for name, p in edit.named_parameters()}
    found = {name: tuple(t.shape) for name, t in tensors.items()}
    if expected != found:
        raise EditFileError(f"{weights_path} holds tensors {found}, but its config describes {expected}")
    report = non_finite_report(tensors)
    if report:
        raise NonFiniteEditError(f"{weights_path}: " + "; ".join(report) + "; refusing to load an edit that would "
                                 "turn every logit into NaN. Use an earlier checkpoint of the run")
    edit.load_state_dict(tensors)
    return edit.eval()
