"""CI runs with the benchmark data required: the data fixture fails instead of skipping when the folder is missing."""

from __future__ import annotations

import pytest
from conftest import REPO, find_data_dir


def test_missing_data_skips_by_default_and_fails_when_required(tmp_path, monkeypatch):
    monkeypatch.setenv("JOLA_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.delenv("JOLA_REQUIRE_DATA", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"benchmark data not found at .*nowhere \(set JOLA_DATA_DIR\)"):
        find_data_dir()
    monkeypatch.setenv("JOLA_REQUIRE_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match=r"nowhere \(set JOLA_DATA_DIR\); JOLA_REQUIRE_DATA=1 requires it"):
        find_data_dir()
    monkeypatch.setenv("JOLA_DATA_DIR", str(tmp_path))
    assert find_data_dir() == tmp_path


def test_ci_requires_the_data_and_runs_the_readme_test_command():
    script = (REPO / ".ci" / "run").read_text()
    lines = [line.strip() for line in script.splitlines() if line.strip() and not line.startswith("#")]
    assert "export JOLA_REQUIRE_DATA=1" in lines and lines[-1] == "make test"
    assert lines.index("export JOLA_REQUIRE_DATA=1") < lines.index("make test")


def test_a_task_registered_by_a_test_is_there_during_it():
    from jola_lens.tasks import get_task, list_tasks, register_task

    register_task("ci-leak/probe", lambda: get_task("extra/SST-2"))
    assert "ci-leak/probe" in list_tasks() and get_task("probe").name == "extra/SST-2"


def test_and_gone_after_it():
    """Runs after the test above: the autouse registry fixture in conftest.py removed its task."""
    from jola_lens.tasks import get_task, list_tasks

    assert "ci-leak/probe" not in list_tasks() and "extra/SST-2" in list_tasks()
    with pytest.raises(ValueError, match=r"unknown task 'ci-leak/probe'"):
        get_task("ci-leak/probe")
