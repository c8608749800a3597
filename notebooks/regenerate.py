"""Run notebooks top to bottom (full mode) and write them back with their outputs.

    python notebooks/regenerate.py 02_compare_localization.ipynb    # or several names; no name: every notebook

Each runs on the 'python3' kernel of this Python in a temporary working folder, as the test suite runs them
(which sets JOLA_NOTEBOOK_SMALL=1; this script does not). Execution timestamps are dropped so that a rerun only
changes what the cells show.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def regenerate(path: Path, timeout: int = 1800) -> None:
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as folder:
        NotebookClient(notebook, kernel_name="python3", timeout=timeout,
                       resources={"metadata": {"path": folder}}).execute()
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(notebook, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook file names in notebooks/ (default: all)")
    args = parser.parse_args()
    os.environ.pop("JOLA_NOTEBOOK_SMALL", None)
    paths = [HERE / name for name in args.names] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        if not path.is_file():
            raise SystemExit(f"no notebook {path}; the notebooks are: "
                             f"{', '.join(p.name for p in sorted(HERE.glob('*.ipynb')))}")
        regenerate(path)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
