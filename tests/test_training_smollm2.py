"""End to end on the real default model (slow): a short JoLA run on SST-2 through the CLI."""

from __future__ import annotations

import json
import math

import pytest

from jola_lens.cli import main
from jola_lens.run_folder import RunFolder


@pytest.mark.slow
def test_smollm2_sst2_train_eval(tmp_path, smollm2, capsys):
    run = tmp_path / "sst2"
    argv = ["train", "--task", "extra/SST-2", "--formulation", "text", "--source", "embedded", "--train_size", "16",
            "--val_size", "8", "--num_epoch", "1", "--eval_batch", "8", "--run_mode", "train_eval", "--scoring",
            "both", "--limit", "8", "--output_dir", str(run), "--quiet"]
    assert main(argv) == 0
    assert "SmolLM2" in capsys.readouterr().out
    metrics = json.loads(RunFolder(run).metrics.read_text())
    assert math.isfinite(metrics["training"]["best_val_loss"])
    assert metrics["training"]["heads"]["additive"]["total"] == 270
    assert set(metrics["evaluation"]["results"]) == {"generation", "likelihood"}
    assert metrics["evaluation"]["n"] == 8
