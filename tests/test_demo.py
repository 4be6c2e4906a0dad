"""notebooks/show.py (what `make demo` runs): prints each cell and its output, and fails
when a cell raises an error it was not tagged to raise."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.kernel

SHOW = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "show.py"


def write_notebook(path: pathlib.Path, *cells: nbformat.NotebookNode) -> pathlib.Path:
    notebook = new_notebook(
        cells=list(cells),
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    nbformat.write(notebook, path)
    return path


def show(path: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SHOW), str(path)], capture_output=True, text=True, timeout=120
    )


def test_prints_sources_and_outputs_and_accepts_tagged_errors(tmp_path: pathlib.Path) -> None:
    expected_error = new_code_cell("raise ValueError('shown on purpose')")
    expected_error.metadata["tags"] = ["raises-exception"]
    path = write_notebook(
        tmp_path / "ok.ipynb",
        new_code_cell("print('hello from the kernel')\n6 * 7"),
        expected_error,
    )
    done = show(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "print('hello from the kernel')" in done.stdout
    assert "hello from the kernel" in done.stdout
    assert "Out[1]: 42" in done.stdout
    assert "ValueError: shown on purpose" in done.stdout
    assert "every cell ran" in done.stdout


def test_exits_non_zero_when_a_cell_fails(tmp_path: pathlib.Path) -> None:
    path = write_notebook(tmp_path / "bad.ipynb", new_code_cell("1 / 0"))
    done = show(path)
    assert done.returncode == 1
    assert "ZeroDivisionError" in done.stderr
    assert "a cell failed" in done.stderr
