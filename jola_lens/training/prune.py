"""Pruning a trained run after the fact: the run folder ``jola-lens train --keep_heads K`` would have written.

``--keep_heads`` prunes the kept edit once training is over (:meth:`~jola_lens.edit.JoLAEdit.pruned`), so the
same run pruned later is the same run: :func:`prune_run` copies a finished run folder's settings (with
``keep_heads`` set), training items, training log and gate snapshots, and writes the pruned edit, without training
or scoring anything. Score the new folder with ``jola-lens eval --edit DIR`` (a sweep with the same settings finds
it trained and only scores it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from jola_lens import atomic
from jola_lens.methods import read_method_record
from jola_lens.methods.jola import JoLAAdapter
from jola_lens.run_folder import RunFolder
from jola_lens.training.config import TrainConfig
from jola_lens.training.output_dir import OutputDirError, clear_run

logger = logging.getLogger(__name__)


def prune_run(source: str | os.PathLike, keep: int | float, output_dir: str | os.PathLike, *,
              overwrite: bool = False) -> RunFolder:
    """Write the run folder of ``source``'s run trained with ``keep_heads=keep`` into ``output_dir`` (unscored)."""
    run = RunFolder(source).require()
    config = run.read_config()
    train = TrainConfig.from_dict(config["train"])
    if train.keep_heads is not None:
        raise ValueError(f"{run.root} is already pruned (keep_heads {train.keep_heads}); prune the run it was made "
                         "from")
    record = read_method_record(run.edit_dir) or {"method": "jola", "settings": {"ablation": "none"}}
    if record["method"] != "jola":
        raise ValueError(f"--keep_heads keeps the heads with the highest gate logits, but {run.root} was trained "
                         f"with --method {record['method']}, which has no head gates")
    pruned = run.load_edit().pruned(keep)
    output = RunFolder(output_dir)
    if output.root.resolve() == run.root.resolve():
        raise OutputDirError(f"--output_dir {output.root} is the run being pruned; choose a new folder")
    if output.root.is_dir() and any(output.root.iterdir()):
        if not overwrite:
            raise OutputDirError(f"--output_dir {output.root} is not empty; choose a new folder, or pass --overwrite "
                                 "to replace the run in it")
        clear_run(output)
    output.root.mkdir(parents=True, exist_ok=True)
    for name in (run.train_items.name, run.train_log.name):
        if (run.root / name).is_file():
            shutil.copy2(run.root / name, output.root / name)
    if run.gates_dir.is_dir():
        shutil.copytree(run.gates_dir, output.gates_dir, dirs_exist_ok=True)
    adapter = JoLAAdapter(pruned, None, record["settings"], forward=_no_forward)
    adapter.save(output.edit_dir)
    metrics = json.loads(run.metrics.read_text(encoding="utf-8")) if run.metrics.is_file() else {}
    if "training" in metrics:
        from jola_lens.training.pipeline import head_counts

        metrics = {"training": metrics["training"] | {"heads": head_counts(pruned),
                                                      "trainable_parameters": adapter.num_trainable_parameters()}}
        atomic.write_json(output.metrics, metrics)
    config["train"] = config["train"] | {"keep_heads": keep}
    atomic.write_json(output.config, config)  # last: a folder without config.json is not a run yet
    logger.info("pruned %s to %s in %s", run.root, ", ".join(f"{len(h)} {kind}" for kind, h in
                                                              pruned.config.heads.items()), output.root)
    return output


def _no_forward(*_: object) -> None:
    raise RuntimeError("a pruned copy is only saved; load the run folder to run it")


def default_pruned_dir(source: str | os.PathLike, keep: int | float) -> Path:
    """<run>-keep<K> beside the run."""
    source = Path(source)
    return source.with_name(f"{source.name}-keep{keep}")
