"""The README's Python examples run as written (on the embedded model, in a temporary folder)."""

import re

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_examples():
    assert len(python_blocks()) >= 2


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(python_blocks()[index], f"README.md[python block {index}]", "exec"), {"__name__": "__readme__"})
