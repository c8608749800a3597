"""Scaling up: load_model(dtype=, device_map=), --dtype / --device_map on train and eval, the edit kept in float32."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from safetensors.torch import load_file
from test_training_helpers import tiny_model_dir, tiny_task  # noqa: F401  (fixtures)

from jola_lens import JoLAEdit
from jola_lens.backends import hf
from jola_lens.models import load_model
from jola_lens.serialization import WEIGHTS_NAME
from jola_lens.training import TrainConfig
from jola_lens.training.pipeline import RunSpec, train_run

TINY = {"train_size": 32, "val_size": 16}
FAST = {"lr": 0.05, "gate_lr": 0.05, "train_batch": 8, "eval_batch": 8, "warmup_steps": 2, "max_length": 64,
        "patience": 0, "num_epoch": 4}
IDS = torch.tensor([[126, 5, 17, 42, 99, 3, 64, 8]])


def test_load_model_dtype(tiny_model_dir):  # noqa: F811
    model, _ = load_model(tiny_model_dir, dtype="bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert not any(p.requires_grad for p in model.parameters()) and not model.training
    with pytest.raises(ValueError, match=r"unknown dtype 'int8'; choose one of float32, bfloat16, float16"):
        load_model(tiny_model_dir, dtype="int8")


def test_device_map_cpu_and_a_per_layer_map_give_the_plain_model_logits(tiny_model_dir):  # noqa: F811
    plain, _ = load_model(tiny_model_dir)
    per_layer = {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "cpu", "model.norm": "cpu",
                 "model.rotary_emb": "cpu", "lm_head": "cpu"}
    edit = JoLAEdit.for_model(plain, seed=3)
    with torch.no_grad():
        edit.additive.normal_(0, 0.5)
        reference = hf.forward(plain, edit.eval(), IDS, torch.ones_like(IDS))
    for device_map in ("cpu", per_layer):
        placed, _ = load_model(tiny_model_dir, device_map=device_map)
        assert {p.device.type for p in placed.parameters()} == {"cpu"}
        with torch.no_grad():
            assert torch.equal(hf.forward(placed, edit, IDS, torch.ones_like(IDS)), reference)


def test_device_map_without_accelerate_says_how_to_install_it(tiny_model_dir, monkeypatch):  # noqa: F811
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "accelerate" else real(name, *a))
    with pytest.raises(ImportError, match=r"device_map='auto' needs accelerate: pip install accelerate"):
        load_model(tiny_model_dir, device_map="auto")


def test_bf16_training_lowers_the_loss_with_a_float32_edit(tiny_model_dir, tiny_task, tmp_path):  # noqa: F811
    runs = {}
    for dtype in ("bfloat16", "float32"):
        spec = RunSpec(task=str(tiny_task), model=str(tiny_model_dir), dtype=dtype, device="cpu", **TINY)
        runs[dtype] = train_run(spec, TrainConfig(**FAST, seed=1), tmp_path / dtype, progress=False)
    folder = tmp_path / "bfloat16"
    log = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
    assert sum(r["ce"] for r in log[-4:]) < sum(r["ce"] for r in log[:4])
    losses = runs["bfloat16"].metrics["training"]["val_losses"]
    assert losses[-1] < losses[0]
    assert {t.dtype for t in load_file(folder / "edit" / WEIGHTS_NAME).values()} == {torch.float32}
    config = json.loads((folder / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and "dtype" not in json.loads((tmp_path / "float32" / "config.json").read_text())
    # bf16 computes the same loss as float32, to bf16's precision
    assert losses[0] == pytest.approx(runs["float32"].metrics["training"]["val_losses"][0], rel=0.02)


def test_dtype_is_part_of_a_runs_identity_and_device_map_of_its_location():
    assert "dtype" not in RunSpec().identity(TrainConfig())  # run folders from before --dtype still resume
    assert RunSpec(dtype="bfloat16").identity(TrainConfig())["dtype"] == "bfloat16"
    assert "device_map" not in RunSpec(device_map="auto").identity(TrainConfig())
    with pytest.raises(ValueError, match=r"device_map 'auto' places the model itself; leave device at 'auto'"):
        RunSpec(device_map="auto", device="cpu")
    with pytest.raises(ValueError, match=r"unknown dtype 'fp8'"):
        RunSpec(dtype="fp8")


def test_train_and_eval_flags(tiny_model_dir, tiny_task, tmp_path, capsys):  # noqa: F811
    from jola_lens.cli import main

    run = tmp_path / "run"
    common = ["--task", str(tiny_task), "--base_model_name", str(tiny_model_dir), "--dtype", "bfloat16",
              "--device_map", "cpu", "--max_length", "64", "--eval_batch", "8", "-q"]
    assert main(["train", *common, "--train_size", "16", "--val_size", "8", "--num_epoch", "1", "--train_batch", "8",
                 "--output_dir", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["dtype"], config["device_map"]) == ("bfloat16", "cpu")
    assert main(["eval", "--edit", str(run), "--scoring", "likelihood", "--limit", "8", "-q", "--device_map", "cpu"]) == 0
    assert "n=8" in capsys.readouterr().out
