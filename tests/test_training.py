"""The trainer: completion-only loss, learning, best-by-validation, early stopping, exact resume, NaN, mismatch."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from conftest import build_tiny_model
from safetensors.torch import load_file
from test_training_helpers import encoded_splits, tiny_task  # noqa: F401  (fixture)

from jola_lens import JoLAEdit
from jola_lens.backends import hf
from jola_lens.batching import collate, epoch_order
from jola_lens.loss import completion_loss, sequence_logprobs
from jola_lens.run_folder import RunFolder
from jola_lens.serialization import WEIGHTS_NAME
from jola_lens.tasks.encoding import IGNORE_INDEX, EncodedExample
from jola_lens.training import CheckpointMismatchError, NonFiniteLossError, TrainConfig, Trainer, TrainingInterrupted
from jola_lens.training.checkpoint import load_checkpoint, read_checkpoint_record

FAST = dict(lr=0.05, gate_lr=0.05, train_batch=8, eval_batch=8, warmup_steps=2, max_length=64, patience=0)


@pytest.fixture(scope="module")
def model():
    return build_tiny_model("llama")


@pytest.fixture(scope="module")
def data(tiny_tokenizer, tiny_task):  # noqa: F811
    return encoded_splits(tiny_tokenizer, tiny_task)


def make_trainer(model, data, tiny_tokenizer, run=None, forward=None, validation_loss_fn=None,
                 **overrides) -> Trainer:
    config = TrainConfig(**{**FAST, "num_epoch": 3, **overrides})
    edit = JoLAEdit.for_model(model, seed=config.seed)
    return Trainer(edit, forward or (lambda e, ids, mask: hf.forward(model, e, ids, mask)), *data, config,
                   pad_token_id=tiny_tokenizer.pad_token_id, run=run, progress=False,
                   fingerprint={"model": "tiny-llama", "task": "tiny"}, validation_loss_fn=validation_loss_fn)


def edit_tensors(edit: JoLAEdit) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in edit.state_dict().items()}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ---- batches and loss ------------------------------------------------------------------------------------
def test_collate_right_pads_and_masks_prompt_and_padding():
    encoded = [EncodedExample([5, 6, 7, 8], [IGNORE_INDEX, IGNORE_INDEX, 7, 8]),
               EncodedExample([5, 9], [IGNORE_INDEX, 9])]
    batch = collate(encoded, pad_token_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7, 8], [5, 9, 0, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch.labels.tolist() == [[-100, -100, 7, 8], [-100, 9, -100, -100]]


def test_loss_counts_only_answer_tokens():
    torch.manual_seed(0)
    labels = torch.tensor([[-100, -100, 3, 4, -100]])  # target tokens at positions 2 and 3
    logits = torch.randn(1, 5, 10)
    base = completion_loss(logits, labels)
    changed = logits.clone()
    changed[0, [0, 3, 4]] += torch.randn(3, 10) * 5  # positions 0, 3, 4 do not predict a target token
    assert torch.allclose(completion_loss(changed, labels), base)
    changed[0, 1] += 5 * torch.randn(10)  # position 1 predicts the first target token
    assert not torch.allclose(completion_loss(changed, labels), base)
    expected = -(logits[0, 1].log_softmax(-1)[3] + logits[0, 2].log_softmax(-1)[4]) / 2
    assert torch.allclose(base, expected)
    assert torch.allclose(sequence_logprobs(logits, labels), -2 * expected)


def test_epoch_order_is_a_seeded_permutation():
    assert sorted(epoch_order(10, 42, 1)) == list(range(10))
    assert epoch_order(10, 42, 1) == epoch_order(10, 42, 1) != epoch_order(10, 42, 2)


def test_config_rejects_bad_values():
    assert TrainConfig().gate_lr == TrainConfig().lr == 5e-3
    for bad, message in ((dict(lr=0), r"lr must be > 0, got 0"),
                         (dict(train_batch=0), r"train_batch must be an integer >= 1, got 0"),
                         (dict(save_strategy="often"), r"unknown save_strategy 'often'; choose one of \('best', "),
                         (dict(gate_scheduler="sometimes"), r"unknown gate_scheduler 'sometimes'; choose one of"),
                         (dict(penalty_scale=-1), r"penalty_scale must be >= 0, got -1"),
                         (dict(num_epoch=1.5), r"num_epoch must be an integer >= 1, got 1.5"),
                         (dict(gate_lambda=2), r"gate_lambda must be in \[0, 1\], got 2"),
                         (dict(gate_noise="none"), r"unknown gate_noise 'none'; choose one of \('sample', 'off'\)"),
                         (dict(gate_noise_seed=-1), r"gate_noise_seed must be an integer >= 0, got -1"),
                         (dict(gate_noise="off", gate_noise_seed=3),
                          r"gate_noise_seed seeds the gates' Hard-Concrete noise, which gate_noise 'off' switches "
                          r"off: drop one of them")):
        with pytest.raises(ValueError, match=message):
            TrainConfig(**bad)


# ---- learning --------------------------------------------------------------------------------------------
def test_short_training_reduces_loss_and_moves_gates(model, data, tiny_tokenizer, tmp_path):
    run = RunFolder(tmp_path / "run")
    trainer = make_trainer(model, data, tiny_tokenizer, run=run, num_epoch=4)
    before = {k: trainer.edit.gate_logits(k).detach().clone() for k in ("additive", "multiplicative")}
    result = trainer.fit()
    log = run.read_train_log()
    assert [r["step"] for r in log] == list(range(1, 4 * 4 + 1))
    assert {"step", "epoch", "loss", "ce", "penalty", "lam", "lr", "open_additive", "open_multiplicative"} <= log[0].keys()
    assert result.state.val_losses[-1] < result.state.val_losses[0]
    assert sum(r["ce"] for r in log[-4:]) < sum(r["ce"] for r in log[:4])
    for kind, logits in before.items():
        assert not torch.allclose(result.edit.gate_logits(kind), logits)
    assert [epoch for epoch, _, _ in run.read_gate_snapshots()] == [0, 1, 2, 3, 4]
    assert (run.edit_dir / WEIGHTS_NAME).is_file()
    assert not result.edit.training


def test_gate_lr_reaches_the_gate_parameter_group(model, data, tiny_tokenizer):
    """AdamW's first step moves every parameter with a gradient by its group's lr (m / sqrt(v) = sign(g)):
    the gate logits by gate_lr, the edit vectors by lr."""
    one_step = (data[0][:8], data[1])
    trainer = make_trainer(model, one_step, tiny_tokenizer, num_epoch=1, lr=1e-3, gate_lr=0.2, warmup_steps=0,
                           save_strategy="last")
    gate_params = {id(trainer.edit.gate_logits(kind)) for kind in ("additive", "multiplicative")}
    groups = {tuple(sorted(id(p) for p in group["params"])): group["lr"] for group in trainer.optimizer.param_groups}
    assert groups[tuple(sorted(gate_params))] == 0.2 and sorted(groups.values()) == [1e-3, 0.2]
    before = {name: p.detach().clone() for name, p in trainer.edit.named_parameters()}
    trainer.fit()
    for name, p in trainer.edit.named_parameters():
        step = (p.detach() - before[name]).abs()
        expected = 0.2 if name.endswith("_gate_logits") else 1e-3
        assert step.max().item() == pytest.approx(expected, rel=1e-3), name
        assert step.max().item() <= expected * (1 + 1e-5), name


@pytest.mark.parametrize("max_grad_norm", [1e-3, 0.0], ids=["clipped", "off"])
def test_max_grad_norm_clips_the_global_gradient_norm(model, data, tiny_tokenizer, max_grad_norm):
    """The gradients AdamW sees are the raw ones scaled by min(1, max_norm / (total norm + 1e-6)), the total norm
    taken over every trainable parameter at once (torch's clip_grad_norm_); 0 leaves them as they are."""
    trainer = make_trainer(model, (data[0][:8], data[1]), tiny_tokenizer, num_epoch=1, max_grad_norm=max_grad_norm)
    raw: dict[int, torch.Tensor] = {}
    for p in trainer.params:
        p.register_hook(lambda grad, key=id(p): raw.__setitem__(key, grad.detach().clone()))
    seen: list[dict[int, torch.Tensor]] = []
    trainer.optimizer.register_step_pre_hook(
        lambda optimizer, args, kwargs: seen.append({id(p): p.grad.detach().clone() for p in trainer.params}))
    trainer.fit()
    assert len(seen) == 1 and raw.keys() == seen[0].keys()
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in raw.values()))
    scale = min(1.0, max_grad_norm / (total.item() + 1e-6)) if max_grad_norm > 0 else 1.0
    if max_grad_norm > 0:
        assert total.item() > 10 * max_grad_norm  # the clip is active
    for key, grad in raw.items():
        torch.testing.assert_close(seen[0][key], grad * scale, rtol=1e-5, atol=1e-12)
    clipped = torch.sqrt(sum((g.double() ** 2).sum() for g in seen[0].values())).item()
    assert clipped == pytest.approx(max_grad_norm if max_grad_norm > 0 else total.item(), rel=1e-4)


def test_gate_schedule_advances_once_per_training_step(model, data, tiny_tokenizer):
    trainer = make_trainer(model, data, tiny_tokenizer, num_epoch=2)
    trainer.fit()
    assert trainer.gate_schedule.t == 2 * trainer.steps_per_epoch


def test_best_validation_epoch_is_kept_and_early_stopping(model, data, tiny_tokenizer, tmp_path):
    run = RunFolder(tmp_path / "run")
    fake_losses = {1: 3.0, 2: 1.0, 3: 2.0, 4: 2.5, 5: 0.5}
    seen = {}
    trainer = make_trainer(model, data, tiny_tokenizer, run=run, num_epoch=5, patience=2,
                           validation_loss_fn=fake_losses.__getitem__)
    trainer.on_epoch = lambda epoch, loss: seen.setdefault(epoch, edit_tensors(trainer.edit))
    result = trainer.fit()
    assert result.state.best_epoch == 2 and result.state.stop_reason == "early_stopping"
    assert result.state.epochs_done == 4 and sorted(seen) == [1, 2, 3, 4]
    assert_same(edit_tensors(result.edit), seen[2])
    assert_same(JoLAEdit.from_pretrained(run.edit_dir).state_dict(), seen[2])


def test_save_strategy_last_keeps_the_final_epoch(model, data, tiny_tokenizer, tmp_path):
    run = RunFolder(tmp_path / "run")
    trainer = make_trainer(model, data, tiny_tokenizer, run=run, num_epoch=3, save_strategy="last",
                           validation_loss_fn={1: 1.0, 2: 2.0, 3: 3.0}.__getitem__)
    result = trainer.fit()
    assert result.state.best_epoch == 1 and result.state.epochs_done == 3
    assert_same(JoLAEdit.from_pretrained(run.edit_dir).state_dict(), edit_tensors(result.edit))


# ---- resume ----------------------------------------------------------------------------------------------
class Boom(RuntimeError):
    pass


def _crash_after_epoch(k: int):
    def on_epoch(epoch: int, loss: float) -> None:
        if epoch == k:
            raise Boom(f"killed after epoch {k}")
    return on_epoch


def test_resume_after_a_killed_run_equals_the_uninterrupted_run(model, data, tiny_tokenizer, tmp_path):
    whole = RunFolder(tmp_path / "whole")
    reference = make_trainer(model, data, tiny_tokenizer, run=whole, num_epoch=4, gate_scheduler="perform").fit()

    parted = RunFolder(tmp_path / "parted")
    first = make_trainer(model, data, tiny_tokenizer, run=parted, num_epoch=4, gate_scheduler="perform")
    first.on_epoch = _crash_after_epoch(2)
    with pytest.raises(Boom, match="killed after epoch 2"):
        first.fit()
    torch.manual_seed(1234)  # the resumed run must not depend on the process's random state
    resumed = make_trainer(model, data, tiny_tokenizer, run=parted, num_epoch=4, gate_scheduler="perform").fit()

    assert resumed.resumed and resumed.state.epochs_done == 4
    assert_same(edit_tensors(resumed.edit), edit_tensors(reference.edit))
    assert resumed.state.val_losses == reference.state.val_losses
    assert parted.read_train_log() == whole.read_train_log()
    for (e1, s1, g1), (e2, s2, g2) in zip(parted.read_gate_snapshots(), whole.read_gate_snapshots(), strict=True):
        assert (e1, s1) == (e2, s2)
        assert_same(g1, g2)


def test_a_run_with_its_own_gate_noise_resumes_to_the_uninterrupted_run(model, data, tiny_tokenizer, tmp_path):
    reference = make_trainer(model, data, tiny_tokenizer, num_epoch=3, gate_noise_seed=3).fit()
    parted = RunFolder(tmp_path / "parted")
    first = make_trainer(model, data, tiny_tokenizer, run=parted, num_epoch=3, gate_noise_seed=3)
    first.on_epoch = _crash_after_epoch(1)
    with pytest.raises(Boom, match="killed after epoch 1"):
        first.fit()
    assert "rng.gate_noise" in load_file(str(parted.checkpoint_dir / read_checkpoint_record(
        parted.checkpoint_dir)["tensors"]))
    resumed = make_trainer(model, data, tiny_tokenizer, run=parted, num_epoch=3, gate_noise_seed=3).fit()
    assert resumed.resumed
    assert_same(edit_tensors(resumed.edit), edit_tensors(reference.edit))
    other_noise = make_trainer(model, data, tiny_tokenizer, num_epoch=3, gate_noise_seed=4).fit()
    assert not torch.equal(other_noise.edit.additive_gate_logits, reference.edit.additive_gate_logits)


@pytest.mark.parametrize("noise", [dict(gate_noise_seed=5), dict(gate_noise="off")])
def test_with_shared_or_no_gate_noise_the_run_seed_only_reorders_the_batches(model, data, tiny_tokenizer, noise):
    """One batch per epoch and one starting edit: the seed then changes nothing but the gates' noise (and the order
    of examples inside the batch); a noise stream of its own, or none, takes the seed's influence away."""
    def fit(seed: int, **fields) -> JoLAEdit:
        config = TrainConfig(**{**FAST, "train_batch": len(data[0]), "num_epoch": 4, "seed": seed, **fields})
        return Trainer(JoLAEdit.for_model(model, seed=0), lambda e, ids, mask: hf.forward(model, e, ids, mask),
                       *data, config, pad_token_id=tiny_tokenizer.pad_token_id, progress=False).fit().edit

    spec = {seed: edit_tensors(fit(seed)) for seed in (1, 2)}
    free = {seed: edit_tensors(fit(seed, **noise)) for seed in (1, 2)}
    for key in spec[1]:
        torch.testing.assert_close(free[1][key], free[2][key], rtol=1e-4, atol=1e-6)
    assert any(not torch.allclose(spec[1][key], spec[2][key], rtol=1e-2, atol=1e-4) for key in spec[1])


def test_ctrl_c_saves_a_checkpoint_mid_epoch_and_resume_is_exact(model, data, tiny_tokenizer, tmp_path):
    reference = make_trainer(model, data, tiny_tokenizer, num_epoch=3).fit()
    run = RunFolder(tmp_path / "run")
    trainer = make_trainer(model, data, tiny_tokenizer, run=run, num_epoch=3)
    trainer.on_step = lambda record: record["step"] == 6 and os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(TrainingInterrupted, match=r"interrupted in epoch 2 after step 6; checkpoint saved in") as caught:
        trainer.fit()
    assert caught.value.step == 6 and caught.value.epoch == 2 and caught.value.checkpoint
    state = read_checkpoint_record(run.checkpoint_dir)["state"]
    assert (state["global_step"], state["epochs_done"], state["batches_done"]) == (6, 1, 2)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    resumed = make_trainer(model, data, tiny_tokenizer, run=run, num_epoch=3).fit()
    assert_same(edit_tensors(resumed.edit), edit_tensors(reference.edit))
    assert [r["step"] for r in run.read_train_log()] == list(range(1, 13))


def test_resume_truncates_the_log_to_the_checkpointed_step(model, data, tiny_tokenizer, tmp_path):
    """Lines logged after the last checkpoint (a crash before the next one), a torn one included, are dropped."""
    run = RunFolder(tmp_path / "run")
    trainer = make_trainer(model, data, tiny_tokenizer, run=run, num_epoch=2)
    trainer.on_step = lambda record: record["step"] == 3 and trainer.stop.set()
    with pytest.raises(TrainingInterrupted, match=r"interrupted in epoch 1 after step 3; checkpoint saved in"):
        trainer.fit()
    logged = run.read_train_log()
    run.append_train_log(logged[-1] | {"step": 4, "loss": 123.0})
    with open(run.train_log, "a", encoding="utf-8") as handle:
        handle.write('{"step": 5, "lo')
    make_trainer(model, data, tiny_tokenizer, run=run, num_epoch=2).fit()
    log = run.read_train_log()
    assert [r["step"] for r in log] == list(range(1, 9)) and log[:3] == logged and log[3]["loss"] != 123.0
    assert run.train_log.read_text().endswith("}\n")


def test_interrupt_during_validation_resumes_with_validation(model, data, tiny_tokenizer, tmp_path):
    reference = make_trainer(model, data, tiny_tokenizer, num_epoch=2).fit()
    run = RunFolder(tmp_path / "run")
    trainer = make_trainer(model, data, tiny_tokenizer, run=run, num_epoch=2)
    trainer.on_step = lambda record: record["step"] == 4 and trainer.stop.set()  # last step of epoch 1
    with pytest.raises(TrainingInterrupted, match=r"interrupted in epoch 1 after step 4; checkpoint saved in"):
        trainer.fit()
    assert read_checkpoint_record(run.checkpoint_dir)["state"]["batches_done"] == 4
    resumed = make_trainer(model, data, tiny_tokenizer, run=run, num_epoch=2).fit()
    assert resumed.state.val_losses == reference.state.val_losses
    assert_same(edit_tensors(resumed.edit), edit_tensors(reference.edit))


def test_finished_run_resumes_to_the_kept_edit_without_training(model, data, tiny_tokenizer, tmp_path):
    run = RunFolder(tmp_path / "run")
    first = make_trainer(model, data, tiny_tokenizer, run=run, num_epoch=2).fit()
    steps = len(run.read_train_log())
    again = make_trainer(model, data, tiny_tokenizer, run=run, num_epoch=2).fit()
    assert again.resumed and len(run.read_train_log()) == steps
    assert_same(edit_tensors(again.edit), edit_tensors(first.edit))


def test_checkpoint_holds_no_pickle(model, data, tiny_tokenizer, tmp_path):
    run = RunFolder(tmp_path / "run")
    make_trainer(model, data, tiny_tokenizer, run=run, num_epoch=1).fit()
    files = sorted(p.name for p in run.checkpoint_dir.iterdir())
    assert len(files) == 2 and files[0] == "state.json" and files[1].endswith(".safetensors")
    tensors = load_file(str(run.checkpoint_dir / files[1]))
    assert any(k.startswith("optimizer.") and k.endswith(".exp_avg_sq") for k in tensors)
    assert {"rng.torch", "rng.numpy_keys"} <= tensors.keys()


# ---- failures --------------------------------------------------------------------------------------------
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(model, data, tiny_tokenizer, tmp_path):
    run = RunFolder(tmp_path / "run")
    calls = {"n": 0}

    def poisoned(edit, ids, mask):
        calls["n"] += 1
        logits = hf.forward(model, edit, ids, mask)
        return logits * float("nan") if calls["n"] == 7 else logits  # step 7 = epoch 2, batch 3

    trainer = make_trainer(model, data, tiny_tokenizer, run=run, forward=poisoned, num_epoch=3,
                           validation_loss_fn=lambda epoch: 1.0 / epoch)
    with pytest.raises(NonFiniteLossError, match="step 7") as caught:
        trainer.fit()
    assert caught.value.epoch == 2 and caught.value.last_good_epoch == 1
    state = read_checkpoint_record(run.checkpoint_dir)["state"]
    assert (state["epochs_done"], state["global_step"]) == (1, 4)
    assert all(torch.isfinite(t).all() for t in JoLAEdit.from_pretrained(run.edit_dir).state_dict().values())
    assert max(r["step"] for r in run.read_train_log()) == 6


def test_checkpoint_of_another_model_or_task_is_refused(model, data, tiny_tokenizer, tmp_path):
    run = RunFolder(tmp_path / "run")
    trainer = make_trainer(model, data, tiny_tokenizer, run=run, num_epoch=1)
    trainer.fit()
    other = make_trainer(model, data, tiny_tokenizer, num_epoch=1)
    kwargs = dict(edit=other.edit, optimizer=other.optimizer, scheduler=other.scheduler,
                  gate_schedule=other.gate_schedule)
    with pytest.raises(CheckpointMismatchError,
                       match=r"belongs to another run \(checkpoint -> now: model: 'tiny-llama' -> 'other'\)"):
        load_checkpoint(run.checkpoint_dir, fingerprint={"model": "other", "task": "tiny"}, **kwargs)
    with pytest.raises(CheckpointMismatchError, match=r"task: 'tiny' -> 'boolq'\)"):
        load_checkpoint(run.checkpoint_dir, fingerprint={"model": "tiny-llama", "task": "boolq"}, **kwargs)
    gpt2 = build_tiny_model("gpt2")
    bigger = make_trainer(gpt2, data, tiny_tokenizer, num_epoch=1)
    bigger.edit = JoLAEdit.for_model(build_tiny_model("llama"), layers=(0,))
    with pytest.raises(CheckpointMismatchError, match="a different model"):
        load_checkpoint(run.checkpoint_dir, fingerprint={"model": "tiny-llama", "task": "tiny"},
                        edit=bigger.edit, optimizer=other.optimizer, scheduler=other.scheduler,
                        gate_schedule=other.gate_schedule)
    assert json.loads((run.checkpoint_dir / "state.json").read_text())["fingerprint"]["model"] == "tiny-llama"


@pytest.mark.parametrize("backend", ["tl", "nnsight"])
def test_backends_train_the_same_edit(backend, data, tiny_tokenizer):
    from jola_lens.backends.route import make_route

    reference = make_trainer(build_tiny_model("llama"), data, tiny_tokenizer, num_epoch=1).fit()
    wrapped = make_route(backend, build_tiny_model("llama"), tiny_tokenizer)
    config = TrainConfig(**{**FAST, "num_epoch": 1})
    result = Trainer(JoLAEdit.for_model(wrapped.hf_model, seed=config.seed), wrapped.forward, *data, config,
                     pad_token_id=tiny_tokenizer.pad_token_id, progress=False).fit()
    for key, value in edit_tensors(reference.edit).items():
        assert torch.allclose(result.edit.state_dict()[key], value, atol=1e-4), key
