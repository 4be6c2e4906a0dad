"""A Colab/Kaggle tutorial notebook, run all at once: its first cell applies nest_asyncio.

Colab preinstalls the archived nest_asyncio 1.6 and the SDK tutorials written for it start
with ``nest_asyncio.apply()``. Here such a notebook is queued whole, as "Run all" does
(every cell sent before the first one ran, ``stop_on_error=False`` so that one failing cell
does not abort the rest), in a real kernel, in each mode: every cell must reply, with its
own result, and nothing may hang.
"""

from __future__ import annotations

import pytest

from support.kernel_harness import start_kernel

pytestmark = pytest.mark.kernel

DEFINE_WORK = "import asyncio\nasync def work(x):\n    await asyncio.sleep(0.01)\n    return x * 2"
# (cell, what it must give: its Out[n] text, or the name of the exception it raises)
AFTER_LOAD = [
    (DEFINE_WORK, None),
    ("asyncio.run(work(1))", "2"),
    ("await work(2)", "4"),
    ("asyncio.get_event_loop().run_until_complete(work(3))", "6"),
    ("asyncio.run(work(None))", "TypeError"),  # the user's error; the cells behind still run
    (  # the run_sync of pydantic-ai / util.run of ib_async
        "loop = asyncio.get_event_loop()\n"
        "loop.run_until_complete(asyncio.ensure_future(work(4), loop=loop))",
        "8",
    ),
    ("%run_async work(5)", "10"),
    ("%%in_new_loop\nawait work(6)", "12"),
    ("%%in_thread\nasyncio.run(work(7))", "14"),
    ("asyncio.run(work(8))", "16"),
    ("from asyncbridge_ext import NestAsyncio\nNestAsyncio.backend", "'nest_asyncio2'"),
]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", ["nest", "thread", "auto"])
def test_a_tutorial_that_applies_nest_asyncio_first_loses_no_cell(mode: str) -> None:
    notebook = [
        "import nest_asyncio\nnest_asyncio.apply()",
        f"%config AsyncBridge.nested_run = {mode!r}\n%load_ext asyncbridge_ext",
        *(code for code, _ in AFTER_LOAD),
    ]
    with start_kernel() as kernel:
        cells = [kernel.submit(code, stop_on_error=False) for code in notebook]
        kernel.wait(cells, timeout=90)  # about 5 s when all is well
        apply, load, *rest = cells
        assert (apply.status, load.status) == ("ok", "ok"), apply.describe() + load.describe()
        told = load.stderr
        assert "asyncio was patched by the archived nest_asyncio 1.6.0" in told, told
        assert told.count("asyncbridge_ext:") == 1, told
        for cell, (_, expected) in zip(rest, AFTER_LOAD, strict=True):
            if expected is None:
                assert cell.status == "ok", cell.describe() + cell.traceback
            elif expected.isidentifier():
                assert cell.error is not None and cell.error["ename"] == expected, cell.describe()
            else:
                assert (cell.status, cell.result) == ("ok", expected), (
                    cell.describe() + cell.traceback
                )
            assert "asyncbridge_ext:" not in cell.stderr, cell.describe()  # told once
        assert kernel.ok("%config AsyncBridge.nested_run").result == repr(mode)
