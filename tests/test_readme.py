"""The README's Python examples run as written (on the embedded model, in a temporary folder)."""

import re
import runpy

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


def python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_readme_has_examples():
    assert len(python_blocks()) >= 2


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / f"readme_block_{index}.py"  # a real file: nnsight reads `with` blocks from source
    script.write_text(python_blocks()[index], encoding="utf-8")
    runpy.run_path(str(script), run_name="__readme__")
