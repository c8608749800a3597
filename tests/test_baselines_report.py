"""The baselines study's report (analysis/baselines.py): paired tests against hand computations, costs, verdicts."""

from __future__ import annotations

import json
import math
import sys

import pandas as pd
import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "analysis"))
import baselines  # noqa: E402

TASK = "extra/SST-2"


def _run(root, method: str, seed: int | None, correct: list[bool], parameters: int = 0, seconds: float = 10.0):
    folder = root / "runs" / method / (f"extra-SST-2-seed{seed}" if seed is not None else "extra-SST-2")
    folder.mkdir(parents=True)
    with open(folder / "predictions.jsonl", "w", encoding="utf-8") as handle:
        for i, ok in enumerate(correct):
            handle.write(json.dumps({"id": f"item{i}", "correct": ok, "prediction": "yes" if i % 4 else "no",
                                     "gold": "yes"}) + "\n")
    metrics = {"evaluation": {"results": {"likelihood": {"acc": 100.0 * sum(correct) / len(correct)}}}}
    if seed is not None:
        metrics["training"] = {"trainable_parameters": parameters, "train_seconds": seconds, "steps": 5}
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_jola_ahead_on_ten_items_and_tied_on_the_rest_gives_the_exact_sign_flip_p(tmp_path):
    jola = [True] * 10 + [True, False] * 5
    other = [False] * 10 + [True, False] * 5
    for seed in (1, 2):
        _run(tmp_path, "jola", seed, jola, parameters=540, seconds=20.0)
        _run(tmp_path, "lora", seed, other, parameters=9000)
    _run(tmp_path, baselines.ZERO_SHOT, None, jola)
    table = baselines.comparison_table(baselines.finished_runs(tmp_path)).set_index("method")
    # ten differences of +1, ten ties (dropped): of 2**10 sign patterns, all + and all - are as extreme
    assert table.at["lora", "p"] == pytest.approx(2 / 2**10)
    assert table.at["lora", "jola_minus"] == pytest.approx(50.0)  # 10 of 20 items, in points
    assert table.at["lora", "mean"] == pytest.approx(25.0) and table.at["jola", "mean"] == pytest.approx(75.0)
    assert table.at["zero-shot", "p"] == 1.0 and table.at["zero-shot", "jola_minus"] == 0.0  # every item ties
    assert table.at["lora", "p_bh"] == pytest.approx(2 * 2 / 2**10)  # BH over two tests: the smaller p times 2
    assert math.isnan(table.at["jola", "p"])
    assert table.at["lora", "top_answer_share"] == 75.0  # "no" on every 4th of 20 items, "yes" on the rest
    costs = baselines.cost_table(baselines.finished_runs(tmp_path))
    assert costs.loc["jola"].tolist() == [540, 0, 4.0, 2] and costs.loc["lora", "trainable_parameters"] == 9000
    assert baselines.claim_summary(table.reset_index()) == [
        "JoLA against zero-shot: ahead on 0, behind on 0, not told apart on 1 of 1 tasks "
        "(accuracy +0.0 points on average over 1 accuracy task).",
        "JoLA against lora: ahead on 1, behind on 0, not told apart on 0 of 1 tasks "
        "(accuracy +50.0 points on average over 1 accuracy task)."]
    assert baselines.verdicts(table.reset_index()) == [
        f"{TASK}: JoLA beats lora; cannot be told from zero-shot (BH-adjusted p < 0.05)."]


def test_seeds_are_averaged_per_item_before_the_test(tmp_path):
    _run(tmp_path, "jola", 1, [True, True, False, False])
    _run(tmp_path, "jola", 2, [True, False, False, False])
    _run(tmp_path, "ia3", 1, [False, False, False, True])
    _run(tmp_path, "ia3", 2, [False, True, False, True])
    scores = baselines.item_scores
    runs = baselines.finished_runs(tmp_path)
    jola = [scores(f, "acc") for f in runs[runs["method"] == "jola"]["folder"]]
    ia3 = [scores(f, "acc") for f in runs[runs["method"] == "ia3"]["folder"]]
    difference, p, items = baselines.paired_test(jola, ia3)
    # per-item means: jola (1, .5, 0, 0), ia3 (0, .5, 0, 1): differences (1, 0, 0, -1), mean 0 (seed 1 alone: 25)
    assert (difference, items) == (0.0, 4)
    assert p == pytest.approx(1.0)  # ties dropped: +1 and -1, every sign pattern is at least as extreme as mean 0


def test_runs_that_scored_other_items_are_refused(tmp_path):
    _run(tmp_path, "jola", 1, [True, False])
    _run(tmp_path, "lofit", 1, [True, False, True])
    with pytest.raises(ValueError, match=r"the runs scored different test items \(1 differ\): rerun them with the "
                                         r"same --limit"):
        baselines.comparison_table(baselines.finished_runs(tmp_path))


def test_report_without_runs_says_what_to_run(tmp_path):
    with pytest.raises(SystemExit, match="no scored runs under .*: run `python analysis/baselines.py` first"):
        baselines.write_report(tmp_path)


def test_report_writes_tables_figure_and_readme(tmp_path):
    for method, parameters in (("jola", 540), ("lora", 9000), ("ia3", 300)):
        for seed in (1, 2):
            _run(tmp_path, method, seed, [True, False, method == "jola", seed == 1], parameters=parameters)
    baselines.write_report(tmp_path)
    readme = (tmp_path / "README.md").read_text()
    assert "Runs finished: 6 of 55" in readme and "![accuracy against parameters](accuracy-vs-parameters.png)" in readme
    assert (tmp_path / "accuracy-vs-parameters.png").stat().st_size > 0
    assert pd.read_csv(tmp_path / "comparison.csv")["method"].tolist() == ["jola", "lora", "ia3"]
