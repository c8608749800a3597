"""Methods behind one Adapter interface: JoLA ablations, LoRA / IA3 through peft, LoFiT's two stages."""

from __future__ import annotations

import argparse
import json
import sys

import pytest
import torch
from conftest import build_tiny_model
from test_training_helpers import encoded_splits, tiny_model_dir, tiny_task  # noqa: F401  (fixtures)

from jola_lens.backends.route import make_route
from jola_lens.batching import collate
from jola_lens.cli import main
from jola_lens.loss import completion_loss
from jola_lens.methods import (
    LoFiTOffsets,
    LoFiTScaling,
    MethodConfig,
    MethodFlagError,
    MethodRouteError,
    MissingDependencyError,
    TargetModulesError,
    build_adapter,
    check_train_settings,
    load_adapter,
    stages,
)
from jola_lens.methods.cli_flags import add_method_flags, method_config
from jola_lens.run_folder import RunFolder
from jola_lens.training.config import TrainConfig

pytest.importorskip("peft")


@pytest.fixture(scope="module")
def batch(tiny_tokenizer, tiny_task):  # noqa: F811
    train, _ = encoded_splits(tiny_tokenizer, tiny_task, train_size=16, val_size=4)
    return collate(train, tiny_tokenizer.pad_token_id)


def hf(arch: str = "llama"):
    return make_route("hf", build_tiny_model(arch), None)


def fit(adapter, batch, steps: int = 6, lr: float = 1e-2) -> list[float]:
    """A bare training loop: completion loss + the adapter's penalty, AdamW on its parameter groups."""
    optimizer = torch.optim.AdamW(adapter.parameter_groups(lr, lr), weight_decay=0.0)
    adapter.train()
    losses = []
    for _ in range(steps):
        loss = completion_loss(adapter.forward(batch.input_ids, batch.attention_mask), batch.labels)
        loss = loss + adapter.penalty(0.5)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    adapter.eval()
    return losses


@torch.no_grad()
def logits_of(adapter, batch):
    return adapter.forward(batch.input_ids, batch.attention_mask)


@torch.no_grad()
def bare_logits(backend, batch):
    return backend.hf_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits


# ---- LoRA and IA3 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_lora_and_ia3_train_and_change_logits(method, arch, batch):
    backend = hf(arch)
    before = bare_logits(backend, batch)
    adapter = build_adapter(MethodConfig(method), backend, seed=0)
    # peft's init is the identity (LoRA's B = 0, IA3's scales = 1): the adapted model starts as the bare one
    torch.testing.assert_close(logits_of(adapter, batch), before)
    losses = fit(adapter, batch)
    assert losses[-1] < losses[0]
    assert (logits_of(adapter, batch) - before).abs().max() > 1e-3
    assert torch.equal(bare_logits(backend, batch), before), "outside forward/attached the model must stay bare"
    with adapter.attached():
        torch.testing.assert_close(bare_logits(backend, batch), logits_of(adapter, batch))
    names = [name for name, _ in adapter.named_parameters()]
    assert names and all(f"{method}_" in name for name in names)
    assert adapter.num_trainable_parameters() == sum(p.numel() for p in adapter.parameters())
    assert not any(p.requires_grad for name, p in backend.hf_model.named_parameters() if f"{method}_" not in name)


def test_lora_parameter_count_is_peft_s_by_hand():
    adapter = build_adapter(MethodConfig("lora", lora_rank=4), hf("llama"), seed=0)
    # tiny llama: q_proj 64 -> 64, v_proj 64 -> 32 (2 KV heads x 16); LoRA adds r x (in + out) per module, 2 layers
    assert adapter.num_trainable_parameters() == 2 * (4 * (64 + 64) + 4 * (64 + 32))
    assert adapter.settings["lora_target_modules"] == ("q_proj", "v_proj")


def test_lora_dropout_follows_train_and_eval_but_the_model_stays_in_eval(batch):
    backend = hf("gpt2")  # GPT-2's own dropout is 0.1: it must stay off
    adapter = build_adapter(MethodConfig("lora", lora_dropout=0.5), backend, seed=0)
    fit(adapter, batch, steps=2)
    adapter.train()
    assert not backend.hf_model.training and not backend.hf_model.transformer.h[0].attn.resid_dropout.training
    dropouts = [m for n, m in backend.hf_model.named_modules()
                if isinstance(m, torch.nn.Dropout) and ".lora_dropout." in f".{n}."]
    assert dropouts and all(m.training for m in dropouts)
    adapter.eval()
    assert not any(m.training for m in dropouts)
    torch.testing.assert_close(logits_of(adapter, batch), logits_of(adapter, batch), rtol=0, atol=0)


def test_saved_lora_run_reloads_and_reproduces_its_logits(batch, tmp_path):
    adapter = build_adapter(MethodConfig("lora", lora_target_modules=("q_proj", "k_proj", "v_proj", "o_proj")),
                            hf("llama"), seed=0)
    fit(adapter, batch)
    expected = logits_of(adapter, batch)
    adapter.save(tmp_path / "edit")
    assert {"adapter_config.json", "adapter_model.safetensors", "method.json"} <= {
        p.name for p in (tmp_path / "edit").iterdir()}
    fresh = hf("llama")
    reloaded = load_adapter(tmp_path / "edit", fresh)
    assert reloaded.method == "lora" and reloaded.settings["lora_target_modules"] == [
        "q_proj", "k_proj", "v_proj", "o_proj"]
    assert torch.equal(logits_of(reloaded, batch), expected)
    assert not torch.equal(bare_logits(fresh, batch), expected)


def test_peft_adapter_state_round_trips_through_state_dict(batch):
    adapter = build_adapter(MethodConfig("ia3"), hf("llama"), seed=0)
    start = {k: v.clone() for k, v in adapter.state_dict().items()}
    fit(adapter, batch, steps=3)
    trained = logits_of(adapter, batch)
    adapter.load_state_dict(start)
    torch.testing.assert_close(logits_of(adapter, batch), bare_logits(adapter.backend, batch))
    with pytest.raises(ValueError, match="these ia3 tensors do not fit this adapter"):
        adapter.load_state_dict({"nope": torch.zeros(1)})
    assert not torch.equal(trained, logits_of(adapter, batch))


def test_removing_a_peft_adapter_restores_the_bare_model(batch):
    backend = hf("llama")
    before = bare_logits(backend, batch)
    adapter = build_adapter(MethodConfig("lora"), backend, seed=0)
    fit(adapter, batch, steps=2)
    adapter.remove()
    assert not any("lora_" in name for name, _ in backend.hf_model.named_modules())
    assert torch.equal(bare_logits(backend, batch), before)


# ---- JoLA and its ablations ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("ablation", "kinds", "gated"), [
    ("none", ("additive", "multiplicative"), True), ("no_gates", ("additive", "multiplicative"), False),
    ("additive_only", ("additive",), True), ("multiplicative_only", ("multiplicative",), True)])
def test_jola_ablation_presets_set_the_edit_config(ablation, kinds, gated, batch):
    adapter = build_adapter(MethodConfig("jola", ablation=ablation), hf("llama"), seed=0)
    config = adapter.edit.config
    assert config.edit_kinds == kinds and config.gated == gated
    assert (adapter.head_gates() is adapter.edit) == gated
    # tiny llama: 2 layers x 4 heads x 16 dims per kind, plus 2 x 4 gate logits per gated kind
    assert adapter.num_trainable_parameters() == len(kinds) * (2 * 4 * 16 + (2 * 4 if gated else 0))
    assert len(adapter.parameter_groups(1e-3, 1e-1)) == (2 if gated else 1)
    losses = fit(adapter, batch, steps=3)
    assert losses[-1] < losses[0]


def test_a_jola_edit_saved_without_method_json_loads_as_jola(tmp_path):
    from jola_lens.edit import JoLAEdit

    backend = hf("llama")
    edit = JoLAEdit.for_model(backend.hf_model, seed=1)
    edit.save_pretrained(tmp_path)
    adapter = load_adapter(tmp_path, backend)
    assert adapter.method == "jola"
    assert all(torch.equal(a, b) for a, b in zip(adapter.edit.state_dict().values(), edit.state_dict().values()))


# ---- LoFiT -----------------------------------------------------------------------------------------------
def test_lofit_top_heads_are_the_largest_scaling_norms():
    scaling = build_adapter(MethodConfig("lofit", lofit_top_k=3), hf("llama"), seed=0)
    assert isinstance(scaling, LoFiTScaling)
    with torch.no_grad():
        scaling.edit.multiplicative.zero_()
        for (layer, head), value in {(1, 2): 5.0, (0, 3): 4.0, (1, 0): 3.0, (0, 0): 1.0}.items():
            scaling.edit.multiplicative[layer, head, 0] = value
    assert scaling.top_heads() == ((1, 2), (0, 3), (1, 0))
    # the penalty is LoFiT's l1 * sum |A|, whatever the gate mix
    assert scaling.penalty(0.3).item() == pytest.approx(1e-3 * 13.0)


def test_lofit_stage_two_edits_only_the_stage_one_heads(batch):
    config = MethodConfig("lofit", lofit_top_k=3)
    assert [s.name for s in stages(config)] == ["lofit_scaling", "lofit_offsets"]
    assert stages(config)[1].train_overrides == {"lr": 1e-2}
    backend = hf("llama")
    scaling = build_adapter(config, backend, seed=0)
    fit(scaling, batch, steps=4)
    chosen = scaling.top_heads()
    offsets = build_adapter(config, backend, seed=0, stage="lofit_offsets", previous=scaling)
    assert isinstance(offsets, LoFiTOffsets)
    assert offsets.heads == tuple(sorted(chosen))
    assert offsets.edit.config.edit_kinds == ("additive",) and not offsets.edit.config.gated
    assert offsets.num_trainable_parameters() == 3 * 16
    fit(offsets, batch, steps=4)
    z = torch.randn(2, 5, 4, 16)
    for layer in range(2):
        if not offsets.edit.edits_layer(layer):
            assert all(h[0] != layer for h in chosen)
            continue
        with torch.no_grad():
            out = offsets.edit(z, layer)
        for head in range(4):
            if (layer, head) in chosen:
                assert not torch.equal(out[:, :, head], z[:, :, head])
            else:
                assert torch.equal(out[:, :, head], z[:, :, head]), f"L{layer}H{head} is not a stage-1 head"
    record = offsets.record()
    assert record["method"] == "lofit" and record["trainable_parameters"] == 48
    assert sorted(record["settings"]["heads"]) == sorted(f"L{l}H{h}" for l, h in chosen)


def test_lofit_offsets_start_from_scratch_and_reload(batch, tmp_path):
    config = MethodConfig("lofit", lofit_top_k=2)
    backend = hf("llama")
    scaling = build_adapter(config, backend, seed=0)
    fit(scaling, batch, steps=2)
    offsets = build_adapter(config, backend, seed=0, stage="lofit_offsets", previous=scaling)
    assert offsets.edit.additive.abs().max() < 1e-2  # N(0, 1e-3), not stage 1's vectors
    fit(offsets, batch, steps=2)
    offsets.save(tmp_path)
    reloaded = load_adapter(tmp_path, hf("llama"))
    assert isinstance(reloaded, LoFiTOffsets) and reloaded.heads == offsets.heads
    assert torch.equal(logits_of(reloaded, batch), logits_of(offsets, batch))


# ---- without peft ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_without_peft_a_clear_error_names_the_install_command(method, monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # import peft now raises ImportError
    with pytest.raises(MissingDependencyError,
                       match=rf"--method {method} needs peft, which is not installed: pip install "
                             r"'jola_lens\[baselines\]'"):
        build_adapter(MethodConfig(method), hf("llama"), seed=0)
    assert build_adapter(MethodConfig("lofit"), hf("llama"), seed=0).method == "lofit_scaling"


# ---- bad input -----------------------------------------------------------------------------------------------
def test_lora_target_modules_the_model_lacks_name_its_candidates():
    with pytest.raises(TargetModulesError, match=r"--lora_target_modules \['q_proj'\]: the gpt2 model has no such "
                                                 r"module\. Its linear layers are: c_attn, c_fc, c_proj"):
        build_adapter(MethodConfig("lora", lora_target_modules=("q_proj", "c_attn")), hf("gpt2"), seed=0)
    with pytest.raises(TargetModulesError, match=r"--ia3_target_modules \['wrong'\]: the llama model has no such "
                                                 r"module\. Its linear layers are: down_proj, gate_proj, k_proj"):
        build_adapter(MethodConfig("ia3", ia3_target_modules=("wrong",)), hf("llama"), seed=0)


def test_lofit_top_k_must_fit_the_model():
    with pytest.raises(MethodFlagError, match="--lofit_top_k must be a positive integer, got 0"):
        MethodConfig("lofit", lofit_top_k=0)
    with pytest.raises(MethodFlagError, match=r"--lofit_top_k must be between 1 and the model's 8 heads "
                                              r"\(2 layers x 4 heads\), got 9"):
        build_adapter(MethodConfig("lofit", lofit_top_k=9), hf("llama"), seed=0)


def test_a_flag_of_one_method_passed_to_another_is_refused():
    with pytest.raises(MethodFlagError, match="--lora_rank belongs to --method lora, not --method jola"):
        MethodConfig("jola", lora_rank=4)
    with pytest.raises(MethodFlagError, match="--ablation belongs to --method jola, not --method ia3"):
        MethodConfig("ia3", ablation="no_gates")
    with pytest.raises(MethodFlagError, match="--lofit_top_k belongs to --method lofit, not --method lora"):
        MethodConfig("lora", lofit_top_k=3)
    parser = argparse.ArgumentParser()
    add_method_flags(parser)
    with pytest.raises(MethodFlagError, match="--lora_alpha belongs to --method lora, not --method lofit"):
        method_config(parser.parse_args(["--method", "lofit", "--lora-alpha", "8"]))
    parsed = method_config(parser.parse_args(["--method", "lora", "--lora_target_modules", "q_proj, o_proj"]))
    assert parsed.lora_target_modules == ("q_proj", "o_proj")


def test_gate_and_head_flags_are_refused_for_methods_without_them():
    with pytest.raises(MethodFlagError, match=r"--gate_lr, --penalty_scale belong to --method jola \(they act on "
                                              r"JoLA's gates and head sets\), not to --method lora: drop them"):
        check_train_settings(MethodConfig("lora"), TrainConfig(gate_lr=0.1, penalty_scale=10))
    with pytest.raises(MethodFlagError, match="--heads belongs to --method jola .* not to --method lofit"):
        check_train_settings(MethodConfig("lofit"), TrainConfig(heads="L0H1"))
    with pytest.raises(MethodFlagError, match="which --ablation no_gates switches off.*--method jola --ablation "
                                              "no_gates"):
        check_train_settings(MethodConfig("jola", ablation="no_gates"), TrainConfig(target_heads=4))
    check_train_settings(MethodConfig("jola", ablation="no_gates"), TrainConfig(heads="L0H1", lr=1e-2))
    check_train_settings(MethodConfig("jola"), TrainConfig(gate_lr=0.1, heads="L0H1"))


@pytest.mark.parametrize("backend_name", ["tl", "nnsight"])
def test_lora_and_ia3_refuse_other_routes(backend_name, tiny_tokenizer):
    backend = make_route(backend_name, build_tiny_model("llama"), tiny_tokenizer)
    for method in ("lora", "ia3"):
        with pytest.raises(MethodRouteError, match=rf"--method {method} runs through peft, which replaces the "
                                                   rf"model's linear layers, so it needs --backend hf \(got "
                                                   rf"--backend {backend_name}\)"):
            build_adapter(MethodConfig(method), backend, seed=0)


def test_method_settings_validate_and_round_trip():
    with pytest.raises(MethodFlagError, match="unknown method 'adapter'"):
        MethodConfig("adapter")
    with pytest.raises(MethodFlagError, match=r"--lora_dropout must be in \[0, 1\), got 1.0"):
        MethodConfig("lora", lora_dropout=1.0)
    with pytest.raises(MethodFlagError, match="--ia3_feedforward_modules \\['fc'\\] are not among"):
        MethodConfig("ia3", ia3_target_modules=("k_proj",), ia3_feedforward_modules=("fc",))
    assert MethodConfig().identity() == {} and MethodConfig("jola", ablation="none").identity() == {}
    lora = MethodConfig("lora", lora_rank=4)
    assert lora.identity() == {"method": {"name": "lora", "lora_rank": 4, "lora_alpha": 16.0, "lora_dropout": 0.05,
                                          "lora_target_modules": None}}
    assert MethodConfig.from_identity(lora.identity()).settings() == lora.settings()
    assert MethodConfig.from_dict(lora.to_dict()) == lora


# ---- whole runs through the CLI ------------------------------------------------------------------------------
@pytest.fixture
def tiny_args(tiny_task, tiny_model_dir) -> list[str]:  # noqa: F811
    return ["train", "--task", str(tiny_task), "--base_model_name", str(tiny_model_dir), "--prompt_style", "plain",
            "--train_size", "16", "--val_size", "8", "--num_epoch", "2", "--max_length", "64", "--warmup_steps", "1",
            "--eval_batch", "8", "--train_batch", "8", "--lr", "0.01", "--quiet"]


COMPARISON = {"jola": [], "jola-no_gates": ["--ablation", "no_gates"], "lora": ["--method", "lora"],
              "ia3": ["--method", "ia3"], "lofit": ["--method", "lofit", "--lofit_top_k", "2"]}


def test_all_methods_in_a_comparison_score_the_same_item_ids(tmp_path, tiny_args, capsys):
    results = tmp_path / "results.jsonl"
    ids, lines = {}, {}
    for name, flags in COMPARISON.items():
        run = RunFolder(tmp_path / name)
        assert main([*tiny_args, *flags, "--output_dir", str(run.root), "--run_mode", "train_eval", "--scoring",
                     "likelihood", "--limit", "12", "--output_file_name", str(results)]) == 0
        out = capsys.readouterr().out
        metrics = json.loads(run.metrics.read_text())
        training = metrics["training"]
        method = "lofit" if name == "lofit" else name.split("-")[0]
        assert training["method"] == method and metrics["evaluation"]["method"] == method
        assert f"  {method:<13}{training['trainable_parameters']:,} trainable parameters" in out
        ids[name] = [json.loads(line)["id"] for line in run.predictions.read_text().splitlines()]
        lines[name] = json.loads(results.read_text().splitlines()[-1])
    assert len(set(map(tuple, ids.values()))) == 1 and len(ids["jola"]) == 12
    assert {name: line["method"] for name, line in lines.items()} == {
        "jola": "jola", "jola-no_gates": "jola", "lora": "lora", "ia3": "ia3", "lofit": "lofit"}
    assert lines["lora"]["method.lora_rank"] == 8 and "method.name" not in lines["jola"]
    assert lines["jola-no_gates"]["method.ablation"] == "no_gates"
    # tiny llama: LoRA r=8 on q_proj (64 -> 64) and v_proj (64 -> 32) of 2 layers; LoFiT: 2 heads x 16
    assert lines["lora"]["trainable_parameters"] == 2 * 8 * (64 + 64 + 64 + 32)
    assert lines["lofit"]["trainable_parameters"] == 2 * 16


def test_a_lora_run_resumes_and_reevaluates_from_its_saved_adapter(tmp_path, tiny_args, capsys):
    run = RunFolder(tmp_path / "lora")
    argv = [*tiny_args, "--method", "lora", "--lora_rank", "4", "--output_dir", str(run.root), "--run_mode",
            "train_eval", "--scoring", "likelihood", "--limit", "8"]
    assert main(argv) == 0
    capsys.readouterr()
    assert {"adapter_config.json", "adapter_model.safetensors", "method.json"} <= {p.name for p in run.edit_dir.iterdir()}
    assert not run.gates_dir.exists()
    first = json.loads(run.metrics.read_text())["evaluation"]["results"]
    log = run.read_train_log()
    assert len(log) == 2 * 2 and log[0]["open_additive"] is None
    saved = (run.edit_dir / "adapter_model.safetensors").read_bytes()
    assert main(argv) == 0  # the same command: the finished run resumes, and scores the same
    assert "resumed run" in capsys.readouterr().out
    assert (run.edit_dir / "adapter_model.safetensors").read_bytes() == saved
    assert json.loads(run.metrics.read_text())["evaluation"]["results"] == first
    assert main(["eval", "--edit", str(run.root), "--scoring", "likelihood", "--limit", "8", "--quiet"]) == 0
    assert json.loads(run.metrics.read_text())["evaluation"]["results"] == first
    assert main(["eval", "--edit", str(run.root), "--backend", "tl", "--scoring", "likelihood", "--quiet"]) == 2
    assert "--method lora runs through peft" in capsys.readouterr().err
    assert main([*tiny_args, "--method", "lora", "--output_dir", str(tmp_path / "other"), "--heads", "L0H1"]) == 2
    assert "--heads belongs to --method jola (they act on JoLA's gates and head sets), not to --method lora" in (
        capsys.readouterr().err)


def test_a_lofit_run_trains_its_scaling_stage_in_a_sub_folder_and_resumes_it(tmp_path, tiny_args):
    run = RunFolder(tmp_path / "lofit")
    argv = [*tiny_args, "--method", "lofit", "--lofit_top_k", "3", "--lofit_offset_lr", "0.02", "--output_dir",
            str(run.root)]
    assert main(argv) == 0
    scaling = RunFolder(run.root / "lofit_scaling")
    assert json.loads((scaling.edit_dir / "method.json").read_text())["method"] == "lofit_scaling"
    record = json.loads((run.edit_dir / "method.json").read_text())
    assert record["method"] == "lofit" and len(record["settings"]["heads"]) == 3
    training = json.loads(run.metrics.read_text())["training"]
    assert training["stages"]["lofit_scaling"]["trainable_parameters"] == 8 * 16
    assert training["heads"]["additive"]["kept"] == 3
    assert max(r["lr"] for r in scaling.read_train_log()) == 0.01  # stage 1 at --lr
    assert max(r["lr"] for r in run.read_train_log()) == 0.02  # stage 2 at --lofit_offset_lr
    assert scaling.read_train_log()[-1]["penalty"] > 0 and run.read_train_log()[-1]["penalty"] == 0
    edit = (run.edit_dir / "jola_edit.safetensors").read_bytes()
    assert main(argv) == 0
    assert (run.edit_dir / "jola_edit.safetensors").read_bytes() == edit
    assert main(["eval", "--edit", str(run.root), "--scoring", "likelihood", "--limit", "4", "--quiet"]) == 0
    evaluation = json.loads(run.metrics.read_text())["evaluation"]
    assert evaluation["method"] == "lofit" and evaluation["heads"]["additive"]["kept"] == 3
    assert main([*argv, "--overwrite"]) == 0
    assert scaling.edit_dir.is_dir()


@pytest.mark.parametrize(("flags", "message"), [
    (["--lora_rank", "4"], "--lora_rank belongs to --method lora, not --method jola"),
    (["--method", "lofit", "--lofit_top_k", "0"], "--lofit_top_k must be a positive integer, got 0"),
    (["--method", "lofit", "--lofit_top_k", "99"], "--lofit_top_k must be between 1 and the model's 8 heads"),
    (["--method", "lora", "--lora_target_modules", "c_attn"],
     ("--lora_target_modules ['c_attn']: the llama model has no such module. Its linear layers are: down_proj, "
      "gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj")),
    (["--method", "ia3", "--backend", "nnsight"], "--method ia3 runs through peft"),
    (["--method", "lora", "--gate_lr", "0.1"], "--gate_lr belongs to --method jola"),
])
def test_bad_method_flags_are_refused_with_a_clear_message(flags, message, tmp_path, tiny_args, capsys):
    assert main([*tiny_args, *flags, "--output_dir", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err


def test_a_lofit_run_killed_in_its_scaling_stage_resumes_to_the_uninterrupted_result(tmp_path, tiny_args,
                                                                                      monkeypatch):
    from jola_lens.training.trainer import Trainer

    argv = [*tiny_args, "--method", "lofit", "--lofit_top_k", "2", "--num_epoch", "3"]
    whole, parted = RunFolder(tmp_path / "whole"), RunFolder(tmp_path / "parted")
    assert main([*argv, "--output_dir", str(whole.root)]) == 0
    end_epoch = Trainer._end_epoch

    def killed(self, state, epoch, val_loss):
        end_epoch(self, state, epoch, val_loss)
        if self.run.root.name == "lofit_scaling" and epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_end_epoch", killed)
    assert main([*argv, "--output_dir", str(parted.root)]) == 130
    assert not parted.edit_dir.exists()
    monkeypatch.undo()
    assert main([*argv, "--output_dir", str(parted.root)]) == 0
    from safetensors.torch import load_file

    resumed, reference = (load_file(str(f.edit_dir / "jola_edit.safetensors")) for f in (parted, whole))
    assert resumed.keys() == reference.keys() and all(torch.equal(resumed[k], reference[k]) for k in resumed)
    assert (parted.edit_dir / "method.json").read_text() == (whole.edit_dir / "method.json").read_text()
    assert parted.read_train_log() == whole.read_train_log()


def test_analyze_says_lora_and_ia3_have_no_head_gates_and_reads_lofit_heads(tmp_path, tiny_args, capsys):
    for name, flags in (("lora", ["--method", "lora"]), ("lofit", ["--method", "lofit", "--lofit_top_k", "2"])):
        assert main([*tiny_args, *flags, "--num_epoch", "1", "--output_dir", str(tmp_path / name)]) == 0
    capsys.readouterr()
    assert main(["analyze", str(tmp_path / "lora"), "--output", str(tmp_path / "figures")]) == 2
    assert ("holds a --method lora adapter: lora changes weight matrices, not attention heads, so it has no head "
            "gates to analyse") in capsys.readouterr().err
    assert main(["analyze", str(tmp_path / "lofit"), "--output", str(tmp_path / "figures")]) == 0
    summary = (tmp_path / "figures" / "summary.csv").read_text()
    assert ",additive," in summary and "2 of " in summary  # LoFiT's 2 selected heads, the only ones it edits
    capsys.readouterr()
    assert main(["analyze", str(tmp_path / "lora"), str(tmp_path / "lofit"), "--output", str(tmp_path / "mixed")]) == 0
    assert f"left out 1 run(s) without head gates (LoRA, IA3 edit weight matrices, not heads): {tmp_path / 'lora' / 'edit'} holds" in capsys.readouterr().err
    assert (tmp_path / "mixed" / "summary.csv").read_text() == summary
