"""Whole runs behind ``jola-lens train`` and ``jola-lens eval``: load the model and task, train, evaluate,
and write the run folder (config.json, edit/, train_log.jsonl, gates/, predictions.jsonl, metrics.json)."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from jola_lens import __version__, atomic
from jola_lens.architectures import find_head_sites
from jola_lens.backends.route import ROUTES, Route, make_route
from jola_lens.edit import JoLAEdit
from jola_lens.evaluation import EvalResult, evaluate, scoring_methods
from jola_lens.heads import resolve_heads_argument
from jola_lens.methods import MethodConfig, build_adapter, check_train_settings, load_adapter, read_method_record
from jola_lens.models import DEFAULT_MODEL, DTYPES, load_model
from jola_lens.run_folder import RunFolder, flatten
from jola_lens.tasks import get_task
from jola_lens.tasks.base import Task
from jola_lens.tasks.choice import FORMULATIONS
from jola_lens.tasks.data_options import DataOptions
from jola_lens.tasks.encoding import encode_example
from jola_lens.tasks.examples import Example
from jola_lens.tasks.prompts import PROMPT_STYLES
from jola_lens.tasks.splits import check_no_overlap
from jola_lens.training.config import TrainConfig
from jola_lens.training.output_dir import prepare_output_dir
from jola_lens.training.stages import train_method
from jola_lens.training.trainer import TrainResult

logger = logging.getLogger(__name__)

APPLIED_MODULES = ("attention",)
PEFT_METHODS = ("lora", "ia3")
RUN_MODES = ("train", "eval", "train_eval")
SOURCES = ("auto", "local", "embedded", "hub")
DEVICES = ("auto", "cpu", "cuda")
LOCATION_FIELDS = ("data_dir", "device", "device_map")  # where things are, not what the run is


@dataclass(frozen=True)
class RunSpec:
    """What a run trains or evaluates on: task, model, backend, data formulation and sampling."""

    task: str = "extra/SST-2"
    subtask: str | None = None
    model: str | None = None
    backend: str = "hf"
    formulation: str = "label"
    prompt_style: str = "alpaca"
    source: str = "auto"
    applied_module: str = "attention"
    train_size: int = 200
    val_size: int = 200
    data_dir: str | None = None
    device: str = "auto"
    dtype: str = "float32"
    device_map: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)  # how user data is read, see tasks/data_options.py

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_options", DataOptions.parse(**self.data_options).to_dict())
        if self.applied_module not in APPLIED_MODULES:
            raise ValueError(f"applied_module {self.applied_module!r} is not supported: jola_lens edits attention-head "
                             "outputs only (the paper's 'attention'); MLP or residual edits are not implemented")
        for name, allowed in (("backend", ROUTES), ("formulation", FORMULATIONS), ("prompt_style", PROMPT_STYLES),
                              ("source", SOURCES), ("device", DEVICES), ("dtype", tuple(DTYPES))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; choose one of {allowed}")
        for name in ("train_size", "val_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.device_map is not None and self.device != "auto":
            raise ValueError(f"device_map {self.device_map!r} places the model itself; leave device at 'auto' "
                             f"(got {self.device!r})")

    def identity(self, train: TrainConfig) -> dict[str, Any]:
        """The settings that define a run's result (compared before resuming it); dtype only when not float32,
        so runs from before dtype existed still resume."""
        spec = {k: v for k, v in asdict(self).items()
                if k not in LOCATION_FIELDS and not (k == "dtype" and v == "float32")}
        return spec | {"train": train.to_dict()}

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


@dataclass
class RunOutcome:
    """What a run produced: the run folder, metrics.json's sections and where the results line went."""

    output_dir: Path
    metrics: dict[str, Any]
    results_file: Path | None
    seconds: float
    resumed: bool = False


def load_task(spec: RunSpec) -> Task:
    return get_task(spec.task, subtask=spec.subtask, data_dir=spec.data_dir, source=spec.source,
                    formulation=spec.formulation, data_options=spec.data_options)


def load_backend(spec: RunSpec) -> tuple[Route, Any]:
    """The frozen model on ``spec``'s device, wrapped for ``spec.backend``, and its tokenizer."""
    model, tokenizer = load_model(spec.model, dtype=spec.dtype, device_map=spec.device_map)
    if spec.device_map is None:
        model.to(spec.torch_device())
    return make_route(spec.backend, model, tokenizer), tokenizer


# ---- train -------------------------------------------------------------------------------------------
def train_run(spec: RunSpec, config: TrainConfig, output_dir: str | Path, *, run_mode: str = "train",
              scoring: str = "generation", limit: int | None = None, results_file: str | Path | None = None,
              overwrite: bool = False, resume: bool = False, progress: bool = True,
              method: MethodConfig | None = None) -> RunOutcome:
    """Train ``method`` (default: JoLA) into the run folder ``output_dir`` (resuming it when it holds this very run),
    then evaluate it on the test set when ``run_mode`` is 'train_eval' ('eval' only evaluates the saved run)."""
    method = method or MethodConfig()
    check_train_settings(method, config)
    if run_mode not in RUN_MODES:
        raise ValueError(f"unknown run_mode {run_mode!r}; choose one of {RUN_MODES}")
    scoring_methods(scoring)
    folder = RunFolder(output_dir)
    if run_mode == "eval":
        return eval_run(folder.root, scoring=scoring, limit=limit, results_file=results_file, progress=progress,
                        overrides={"backend": spec.backend, "device": spec.device, "data_dir": spec.data_dir},
                        eval_batch=config.eval_batch)
    start = time.monotonic()
    task = load_task(spec)
    splits = task.splits(train_size=spec.train_size, val_size=spec.val_size, seed=config.seed)
    logger.info("%s (%s source, %s targets): %d training, %d validation, %d test examples", task.name, task.source,
                task.formulation, len(splits.train), len(splits.validation), len(splits.test))
    identity = spec.identity(config) | method.identity()
    prepare_output_dir(folder, identity, overwrite=overwrite, resume=resume)
    backend, tokenizer = load_backend(spec)
    jola_fields = {"gate_init": config.gate_init, "init_std": config.init_std,
                   "heads": edit_heads(backend.hf_model, config.heads)}
    first = build_adapter(method, backend, seed=config.seed, **{k: v for k, v in jola_fields.items() if v is not None})

    def encode(examples: list[Example], split: str) -> list:
        encoded = []
        for e in examples:
            try:
                encoded.append(encode_example(tokenizer, task.prompt(e, spec.prompt_style, tokenizer), e.target,
                                              config.max_length))
            except ValueError as error:
                raise ValueError(f"{split} example {e.id}: {error}; raise --max_length") from None
        return encoded

    train_items, validation_items = encode(splits.train, "training"), encode(splits.validation, "validation")
    folder.write_config(identity, {
        "edit": first.edit.config.to_dict() if method.method == "jola" else None,
        "method_config": method.to_dict(), "model_name": spec.model or DEFAULT_MODEL, "task_name": task.name,
        "task_kind": task.kind, "task_source": task.source, "n_train": len(splits.train),
        "n_validation": len(splits.validation), "data_dir": spec.data_dir, "device": spec.device,
        "device_map": spec.device_map,
        "library_version": __version__})
    folder.write_train_items({"train": splits.train, "validation": splits.validation})
    result, earlier = train_method(method, backend, train_items, validation_items, config,
                                   pad_token_id=tokenizer.pad_token_id, run=folder, fingerprint=flatten(identity),
                                   progress=progress, first=first, **jola_fields)
    if config.keep_heads is not None:
        prune_kept_edit(result, config.keep_heads, folder if config.save_strategy != "no" else None)
    summary = training_summary(result, config) | (
        {"stages": {name: training_summary(r, config) for name, r in earlier.items()}} if earlier else {})
    metrics = update_metrics(folder, training=summary)
    outcome = RunOutcome(folder.root, metrics, None, time.monotonic() - start, result.resumed)
    if run_mode == "train_eval":
        test = _limited(task.load_split("test"), limit)
        check_no_overlap(splits.train + splits.validation, test)
        evaluation = evaluate(backend, tokenizer, task, test, result.adapter, scoring=scoring,
                              prompt_style=spec.prompt_style, batch_size=config.eval_batch,
                              max_length=config.max_length, progress=progress)
        kept = str(folder.edit_dir) if config.save_strategy != "no" else "in memory (--save_strategy no)"
        section = evaluation_section(spec, task, evaluation, scoring, limit, config.eval_batch, kept,
                                     head_counts(result.edit), method=result.adapter.method)
        outcome.metrics = write_evaluation(folder, section, evaluation)
    outcome.results_file = append_result(results_file, folder.root, outcome.metrics, identity)
    outcome.seconds = time.monotonic() - start
    return outcome


def prune_kept_edit(result: TrainResult, keep: int | float, folder: RunFolder | None) -> None:
    """``--keep_heads``: the kept edit pruned to its ``keep`` heads per gate kind with the highest gate logits
    (:meth:`JoLAEdit.pruned`), in ``result`` and in the run folder's edit/ (a resumed run prunes the same heads
    again)."""
    pruned = result.edit.pruned(keep)
    result.adapter.edit = pruned
    result.edit = pruned
    if folder is not None:
        result.adapter.save(folder.edit_dir)
    logger.info("kept edit pruned to %s", ", ".join(f"{int(mask.sum())} {kind}" for kind, mask
                                                     in pruned.selected_heads().items()))


def edit_heads(hf_model: Any, spec: str | None) -> Any:
    """``TrainConfig.heads`` read for this model (a spec, or a head file checked against the model's shape)."""
    if spec is None:
        return None
    sites = find_head_sites(hf_model)
    return resolve_heads_argument(spec, n_layers=sites.n_layers, n_heads=sites.n_heads)


def training_summary(result: TrainResult, config: TrainConfig) -> dict[str, Any]:
    state = result.state
    return {"best_epoch": state.best_epoch, "best_val_loss": state.best_val_loss, "val_losses": state.val_losses,
            "epochs": state.epochs_done, "steps": state.global_step, "stop_reason": state.stop_reason,
            "kept": config.save_strategy, "train_seconds": state.train_seconds,
            "method": result.adapter.method, "trainable_parameters": result.adapter.num_trainable_parameters(),
            "heads": head_counts(result.edit)}


def head_counts(edit: JoLAEdit | None) -> dict[str, dict[str, int]] | None:
    """Heads each edit kind keeps (deterministic gate > 0, inside its head set) and closes; None without a JoLA
    edit (LoRA, IA3)."""
    if edit is None:
        return None
    return {kind: {"kept": int(mask.sum()), "closed": int((~mask).sum()), "total": mask.numel()}
            for kind, mask in edit.selected_heads().items()}


# ---- eval --------------------------------------------------------------------------------------------
def eval_run(edit_path: str | Path | None, *, overrides: dict[str, Any] | None = None, scoring: str = "generation",
             limit: int | None = None, output_dir: str | Path | None = None, results_file: str | Path | None = None,
             eval_batch: int | None = None, max_length: int | None = None, progress: bool = True) -> RunOutcome:
    """Evaluate a run folder's edit, a saved edit folder, or (``edit_path`` None) the bare model on a test set.

    Settings come from ``overrides`` (None values ignored), else from the run's config.json, else defaults.
    Refuses when the run's training or validation items overlap the test items.
    """
    start = time.monotonic()
    scoring_methods(scoring)
    run = RunFolder(edit_path) if edit_path is not None and RunFolder(edit_path).config.is_file() else None
    saved = run.read_config() if run is not None else {}
    edit_dir = (run.require().edit_dir if run is not None else Path(edit_path)) if edit_path is not None else None
    record = read_method_record(edit_dir) if edit_dir is not None else None
    peft_adapter = record is not None and record["method"] in PEFT_METHODS
    edit = JoLAEdit.from_pretrained(edit_dir) if edit_dir is not None and not peft_adapter else None
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if edit is not None and run is None and "model" not in given and edit.config.base_model not in (None, DEFAULT_MODEL):
        given["model"] = edit.config.base_model
    if "data_options" in given:  # data flags given at evaluation add to those the run was trained with
        given["data_options"] = saved.get("data_options", {}) | given["data_options"]
    names = {f.name for f in fields(RunSpec)}
    spec = RunSpec(**({k: v for k, v in saved.items() if k in names} | given))
    train_config = TrainConfig.from_dict(saved["train"]) if "train" in saved else TrainConfig()
    eval_batch = eval_batch or train_config.eval_batch
    max_length = max_length or train_config.max_length
    task = load_task(spec)
    test = _limited(task.load_split("test"), limit)
    if run is not None:
        check_no_overlap(run.read_train_items(), test)
    elif edit_dir is not None:
        logger.warning("%s is not a run folder: cannot check that its training items are not test items", edit_path)
    backend, tokenizer = load_backend(spec)
    adapter = load_adapter(edit_dir, backend) if edit_dir is not None else None
    evaluation = evaluate(backend, tokenizer, task, test, adapter, scoring=scoring, prompt_style=spec.prompt_style,
                          batch_size=eval_batch, max_length=max_length, progress=progress)
    folder = RunFolder(output_dir) if output_dir is not None else run or RunFolder(default_eval_dir(spec, edit_path))
    section = evaluation_section(spec, task, evaluation, scoring, limit, eval_batch,
                                 str(edit_path) if edit_path is not None else None,
                                 head_counts(adapter.head_edit()) if adapter is not None else None,
                                 method=adapter.method if adapter is not None else None)
    metrics = write_evaluation(folder, section, evaluation)
    identity = spec.identity(train_config) | MethodConfig.from_identity(saved).identity() if run is not None else {
        k: v for k, v in asdict(spec).items() if k not in LOCATION_FIELDS}
    written = append_result(results_file, folder.root, metrics, identity)
    return RunOutcome(folder.root, metrics, written, time.monotonic() - start)


def _slug(spec: RunSpec) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{spec.task}-{spec.subtask or ''}").strip("-")


def default_train_dir(spec: RunSpec, seed: int) -> Path:
    """runs/<task>[-<subtask>]-seed<seed>: the same command finds the same folder (and resumes it)."""
    return Path("runs") / f"{_slug(spec)}-seed{seed}"


def default_eval_dir(spec: RunSpec, edit_path: str | Path | None) -> Path:
    return Path("runs") / f"eval-{_slug(spec)}-{Path(edit_path).name if edit_path else 'zeroshot'}"


def _limited(examples: list[Example], limit: int | None) -> list[Example]:
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be a positive integer, got {limit}")
    return examples[:limit] if limit else examples


def evaluation_section(spec: RunSpec, task: Task, result: EvalResult, scoring: str, limit: int | None,
                       eval_batch: int, edit: str | None, heads: dict[str, dict[str, int]] | None,
                       method: str | None = None) -> dict[str, Any]:
    """metrics.json's "evaluation": the numbers and every setting that produced them."""
    n = len(result.records)
    return {"task": task.name, "split": "test", "n": n, "limit": limit, "scoring": scoring,
            "formulation": task.formulation, "prompt_style": spec.prompt_style, "source": task.source,
            "model": spec.model or DEFAULT_MODEL, "backend": spec.backend, "edit": edit, "method": method,
            "heads": heads,
            "eval_batch": eval_batch,
            "likelihood_normalization": "characters" if "likelihood" in result.metrics else None,
            "results": result.metrics, "seconds": result.seconds, "seconds_per_example": result.seconds / max(n, 1)}


def write_evaluation(folder: RunFolder, section: dict[str, Any], result: EvalResult) -> dict[str, Any]:
    """Write predictions.jsonl and the "evaluation" section of metrics.json (other sections kept)."""
    atomic.write_text(folder.predictions, "".join(json.dumps(r, sort_keys=True, default=str) + "\n"
                                                  for r in result.records))
    return update_metrics(folder, evaluation=section)


def update_metrics(folder: RunFolder, **sections: dict[str, Any]) -> dict[str, Any]:
    """Replace some sections of metrics.json ("training", "evaluation"), keeping the others."""
    metrics = json.loads(folder.metrics.read_text(encoding="utf-8")) if folder.metrics.is_file() else {}
    metrics.update(sections)
    atomic.write_json(folder.metrics, metrics)
    return metrics


def append_result(results_file: str | Path | None, output_dir: Path, metrics: dict[str, Any],
                  identity: dict[str, Any]) -> Path:
    """Append one comparable line (settings + numbers) to the results JSONL (default: beside the run)."""
    path = Path(results_file) if results_file is not None else RunFolder(output_dir).default_results_file
    evaluation = metrics.get("evaluation", {})
    training = metrics.get("training", {})
    record = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "output_dir": str(output_dir),
              **flatten(identity), **flatten(evaluation.get("results", {}), "metric."),
              "n": evaluation.get("n"), "scoring": evaluation.get("scoring"), "edit": evaluation.get("edit"),
              "method": training.get("method") or evaluation.get("method"),
              "trainable_parameters": training.get("trainable_parameters"),
              "task_source": evaluation.get("source"),
              "best_epoch": training.get("best_epoch"), "best_val_loss": training.get("best_val_loss"),
              **{f"heads_closed.{kind}": counts["closed"]
                 for kind, counts in (training.get("heads") or evaluation.get("heads") or {}).items()}}
    atomic.append_jsonl(path, record)
    return path
