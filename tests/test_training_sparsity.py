"""Training with a delayed penalty, a sparsity target and a head set: what the log, the gates and a resume show."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from test_training import assert_same, edit_tensors, make_trainer, model  # noqa: F401  (fixtures)
from test_training_helpers import tiny_task  # noqa: F401  (fixture)

from jola_lens.run_folder import RunFolder
from jola_lens.training import TrainingInterrupted


@pytest.fixture(scope="module")
def data(tiny_tokenizer, tiny_task):  # noqa: F811
    from test_training_helpers import encoded_splits

    return encoded_splits(tiny_tokenizer, tiny_task)


def test_penalty_delay_and_warmup_show_in_the_log(model, data, tiny_tokenizer, tmp_path):  # noqa: F811
    run = RunFolder(tmp_path / "run")
    make_trainer(model, data, tiny_tokenizer, run=run, num_epoch=2, penalty_delay=3, penalty_warmup=2).fit()
    penalties = [r["penalty"] for r in run.read_train_log()]
    assert penalties[:3] == [0.0, 0.0, 0.0]
    assert 0 < penalties[3] < penalties[4]  # half strength, then full (the gates barely move in two steps)


def test_sparsity_target_closes_gates_down_to_the_target(model, data, tiny_tokenizer):  # noqa: F811
    trainer = make_trainer(model, data, tiny_tokenizer, num_epoch=10, gate_lr=0.5, target_heads=2, target_warmup=8,
                           target_lr=1.0, max_grad_norm=0.0)
    result = trainer.fit()
    for kind, open_count in trainer.sparsity_target.expected_open(result.edit).items():
        assert open_count.item() == pytest.approx(2, abs=1.0), kind
        assert int(result.edit.selected_heads()[kind].sum()) <= 4, kind  # of 8 heads


def test_resume_with_a_sparsity_target_is_exact(model, data, tiny_tokenizer, tmp_path):  # noqa: F811
    settings = {"num_epoch": 3, "gate_lr": 0.3, "target_heads": 3, "target_warmup": 4, "target_lr": 0.5}
    reference = make_trainer(model, data, tiny_tokenizer, **settings)
    reference_edit = reference.fit().edit
    run = RunFolder(tmp_path / "run")
    trainer = make_trainer(model, data, tiny_tokenizer, run=run, **settings)
    trainer.on_step = lambda record: record["step"] == 6 and os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(TrainingInterrupted, match="interrupted"):
        trainer.fit()
    resumed = make_trainer(model, data, tiny_tokenizer, run=run, **settings)
    assert_same(edit_tensors(resumed.fit().edit), edit_tensors(reference_edit))
    assert torch.equal(resumed.sparsity_target.multipliers, reference.sparsity_target.multipliers)


def test_training_on_a_head_set_leaves_other_heads_at_their_initial_values(model, data, tiny_tokenizer):  # noqa: F811
    from jola_lens import JoLAEdit
    from jola_lens.backends import hf
    from jola_lens.training import TrainConfig, Trainer
    from jola_lens.training.pipeline import edit_heads

    config = TrainConfig(lr=0.05, gate_lr=0.05, train_batch=8, eval_batch=8, warmup_steps=2, max_length=64,
                         patience=0, num_epoch=2, heads="L0H1,L1H2")
    edit = JoLAEdit.for_model(model, seed=0, heads=edit_heads(model, config.heads))
    before = edit_tensors(edit)
    Trainer(edit, lambda e, ids, mask: hf.forward(model, e, ids, mask), *data, config,
            pad_token_id=tiny_tokenizer.pad_token_id, progress=False).fit()
    inside = torch.zeros(2, 4, dtype=torch.bool)
    inside[0, 1] = inside[1, 2] = True
    for name, tensor in edit_tensors(edit).items():
        assert torch.equal(tensor[~inside], before[name][~inside]), name
        assert not torch.equal(tensor[inside], before[name][inside]), name
