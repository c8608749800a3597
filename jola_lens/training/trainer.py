"""The training loop of the spec: completion-only CE + scheduled gate penalty, AdamW, cosine warm-up,
validation every epoch, best-by-validation-loss, early stopping, checkpoints that resume exactly."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from jola_lens.backends.head import adapter_logits_at
from jola_lens.batching import Batch, collate, epoch_batches, length_groups
from jola_lens.config import EDIT_KINDS
from jola_lens.edit import JoLAEdit
from jola_lens.gates import GateSchedule
from jola_lens.loss import Targets, completion_loss_at, token_logprobs
from jola_lens.methods.base import Adapter
from jola_lens.methods.jola import JoLAAdapter
from jola_lens.run_folder import RunFolder
from jola_lens.tasks.encoding import EncodedExample
from jola_lens.training.checkpoint import TrainState, has_checkpoint, load_checkpoint, save_checkpoint
from jola_lens.training.config import TrainConfig
from jola_lens.training.interrupt import StopRequest, TrainingInterrupted
from jola_lens.training.rng import seed_everything
from jola_lens.training.sparsity import PenaltyRamp, SparsityTarget

logger = logging.getLogger(__name__)

ForwardFn = Callable[[JoLAEdit, Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]], Float[Tensor, "batch pos vocab"]]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the step was not applied."""

    def __init__(self, step: int, epoch: int, value: float, last_good_epoch: int) -> None:
        self.step, self.epoch, self.value, self.last_good_epoch = step, epoch, value, last_good_epoch
        super().__init__(
            f"the training loss is {value} at step {step} (epoch {epoch}); training stopped before applying it. "
            f"The run folder keeps the last good checkpoint (after epoch {last_good_epoch}). "
            "Try a lower --lr / --gate_lr or --penalty_scale."
        )


@dataclass
class TrainResult:
    """The kept adapter (best or last epoch, per ``save_strategy``) and the run's final progress; ``edit`` is its
    JoLA edit (JoLA, LoFiT; None for LoRA / IA3)."""

    edit: JoLAEdit | None
    state: TrainState
    resumed: bool
    adapter: Adapter | None = None


class Trainer:
    """Train ``edit`` on encoded examples: a method's :class:`~jola_lens.methods.Adapter` (``forward`` None), or a
    JoLAEdit with ``forward`` (a backend's forward with the model bound).

    With ``run`` set, writes the run folder's train_log.jsonl, gate snapshots, edit/ and checkpoint/, and
    resumes from checkpoint/ if one exists (``fingerprint`` must match the one saved with it).
    ``on_step(record)`` and ``on_epoch(epoch, val_loss)`` are called after each step / finished epoch
    (after its checkpoint); ``validation_loss_fn(epoch)`` replaces the validation-loss computation.
    ``stop.set()`` asks the loop to checkpoint and raise :class:`TrainingInterrupted` at the next boundary.
    """

    def __init__(self, edit: JoLAEdit | Adapter, forward: ForwardFn | None, train: Sequence[EncodedExample],
                 validation: Sequence[EncodedExample], config: TrainConfig, *, pad_token_id: int,
                 device: torch.device | str = "cpu", run: RunFolder | None = None,
                 fingerprint: dict[str, Any] | None = None, progress: bool = True,
                 on_step: Callable[[dict[str, Any]], None] | None = None,
                 on_epoch: Callable[[int, float], None] | None = None,
                 validation_loss_fn: Callable[[int], float] | None = None) -> None:
        if not train or not validation:
            raise ValueError(f"training needs examples in both splits (train: {len(train)}, "
                             f"validation: {len(validation)})")
        self.adapter = (edit if isinstance(edit, Adapter) else JoLAAdapter.from_forward(edit, forward)).to(device)
        self.edit, self.config = self.adapter.head_edit(), config
        self.train_examples, self.pad_token_id, self.device = list(train), pad_token_id, torch.device(device)
        self.run, self.fingerprint, self.progress = run, fingerprint or {}, progress
        self.on_step, self.on_epoch, self.validation_loss_fn = on_step, on_epoch, validation_loss_fn
        self.stop = StopRequest()
        self.noise_generator = self._gate_noise()
        self.steps_per_epoch = math.ceil(len(train) / config.train_batch)
        self.total_steps = self.steps_per_epoch * config.num_epoch
        self.val_batches = [collate([validation[i] for i in group], pad_token_id).to(self.device)
                            for group in length_groups([len(e.input_ids) for e in validation], config.eval_batch)]
        groups = self.adapter.parameter_groups(config.lr, config.gate_lr)
        self.params = [p for group in groups for p in group["params"]]
        self.optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = get_cosine_schedule_with_warmup(self.optimizer, config.warmup_steps, self.total_steps)
        self.gate_schedule = GateSchedule(config.gate_scheduler, self.total_steps, config.gate_lambda)
        self.penalty_ramp = PenaltyRamp(config.penalty_delay, config.penalty_warmup)
        if config.target_heads is not None and self.adapter.head_gates() is None:
            raise ValueError(f"--target_heads holds gates open, but --method {self.adapter.method} has no head gates")
        self.sparsity_target = (None if config.target_heads is None else
                                SparsityTarget(self.edit, config.target_heads, config.target_warmup, config.target_lr))
        self._best_state: dict[str, Tensor] | None = None
        self._clock = time.monotonic()

    def _gate_noise(self) -> torch.Generator | None:
        """Set the edit's gate noise from the config; the noise's own generator (None: the global stream)."""
        if self.edit is None:
            return None
        self.edit.sample_training_gates = self.config.gate_noise == "sample"
        generator = None
        if self.config.gate_noise_seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(self.config.gate_noise_seed)
        self.edit.noise_generator = generator
        return generator

    @property
    def keeps_checkpoints(self) -> bool:
        return self.run is not None and self.config.save_strategy != "no"

    # ---- the run ---------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train until the last epoch or early stopping; return the kept edit."""
        state, resumed = self._start()
        bar = tqdm(total=self.total_steps, initial=state.global_step, unit="step", disable=not self.progress,
                   dynamic_ncols=True)
        try:
            with self.stop:
                while not state.finished:
                    epoch = state.epochs_done + 1
                    bar.set_description(f"epoch {epoch}/{self.config.num_epoch}")
                    self._train_epoch(state, epoch, bar)
                    self._end_epoch(state, epoch, self._validate(state, epoch))
        finally:
            bar.close()
        if self.config.save_strategy == "best" and self._best_state is not None:
            self.adapter.load_state_dict(self._best_state)
        self.adapter.eval()
        return TrainResult(self.edit, state, resumed, self.adapter)

    def _start(self) -> tuple[TrainState, bool]:
        if self.keeps_checkpoints and has_checkpoint(self.run.checkpoint_dir):
            if self.config.save_strategy == "best" and self.run.edit_dir.is_dir():
                # before the random states are restored: building an edit draws random numbers
                self._best_state = self.adapter.read_state(self.run.edit_dir)
            state = load_checkpoint(self.run.checkpoint_dir, edit=self.adapter, optimizer=self.optimizer,
                                    scheduler=self.scheduler, gate_schedule=self.gate_schedule,
                                    fingerprint=self.fingerprint, noise_generator=self.noise_generator)
            if self.sparsity_target is not None and state.sparsity_target is not None:
                self.sparsity_target.load_state(state.sparsity_target)
            self.run.truncate_train_log(state.global_step)
            logger.info("resuming from %s: %d epoch(s) and %d step(s) done%s", self.run.checkpoint_dir,
                        state.epochs_done, state.global_step, " (training already finished)" if state.finished else "")
            return state, True
        seed_everything(self.config.seed)
        if self.run is not None:
            self.run.train_log.unlink(missing_ok=True)
            self._gate_snapshot(epoch=0, step=0)
        return TrainState(), False

    def _train_epoch(self, state: TrainState, epoch: int, bar: tqdm) -> None:
        groups = epoch_batches([len(e.input_ids) for e in self.train_examples], self.config.train_batch,
                               self.config.seed, epoch, self.config.group_by_length)
        self.adapter.train()
        for index in range(state.batches_done, len(groups)):
            if self.stop.requested:
                self._interrupt(state, epoch)
            batch = collate([self.train_examples[i] for i in groups[index]], self.pad_token_id).to(self.device)
            record = self._step(batch, state, epoch)
            state.batches_done = index + 1
            if self.run is not None:
                self.run.append_train_log(record)
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.4f}", **{
                f"open_{kind[0]}": f"{record[f'open_{kind}']:.0%}" for kind in EDIT_KINDS
                if record[f"open_{kind}"] is not None}, refresh=False)
            if self.on_step is not None:
                self.on_step(record)

    def _step(self, batch: Batch, state: TrainState, epoch: int) -> dict[str, Any]:
        lam = self.gate_schedule.value
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        targets = Targets.from_labels(batch.labels)  # the head projects only where a target token is predicted
        ce = completion_loss_at(adapter_logits_at(self.adapter, batch.input_ids, batch.attention_mask,
                                                  targets.positions), targets)
        if self.sparsity_target is not None:
            penalty = self.sparsity_target.loss(self.edit, state.global_step)
        else:
            penalty = (self.adapter.penalty(lam) * self.config.penalty_scale
                       * self.penalty_ramp.factor(state.global_step))
        loss = ce + penalty
        if not torch.isfinite(loss):
            raise NonFiniteLossError(state.global_step + 1, epoch, loss.item(), state.epochs_done)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        if self.sparsity_target is not None:
            self.sparsity_target.step()
        loss_value = loss.item()
        self.gate_schedule.step(loss_value)
        state.global_step += 1
        return {"step": state.global_step, "epoch": epoch, "loss": loss_value, "ce": ce.item(),
                "penalty": penalty.item(), "lam": lam, "lr": lrs[0], "gate_lr": lrs[-1] if len(lrs) > 1 else None,
                **{f"open_{kind}": share for kind, share in open_shares(self.adapter).items()}}

    @torch.inference_mode()
    def _validate(self, state: TrainState, epoch: int) -> float:
        """Mean CE per target token over the validation sample (deterministic gates, no penalty)."""
        if self.validation_loss_fn is not None:
            return self.validation_loss_fn(epoch)
        self.adapter.eval()
        total, count = 0.0, 0
        for batch in tqdm(self.val_batches, desc="validation", leave=False, disable=not self.progress):
            if self.stop.requested:
                self._interrupt(state, epoch)
            targets = Targets.from_labels(batch.labels)
            logprobs = token_logprobs(adapter_logits_at(self.adapter, batch.input_ids, batch.attention_mask,
                                                        targets.positions), targets.tokens)
            total -= logprobs.sum().item()
            count += logprobs.numel()
        return total / count

    def _end_epoch(self, state: TrainState, epoch: int, val_loss: float) -> None:
        state.val_losses.append(val_loss)
        # with a sparsity target only epochs that end at the target compete, so runs are kept at equal sparsity
        if self.sparsity_target is not None and not self.sparsity_target.reached(self.edit, state.global_step):
            logger.info("epoch %d: the sparsity target is not reached yet; this epoch is not a candidate", epoch)
        elif state.best_val_loss is None or val_loss < state.best_val_loss:
            state.best_val_loss, state.best_epoch, state.bad_epochs = val_loss, epoch, 0
            if self.config.save_strategy == "best":
                self._best_state = {k: v.detach().clone() for k, v in self.adapter.state_dict().items()}
                if self.run is not None:
                    self.adapter.save(self.run.edit_dir)
        else:
            state.bad_epochs += 1
        state.epochs_done, state.batches_done = epoch, 0
        if epoch == self.config.num_epoch:
            state.stop_reason = "completed"
        elif self.config.patience and state.bad_epochs >= self.config.patience:
            state.stop_reason = "early_stopping"
        if self.run is not None:
            self._gate_snapshot(epoch=epoch, step=state.global_step)
            if state.finished and self.config.save_strategy == "last":
                self.adapter.save(self.run.edit_dir)
            elif state.finished and self.config.save_strategy == "best" and self._best_state is None:
                logger.warning("no epoch reached the sparsity target of %d heads; keeping the last epoch (train "
                               "longer or raise --target_lr)", self.sparsity_target.target)
                self.adapter.save(self.run.edit_dir)
        self._checkpoint(state)
        shares = open_shares(self.adapter)
        best = ("none yet" if state.best_epoch is None
                else f"best {state.best_val_loss:.4f}, epoch {state.best_epoch}")
        logger.info("epoch %d/%d: validation loss %.4f (%s); open gates: %s%s", epoch,
                    self.config.num_epoch, val_loss, best,
                    ", ".join(f"{k} {v:.0%}" for k, v in shares.items() if v is not None),
                    "; early stopping" if state.stop_reason == "early_stopping" else "")
        if self.on_epoch is not None:
            self.on_epoch(epoch, val_loss)

    def _gate_snapshot(self, epoch: int, step: int) -> None:
        gated = self.adapter.head_gates()
        if gated is not None:
            self.run.write_gate_snapshot(gated, epoch=epoch, step=step)

    # ---- checkpoints -----------------------------------------------------------------------------
    def _checkpoint(self, state: TrainState) -> None:
        now = time.monotonic()
        state.train_seconds += now - self._clock
        self._clock = now
        if self.sparsity_target is not None:
            state.sparsity_target = self.sparsity_target.state()
        if self.keeps_checkpoints:
            save_checkpoint(self.run.checkpoint_dir, edit=self.adapter, optimizer=self.optimizer,
                            scheduler=self.scheduler, gate_schedule=self.gate_schedule, state=state,
                            fingerprint=self.fingerprint, noise_generator=self.noise_generator)

    def _interrupt(self, state: TrainState, epoch: int) -> None:
        self._checkpoint(state)
        raise TrainingInterrupted(epoch, state.global_step,
                                  str(self.run.checkpoint_dir) if self.keeps_checkpoints else None)


def open_shares(edit: JoLAEdit | Adapter) -> dict[str, float | None]:
    """Share of heads whose deterministic gate is > 0, per edit kind (None for a kind switched off, and for every
    kind of a method without a JoLA edit)."""
    if isinstance(edit, Adapter):
        edit = edit.head_edit()
    selected = edit.selected_heads() if edit is not None else {}
    return {kind: selected[kind].float().mean().item() if kind in selected else None for kind in EDIT_KINDS}
