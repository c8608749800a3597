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
