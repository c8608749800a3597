"""The study machinery of analysis/studies.py: flags, the seed control's statements, the logit-lens summary."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
import torch
from conftest import REPO

from jola_lens import JoLAConfig, JoLAEdit
from jola_lens.analysis import head_table
from jola_lens.analysis.sources import EditSource
from jola_lens.training.presets import PRESETS

sys.path.insert(0, str(REPO / "analysis"))
import studies  # noqa: E402

TASKS = (studies.StudyTask("t/A", "f"), studies.StudyTask("t/B", "f"), studies.StudyTask("t/C", "f"))


def test_flags_default_to_cloze_and_a_two_task_seed_control(tmp_path):
    args = studies.parse_args("d", "study", TASKS, argv=["--output", str(tmp_path)])
    assert (args.formulation, args.seed, args.control_seed, args.gate_init) == ("cloze", 42, 7, None)
    assert [t.name for t in studies.control_tasks(TASKS, args)] == ["t/A", "t/B"]
    assert studies.train_config(args, args.control_seed).seed == 7 and studies.train_config(args).seed == 42
    assert studies.control_folder(TASKS[0], args) == tmp_path / "runs" / "t-A-seed7"
    args = studies.parse_args("d", "study", TASKS, argv=["--tasks", "t/B", "t/C", "--control-tasks", "--gate-init",
                                                        "-0.5"])
    assert studies.control_tasks(TASKS, args) == [] and studies.train_config(args).gate_init == -0.5


def test_the_studies_train_with_the_localize_preset_unless_told_otherwise(tmp_path):
    default = studies.train_config(studies.parse_args("d", "study", TASKS, argv=[]))
    assert studies.STUDY_PRESET == "localize"
    assert {key: getattr(default, key) for key in PRESETS["localize"]} == PRESETS["localize"]
    assert (default.lr, default.num_epoch, default.train_batch, default.penalty_scale) == (5e-3, 2, 4, 1.0)
    explicit = studies.train_config(studies.parse_args("d", "study", TASKS, argv=["--gate-init", "-0.5"]))
    assert explicit.gate_init == -0.5 and explicit.gate_noise == "off"  # a flag given wins over the preset
    earlier = studies.train_config(studies.parse_args("d", "study", TASKS, argv=["--preset", "none"]))
    assert (earlier.gate_init, earlier.target_heads, earlier.gate_noise, earlier.penalty_scale) == (
        None, None, "sample", 10.0)
    paper = studies.parse_args("d", "study", TASKS, argv=["--paper"])
    assert paper.preset == "none" and studies.train_config(paper).target_heads is None
    assert studies.parse_args("d", "study", TASKS, argv=["--paper", "--preset", "target30"]).preset == "target30"


def test_a_control_seed_equal_to_the_seed_is_refused(capsys):
    with pytest.raises(SystemExit, match=r"^2$"):  # argparse's usage error; its message is on stderr
        studies.parse_args("d", "study", TASKS, argv=["--control-seed", "42"])
    assert "--control-seed must differ from --seed" in capsys.readouterr().err


def _source(label: str, task: str, kept: set[int]) -> EditSource:
    """An edit on a 2 x 3 grid whose multiplicative gates keep the heads numbered ``kept`` (layer * 3 + head)."""
    edit = JoLAEdit(JoLAConfig(n_layers=2, n_heads=3, d_head=4), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        edit.additive_gate_logits.fill_(10.0)
        edit.multiplicative_gate_logits.copy_(torch.tensor([10.0 if i in kept else -10.0 for i in range(6)])
                                              .view(2, 3))
    return EditSource(label, task, "m", edit.eval())


def test_findings_set_the_same_task_under_another_seed_beside_the_task_pairs():
    table = head_table([_source("t/A", "t/A", {0, 1, 2, 3}), _source("t/B", "t/B", {0, 1, 2, 4}),
                        _source("t/A (seed 7)", "t/A", {0, 5})])
    table["init_p_nonzero"] = 0.5  # a constant start (--gate-init)
    lines = studies.findings(table, studies.overlap_table(table), {"t/A (seed 7)": "t/A"},
                             {"t/A": "f1", "t/B": "f2"})
    multiplicative = next(line for line in lines if line.startswith("- **multiplicative**"))
    assert "heads kept per run 4-4 of 6" in multiplicative and "kept in all 2 runs: 3 head(s)" in multiplicative
    assert "other task, same seed: mean pairwise Jaccard 0.60" in multiplicative  # |{0,1,2}| / |{0..4}|
    assert "Same task, other seed (t/A vs t/A (seed 7)): Jaccard 0.20" in multiplicative  # |{0}| / |{0,1,2,3,5}|
    assert "every gate started at the same logit" in multiplicative
    assert "Task pairs between families: mean Jaccard 0.60" in multiplicative and "within a family" not in multiplicative
    assert "follows the seed (the random numbers of the run), not the task." in multiplicative


def test_lens_summary_names_each_runs_strongest_head():
    rows = [("r", 3, 1, 2.25, "promotes", 1, "␣yes"), ("r", 3, 1, 2.25, "suppresses", 1, "␣no"),
            ("r", 5, 0, 1.0, "promotes", 1, "x")]
    lens = pd.DataFrame(rows, columns=["run", "layer", "head", "written_norm", "direction", "rank", "token"])
    assert studies.lens_markdown(lens).splitlines()[2] == "| r | L3H1 | 2.25 | '␣yes' | '␣no' |"
    assert studies.lens_markdown(lens.iloc[:0]) == "(no open additive gate)"
