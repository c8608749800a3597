"""analysis/localization_stability.py --report: the settings x measures table of whatever runs exist, against
hand computations on planted selections."""

from __future__ import annotations

import shutil
import sys

import pandas as pd
import pytest
from scipy.stats import hypergeom
from conftest import REPO
from test_analysis_support import make_edit, make_run

from jola_lens import atomic
from jola_lens.run_folder import RunFolder

sys.path.insert(0, str(REPO / "analysis"))
import localization_stability as study  # noqa: E402

HEADS = {"sst2": [(0, 0), (0, 1), (1, 2)], "arc-e": [(0, 1), (2, 3)]}  # 3 x 4 heads; shared: L0H1
ACCURACY = {"sst2": [70.0, 72.0, 74.0, 76.0], "arc-e": [50.0, 50.0, 56.0, 58.0]}


def _run(output, setting, task, seed, heads, accuracy=None, answers=("yes", "no", "no", "no")):
    edit = make_edit(open_heads={"additive": heads, "multiplicative": heads}, seed=seed)
    run = make_run(output / "runs" / setting / f"{task}-seed{seed}", edit, task=study.TASKS[task][0])
    atomic.write_json(run.config, {"task": study.TASKS[task][0], "model": "test/model",
                                   "train": {"seed": seed, **study.SETTINGS[setting]}})
    if accuracy is not None:
        atomic.write_json(run.metrics, {"evaluation": {"n": 100, "results": {"likelihood": {"acc": accuracy}}}})
        for answer in answers:
            atomic.append_jsonl(run.root / "predictions.jsonl", {"prediction": answer, "gold": "yes"})
    return run


def test_report_measures_planted_task_structure_and_partial_settings(tmp_path):
    for task, heads in HEADS.items():
        for seed, accuracy in enumerate(ACCURACY[task], start=1):
            _run(tmp_path, "fast", task, seed, heads, accuracy, **({"answers": ["yes"] * 4} if seed == 1 else {}))
    _run(tmp_path, "fast", "boolq", 1, [(0, 0)])  # still training: no evaluation, left out
    _run(tmp_path, "paper", "sst2", 1, [(0, 0), (1, 1)], 60.0)  # one seed so far
    study.write_report(tmp_path, n_permutations=99)

    measures = pd.read_csv(tmp_path / "measures.csv")
    assert list(measures.columns) == list(study.MEASURE_COLUMNS)
    rows = {(r.setting, r.task, r.kind): r for r in measures.itertuples()}
    assert set(rows) == {(s, t, k) for s, t in (("fast", "extra/SST-2"), ("fast", "commonsense/ARC-e"),
                                                ("fast", study.ACROSS_TASKS), ("paper", "extra/SST-2"))
                         for k in ("additive", "multiplicative")}
    sst2 = rows["fast", "extra/SST-2", "multiplicative"]
    assert (sst2.n_runs, sst2.seeds, sst2.n_heads, sst2.kept_mean, sst2.kept_min, sst2.kept_max) == (
        4, "1 2 3 4", 12, 3.0, 3, 3)
    assert sst2.nogueira == pytest.approx(1.0) and sst2.jaccard == pytest.approx(1.0)
    chance = sum(hypergeom(12, 3, 3).pmf(i) * i / (6 - i) for i in range(4))  # two random 3-of-12 sets
    assert sst2.jaccard_chance == pytest.approx(chance)
    assert sst2.top_answer_share == pytest.approx((100 + 3 * 75) / 4)  # seed 1 answered "yes" to every item
    assert sst2.acc_mean == pytest.approx(73.0) and sst2.acc_sd == pytest.approx(pd.Series(ACCURACY["sst2"]).std())
    across = rows["fast", study.ACROSS_TASKS, "additive"]
    assert across.same_task_other_seed_jaccard == pytest.approx(1.0)
    assert across.other_task_same_seed_jaccard == pytest.approx(1 / 4)  # {L0H1} of {L0H0, L0H1, L1H2, L2H3}
    assert across.other_task_other_seed_jaccard == pytest.approx(1 / 4)
    assert (across.n_same_task_pairs, across.n_same_seed_pairs) == (2 * 6, 4)
    assert across.task_p_selection < 0.05  # 2 of the 70 relabellings give the observed split
    paper = rows["paper", "extra/SST-2", "additive"]
    assert paper.n_runs == 1 and pd.isna(paper.nogueira) and paper.acc_mean == 60.0 and pd.isna(paper.acc_sd)

    readme = (tmp_path / "README.md").read_text()
    assert "| fast | 4 | 4 | 0 | screen |" in readme and "| paper | 1 | 0 | 0 | partial |" in readme
    assert "**Partial results**" in readme and "python analysis/localization_stability.py --report" in readme
    assert "fast, additive, selection: the tasks differ beyond seed noise" in readme
    for name in ("consensus-fast.png", "overlap-fast.png", "heads-fast.png", "heads-paper.png"):
        assert (tmp_path / name).is_file() and f"![{name}]({name})" in readme
    assert not (tmp_path / "consensus-paper.png").exists()  # one seed: no consensus
    markdown = (tmp_path / "measures.md").read_text()
    assert "| fast | extra/SST-2 | multiplicative | 4 | 3.0 [3, 3] of 12 | 1.00 [" in markdown
    assert "| 73.0 ± 2.6 | 81 |" in markdown
    assert markdown in readme.replace("## Measures: ", "## ")


def test_the_across_task_columns_tell_a_planted_seed_effect_from_a_task_effect(tmp_path):
    task_heads = {"sst2": [(0, 0)], "arc-e": [(1, 0)]}
    seed_heads = {1: [(2, 0), (2, 1)], 2: [(2, 2), (2, 3)], 3: [(1, 2), (1, 3)]}  # what the seed keeps on any task
    for task, heads in task_heads.items():
        for seed, extra in seed_heads.items():
            _run(tmp_path, "fast", task, seed, heads + extra, 60.0)
    study.write_report(tmp_path, n_permutations=99)
    measures = pd.read_csv(tmp_path / "measures.csv")
    across = measures[(measures["task"] == study.ACROSS_TASKS) & (measures["kind"] == "multiplicative")].iloc[0]
    assert across.same_task_other_seed_jaccard == pytest.approx(1 / 5)  # the task's head of 5
    assert across.other_task_same_seed_jaccard == pytest.approx(2 / 4)  # the seed's 2 heads of 4
    assert across.other_task_other_seed_jaccard == 0.0
    assert (across.n_same_task_pairs, across.n_same_seed_pairs) == (2 * 3, 3)
    assert across.task_p_selection > 0.05  # the seed structure is no task structure


def test_report_says_why_the_index_is_undefined_when_every_head_is_kept(tmp_path):
    for seed in (1, 2):
        _run(tmp_path, "paper", "sst2", seed, [(layer, head) for layer in range(3) for head in range(4)], 70.0)
    study.write_report(tmp_path, n_permutations=9)
    assert "| undefined (every run keeps all heads) |" in (tmp_path / "measures.md").read_text()
    assert "No setting has finished runs of two or more tasks" in (tmp_path / "measures.md").read_text()
    with pytest.raises(SystemExit, match=r"no finished runs under .*runs; train some first"):
        study.write_report(tmp_path / "empty", n_permutations=9)


def test_a_keep_heads_setting_prunes_the_finished_runs_of_its_source_setting(tmp_path, monkeypatch):
    monkeypatch.setitem(study.SETTINGS, "target_wide_keep", study.SETTINGS["target_wide_keep"] | {"keep_heads": 2})
    trained = _run(tmp_path, "target_wide", "sst2", 1, [(0, 0), (1, 2), (2, 3)])
    atomic.write_json(trained.metrics, {"training": {"steps": 65, "heads": {}}})
    _run(tmp_path, "target_wide", "sst2", 2, [(0, 0)])  # still training: nothing to prune yet
    study.prune_finished_runs("target_wide", "target_wide_keep", ["sst2"], [1, 2], tmp_path)
    pruned = tmp_path / "runs" / "target_wide_keep"
    assert sorted(p.name for p in pruned.iterdir()) == ["sst2-seed1"]
    edit = RunFolder(pruned / "sst2-seed1").load_edit()
    assert edit.config.heads == trained.load_edit().pruned(2).config.heads
    assert all(len(heads) == 2 for heads in edit.config.heads.values())
    assert RunFolder(pruned / "sst2-seed1").read_config()["train"]["keep_heads"] == 2


def test_the_report_reads_each_causal_check_into_one_row(tmp_path):
    from jola_lens.analysis.causal import causal_table

    ids = [str(i) for i in range(8)]
    correct = {"top": dict.fromkeys(ids, True), "bottom": {i: i < "2" for i in ids},
               "random-0": {i: i < "4" for i in ids}, "random-1": {i: i < "6" for i in ids},
               "full": dict.fromkeys(ids, True), "zero-shot": dict.fromkeys(ids, False)}
    table, verdict = causal_table(correct)
    check = tmp_path / "causal" / "target_wide-sst2" / "causal-extra-SST-2"
    check.mkdir(parents=True)
    table.to_csv(check / "causal.csv", index=False)
    (check / "causal.md").write_text(f"# Causal check\n\nHeads ranked by the multiplicative gates' consensus "
                                     f"`mean_p_nonzero`. Head sets of k = 27: ...\n\n**Verdict:** {verdict}.\n")
    per_kind = tmp_path / "causal" / "no_noise-sst2" / "causal-extra-SST-2"
    shutil.copytree(check, per_kind)
    text = (per_kind / "causal.md").read_text().replace("the multiplicative gates'", "each edit kind's own")
    (per_kind / "causal.md").write_text(text)
    rows = study.causal_summary(tmp_path).to_dict("records")
    assert [(row["check"], row["ranked by"]) for row in rows] == [("no_noise-sst2", "per kind"),
                                                                   ("target_wide-sst2", "multiplicative")]
    row = rows[1]
    assert (row["check"], row["k"], row["top"], row["bottom"], row["full"], row["zero-shot"]) == (
        "target_wide-sst2", 27, 100.0, 25.0, 100.0, 0.0)
    assert row["random (mean)"] == pytest.approx(62.5) and row["verdict"] == verdict
