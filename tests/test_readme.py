"""The README's Python examples run, exactly as written, in a real kernel."""

from __future__ import annotations

import pathlib
import re

import pytest

from support.kernel_harness import start_kernel

pytestmark = pytest.mark.kernel

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    text = README.read_text()
    return [block.strip() for block in re.findall(r"```python\n(.*?)```", text, re.S)]


def test_every_python_example_of_the_readme_runs_in_a_kernel() -> None:
    blocks = [block for block in python_blocks() if not block.startswith("%config")]
    assert len(blocks) >= 5  # the JupyterLab and helper examples were found
    with start_kernel() as kernel:
        cells = [kernel.ok(block) for block in blocks]
    by_source = dict(zip(blocks, cells, strict=True))

    def cell_starting(prefix: str):  # type: ignore[no-untyped-def]
        (match,) = [cell for source, cell in by_source.items() if source.startswith(prefix)]
        return match

    assert cell_starting("%load_ext asyncbridge_ext").result == "2"
    assert cell_starting("%run_async fetch(21)").result == "42"
    assert cell_starting("value = %run_async").result == "10"
    assert cell_starting("results = %run_async asyncio.gather").result == "[0, 2, 4, 6, 8]"
    assert cell_starting("%%in_thread").stdout == "doubled 8\n"
    assert cell_starting("%%in_thread").result == "9"
    assert cell_starting("from asgiref.sync import async_to_sync").result == "10"
    assert cell_starting("%%in_new_loop").stdout == "fetched [0, 2, 4]\n"
    assert cell_starting("%%in_new_loop").result == "3"
    assert cell_starting("run_coroutine_in_new_loop(fetch(3)").result == "6"
    assert cell_starting("import anyio").result == "8"


def test_the_readme_way_to_start_in_thread_mode_applies_no_nest_patch() -> None:
    (block,) = [block for block in python_blocks() if block.startswith("%config")]
    with start_kernel() as kernel:
        kernel.ok(block)
        check = kernel.ok(
            "import asyncio\n"
            "from asyncbridge_ext import NestAsyncio\n"
            "(NestAsyncio.is_applied, asyncio.run(asyncio.sleep(0, result='nested ok')))"
        )
    assert check.result == "(False, 'nested ok')"


def test_the_colab_lines_upgrade_nothing_and_load_the_extension() -> None:
    (block,) = [block for block in python_blocks() if block.startswith("%pip install")]
    versions = (
        "import importlib.metadata as m\n"
        "[m.version(name) for name in ('ipython', 'ipykernel', 'tornado', 'traitlets')]"
    )
    with start_kernel() as kernel:
        before = kernel.ok(versions).result
        cell = kernel.ok(block)
        assert "asyncbridge-ext" in cell.stdout, cell.describe()  # pip ran and saw it
        after = kernel.ok(versions).result
        loaded = kernel.ok("'asyncbridge_ext' in get_ipython().extension_manager.loaded")
    assert after == before
    assert loaded.result == "True"
