"""The notebooks run top to bottom in small mode (JOLA_NOTEBOOK_SMALL=1), in a temporary working folder, on a
kernel of this very Python; no cell errors and each shows what it is about."""

import sys
from pathlib import Path

import nbformat
import pytest
from conftest import REPO
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOKS = REPO / "notebooks"

# notebook -> (a line of the cell whose output matters, the MIME type that output must have)
KEY_OUTPUTS = {
    "01_quickstart.ipynb": ("heatmap = plot_head_heatmap(RUN_DIR)", "image/png"),
    "02_compare_localization.ipynb": ("plot_head_grid(commonsense)", "image/png"),
    "03_transformerlens_and_nnsight.ipynb": ("plot_patterns(", "image/png"),
}


# committed with their outputs, so that a reader sees the figures; `python notebooks/regenerate.py NAME` rewrites them
WITH_OUTPUTS = {"02_compare_localization.ipynb"}


def test_every_notebook_is_tested_and_committed_as_intended():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(KEY_OUTPUTS)
    for name in KEY_OUTPUTS:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        if name in WITH_OUTPUTS:
            numbers = [cell.get("execution_count") for cell in code]
            assert numbers == sorted(numbers) and None not in numbers, \
                f"{name} is not committed as one full run: python notebooks/regenerate.py {name}"
            assert not any(out.output_type == "error" for cell in code for out in cell.outputs), name
        else:
            assert all(not cell.get("outputs") and not cell.get("execution_count") for cell in code), \
                f"{name} is committed with outputs"


def test_python3_kernel_is_this_interpreter():
    """jupyter_client starts the 'python3' kernelspec's bare `python` as sys.executable (the venv's python)."""
    command = KernelManager(kernel_name="python3").format_kernel_cmd()
    assert Path(command[0]).resolve() == Path(sys.executable).resolve(), command


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(KEY_OUTPUTS))
def test_notebook_runs(name, tmp_path, monkeypatch):
    monkeypatch.setenv("JOLA_NOTEBOOK_SMALL", "1")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors
    marker, mime = KEY_OUTPUTS[name]
    (cell,) = [cell for cell in code if marker in cell.source]
    assert any(mime in out.get("data", {}) for out in cell.outputs), f"{name}: no {mime} output from {marker!r}"
