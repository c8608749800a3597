"""What analysis reads: JoLAEdit objects, saved edit folders or run folders, each with a task and model label."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from jaxtyping import Float
from torch import Tensor

from jola_lens.edit import JoLAEdit
from jola_lens.run_folder import NotARunError, RunFolder
from jola_lens.serialization import CONFIG_NAME, WEIGHTS_NAME

logger = logging.getLogger(__name__)

UNKNOWN_MODEL = "unknown model"


class NoHeadGatesError(ValueError):
    """A run whose adapter edits weight matrices (LoRA, IA3), not attention heads: nothing to analyse."""


@dataclass(frozen=True)
class EditSource:
    """One edit to analyse. ``label`` is unique among the sources analysed together (it names rows and panels)."""

    label: str
    task: str
    model: str
    edit: JoLAEdit
    run: RunFolder | None = None

    @cached_property
    def snapshots(self) -> list[tuple[int, int, dict[str, Float[Tensor, "edited_layer head"]]]]:
        """The run's gate-logit snapshots ``(epoch, step, {kind: logits})``; empty without a run folder."""
        return self.run.read_gate_snapshots() if self.run is not None else []

    @cached_property
    def initial_logits(self) -> dict[str, Float[Tensor, "edited_layer head"]] | None:
        """Gate logits before training (the epoch-0 snapshot), or None when the run has none."""
        for epoch, _, logits in self.snapshots:
            if epoch != 0:
                continue
            expected = {kind: tuple(t.shape) for kind in self.edit.config.edit_kinds
                        if (t := self.edit.gate_logits(kind)) is not None}
            found = {kind: tuple(t.shape) for kind, t in logits.items()}
            if found != expected:
                logger.warning("%s: epoch-0 gate snapshot has shapes %s, the edit %s; ignoring it",
                               self.label, found, expected)
                return None
            return logits
        return None


SourceLike = EditSource | JoLAEdit | str | os.PathLike


def load_source(item: SourceLike, *, task: str | None = None) -> EditSource:
    """An :class:`EditSource` from an edit object, a saved edit folder or a run folder.

    The task label comes from the run's config.json (``task_name``, the canonical name the trainer resolved,
    else ``task``), else the folder name; the model from config.json (``model_name``, else ``model``), else the
    edit's ``config.base_model``. ``task`` overrides the label.
    """
    if isinstance(item, EditSource):
        return item
    if isinstance(item, JoLAEdit):
        label = task or str(item.config.metadata.get("task") or "edit")
        return EditSource(label, label, item.config.base_model or UNKNOWN_MODEL, item.eval())
    path = Path(item)
    run = RunFolder(path)
    if run.is_run():
        config = run.read_config()
        from jola_lens.methods import no_head_gates_reason

        if (reason := no_head_gates_reason(run.edit_dir)) is not None:
            raise NoHeadGatesError(reason)
        edit = run.load_edit()
        label = task or str(config.get("task_name") or config.get("task") or path.resolve().name)
        model = str(config.get("model_name") or config.get("model") or edit.config.base_model or UNKNOWN_MODEL)
        return EditSource(label, label, model, edit, run)
    if (path / CONFIG_NAME).is_file() and (path / WEIGHTS_NAME).is_file():
        edit = JoLAEdit.from_pretrained(path)
        label = task or str(edit.config.metadata.get("task") or path.resolve().name)
        return EditSource(label, label, edit.config.base_model or UNKNOWN_MODEL, edit)
    raise NotARunError(
        f"{path} is neither a jola_lens run folder (config.json and edit/ inside it, written by "
        f"`jola-lens train --output_dir DIR`) nor a saved edit ({CONFIG_NAME} and {WEIGHTS_NAME}, written by "
        "JoLAEdit.save_pretrained)"
    )


def _expand_sweeps(items: Iterable[SourceLike]) -> Iterator[SourceLike]:
    """A sweep folder (``jola-lens sweep``) stands for the run folders of its finished trials."""
    from jola_lens.sweep.folder import sweep_run_folders

    for item in items:
        runs = sweep_run_folders(item) if isinstance(item, (str, os.PathLike)) else None
        yield from [item] if runs is None else runs


def load_sources(items: SourceLike | Iterable[SourceLike]) -> list[EditSource]:
    """Load several sources with unique labels: a repeated task label gets the run folder's name appended,
    and what is still repeated gets #1, #2, ..."""
    if isinstance(items, (EditSource, JoLAEdit, str, os.PathLike)):
        items = [items]
    sources, skipped = [], []
    for item in _expand_sweeps(items):
        try:
            sources.append(load_source(item))
        except NoHeadGatesError as error:
            skipped.append(error)
    if skipped and sources:
        logger.warning("left out %d run(s) without head gates (LoRA, IA3 edit weight matrices, not heads): %s",
                       len(skipped), "; ".join(str(e).split(":")[0] for e in skipped))
    elif skipped:
        raise skipped[0] if len(skipped) == 1 else NoHeadGatesError(
            f"none of the {len(skipped)} runs has head gates to analyse: {skipped[0]}")
    if not sources:
        raise ValueError("nothing to analyse: give at least one edit, edit folder or run folder")
    repeated = {label for label, count in Counter(s.label for s in sources).items() if count > 1}
    labels = [f"{s.label} [{s.run.root.resolve().name}]" if s.label in repeated and s.run is not None else s.label
              for s in sources]
    counts, seen = Counter(labels), Counter()
    for i, label in enumerate(labels):
        if counts[label] > 1:
            seen[label] += 1
            labels[i] = f"{label} #{seen[label]}"
    return [source if label == source.label else replace(source, label=label)
            for source, label in zip(sources, labels)]
