"""%%in_thread and %in_thread in a real kernel: sync code on a thread where no loop runs.

One kernel shared by the module; fresh kernels for interrupts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from support.kernel_harness import TRACEBACKS_SAY_CELL_IN, Kernel, start_kernel, usage_error

pytestmark = pytest.mark.kernel

SETUP = """
import asyncio, threading
%load_ext asyncbridge_ext
from asyncbridge_ext.core.activity import ACTIVITY
MAIN = threading.get_ident()

def loop_running_here():
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True

async def answer(value=42):
    await asyncio.sleep(0)
    return value

sentinel = "untouched"
"""


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with start_kernel() as kernel:
        kernel.ok(SETUP)
        yield kernel


def assert_usage_error(kernel: Kernel, code: str, *fragments: str) -> None:
    """``code`` fails with a UsageError naming ``fragments``, and the kernel is fine after."""
    usage_error(kernel, code, *fragments)
    assert kernel.ok("sentinel").result == "'untouched'"


def test_cell_runs_on_a_loop_free_thread_with_cell_semantics(kernel: Kernel) -> None:
    cell = kernel.ok(
        "%%in_thread\n"
        "print('first')\n"
        "worker = threading.get_ident()\n"
        "loop_there = loop_running_here()\n"
        "from IPython.display import display\n"
        "display('shown')\n"
        "asyncio.run(answer(7)) * 6\n"
    )
    assert cell.stdout == "first\n"
    assert [kind for kind, _ in cell.outputs] == ["stream", "display_data", "execute_result"]
    assert cell.result == "42"
    after = kernel.ok("worker != MAIN, loop_there, _, '__asyncbridge_last_value__' in globals()")
    assert after.result == "(True, False, 42, False)"


def test_cell_trailing_semicolon_and_statement_end_show_nothing(kernel: Kernel) -> None:
    assert kernel.ok("%%in_thread\n1 + 1;").results == []
    assert kernel.ok("%%in_thread\nhidden = 1 + 1").results == []
    assert kernel.ok("hidden").result == "2"


def test_line_form_returns_the_value(kernel: Kernel) -> None:
    kernel.ok("value = %in_thread asyncio.run(answer(5))")
    assert kernel.ok("value").result == "5"
    assert kernel.ok("%in_thread threading.get_ident() != MAIN").result == "True"
    assert kernel.ok("%in_thread loop_running_here()").result == "False"
    assert kernel.ok("%in_thread 1 + 1;").results == []
    assert kernel.ok("%in_thread -1 + 3").result == "2"  # a leading minus is not an option
    assert kernel.ok("%in_thread --timeout 5 -2 * 3").result == "-6"
    kernel.ok("timed = %in_thread --timeout 5 asyncio.run(answer(6))")
    assert kernel.ok("timed").result == "6"


def test_libraries_that_refuse_a_running_loop_work_there(kernel: Kernel) -> None:
    kernel.ok("import anyio\nfrom asgiref.sync import async_to_sync")
    refused = kernel.run("anyio.run(answer)")
    assert (
        refused.error is not None
        and "Already running asyncio in this thread" in (refused.error["evalue"])
    )
    refused = kernel.run("async_to_sync(answer)()")
    assert (
        refused.error is not None
        and "You cannot use AsyncToSync in the same thread" in (refused.error["evalue"])
    )
    assert kernel.ok("%in_thread anyio.run(answer)").result == "42"
    assert kernel.ok("%%in_thread\nasync_to_sync(answer)(3)").result == "3"


def test_thread_local_state_persists_across_cells(kernel: Kernel) -> None:
    kernel.ok(
        "%%in_thread\n"
        "local = threading.local()\n"
        "local.session = 'kept'\n"
        "first_worker = threading.get_ident()\n"
        "asyncio.set_event_loop(asyncio.new_event_loop())\n"
        "default_loop = asyncio.get_event_loop()\n"
    )
    cell = kernel.ok(
        "%%in_thread\n"
        "(local.session, threading.get_ident() == first_worker,\n"
        " asyncio.get_event_loop() is default_loop)"
    )
    assert cell.result == "('kept', True, True)"
    kernel.ok("%%in_thread\nasyncio.get_event_loop().close()\nasyncio.set_event_loop(None)")


def test_nesting_line_form_inside_a_cell(kernel: Kernel) -> None:
    cell = kernel.ok(
        "%%in_thread\n"
        "outer = threading.get_ident()\n"
        "inner = %in_thread threading.get_ident()\n"
        "print('nested', inner not in (outer, MAIN))\n"
        "%in_thread asyncio.run(answer(9))\n"
    )
    assert (cell.stdout, cell.result) == ("nested True\n", "9")


def test_timeout_stops_the_work(kernel: Kernel) -> None:
    cell = kernel.run(
        "%%in_thread --timeout 0.5\n"
        "spins = 0\n"
        "try:\n"
        "    while True:\n"
        "        spins += 1\n"
        "finally:\n"
        "    stopped = 'yes'\n"
    )
    assert cell.error is not None and cell.error["ename"] == "TimeoutError", cell.describe()
    assert kernel.ok("stopped").result == "'yes'"
    cell = kernel.run("%in_thread --timeout 0.3 asyncio.run(asyncio.sleep(30))")
    assert cell.error is not None and cell.error["ename"] == "TimeoutError", cell.describe()
    kernel.ok("%config AsyncBridge.timeout = 0.3")
    try:
        cell = kernel.run("%in_thread asyncio.run(asyncio.sleep(30))")
        assert cell.error is not None and cell.error["ename"] == "TimeoutError", cell.describe()
    finally:
        kernel.ok("%config AsyncBridge.timeout = None")


def test_exception_is_the_users_and_points_at_the_cell(kernel: Kernel) -> None:
    cell = kernel.run("%%in_thread\nx1 = 1\nraise ValueError('bad value ' + str(x1))")
    assert cell.error is not None
    assert (cell.error["ename"], cell.error["evalue"]) == ("ValueError", "bad value 1")
    assert "----> 3 raise ValueError('bad value ' + str(x1))" in cell.traceback, cell.traceback
    assert "run_in_thread" not in cell.traceback and "run_cell_code" not in cell.traceback
    if TRACEBACKS_SAY_CELL_IN:
        assert len(set(re.findall(r"Cell In\[(\d+)\]", cell.traceback))) == 1, cell.traceback
    else:  # IPython 7: each frame is labelled by the file ipykernel named after its code
        body_frame = r"ipykernel_\d+/\d+\.py in <module>\n      1 %%in_thread\n"
        assert re.search(body_frame, cell.traceback), cell.traceback
    cell = kernel.run("%in_thread {}['missing']")
    assert cell.error is not None and cell.error["ename"] == "KeyError", cell.describe()
    assert "evaluate_expression" not in cell.traceback, cell.traceback


def test_each_call_is_counted(kernel: Kernel) -> None:
    before = kernel.ok("ACTIVITY.counts['magic.in_thread']").result
    assert before is not None
    kernel.ok("%in_thread 1")
    kernel.ok("%%in_thread\n2")
    assert kernel.ok("ACTIVITY.counts['magic.in_thread']").result == str(int(before) + 2)


@pytest.mark.parametrize(
    ("code", "fragments"),
    [
        ("%in_thread", ["needs an expression", "%in_thread client.execute(query)"]),
        ("%in_thread await answer()", ["cannot contain `await`", "%run_async"]),
        ("%in_thread answer()", ["gave a coroutine", "`%run_async answer()`"]),
        ("%in_thread y = 1", ["not one", "x = %in_thread"]),
        ("%in_thread --timeout 0 1", ["positive number", "'0'"]),
        ("%in_thread --fast 1", ["unrecognized arguments: --fast"]),
        ("%%in_thread\n", ["cell body is empty"]),
        ("%%in_thread\n# only a comment\n", ["needs code in the cell body"]),
        ("%%in_thread\nx = 1\nawait answer()", ["`await` on line 3", "%%in_new_loop"]),
        ("%%in_thread\nasync with x:\n    pass", ["`async with` on line 2", "%%in_new_loop"]),
        ("%%in_thread\nreturn 1", ["`return` on line 2"]),
        ("%%in_thread stray words\npass", ["only options", "'stray words'"]),
        ("%%in_thread --timeout abc\npass", ["positive number", "'abc'"]),
    ],
)
def test_bad_input_is_a_usage_error(kernel: Kernel, code: str, fragments: list[str]) -> None:
    assert_usage_error(kernel, code, *fragments)


def test_a_refused_coroutine_is_closed_without_a_warning(kernel: Kernel) -> None:
    refused = kernel.run("%in_thread answer()")
    assert refused.reply is not None and refused.reply["ename"] == "UsageError"
    after = kernel.ok("import gc\ngc.collect()")
    assert "never awaited" not in refused.stderr + after.stderr, refused.stderr + after.stderr


def test_help_says_what_runs_where(kernel: Kernel) -> None:
    cell = kernel.ok("%in_thread?")
    payload = cell.reply["payload"] if cell.reply else []
    text = "".join(p.get("data", {}).get("text/plain", "") for p in payload)
    assert "%in_thread [--timeout S] [EXPR ...]" in text
    assert "no event loop runs" in text and "%%in_thread --timeout 30" in text


def test_dollar_and_braces_reach_python_verbatim_in_every_magic(kernel: Kernel) -> None:
    """Each magic is @no_var_expand: with a user variable x, `$x` / `{x}` stay as typed."""
    kernel.ok("x = '0.5'")
    assert kernel.ok("%in_thread '$x {x}'").result == "'$x {x}'"
    assert kernel.ok("%run_async asyncio.sleep(0, '$x {x}')").result == "'$x {x}'"
    # expanded, these lines would read `--timeout 0.5` and run; verbatim they are refused
    assert_usage_error(kernel, "%%in_thread --timeout $x\npass", "'$x'")
    assert_usage_error(kernel, "%%in_thread --timeout {x}\npass", "'{x}'")
    assert_usage_error(kernel, "%%in_new_loop --timeout $x\npass", "'$x'")
    assert_usage_error(kernel, "%%in_new_loop --timeout {x}\npass", "'{x}'")


@pytest.mark.parametrize("mode", ["nest", "thread"])
def test_interrupt_cancels_a_loop_running_in_the_thread(mode: str) -> None:
    with start_kernel() as kernel:
        kernel.ok(
            f"%config AsyncBridge.nested_run = {mode!r}\n"
            "import asyncio\nstate = []\n%load_ext asyncbridge_ext"
        )
        cell = kernel.submit(
            "%%in_thread\n"
            "async def slow():\n"
            "    try:\n"
            "        print('coroutine started', flush=True)\n"
            "        await asyncio.sleep(60)\n"
            "    finally:\n"
            "        state.append('finally ran')\n"
            "asyncio.run(slow())\n"
        )
        kernel.interrupt_once_running(cell, "coroutine started")
        assert kernel.ok("state").result == "['finally ran']"
        assert kernel.ok("%in_thread asyncio.run(asyncio.sleep(0, 'next'))").result == "'next'"


def test_interrupt_stops_a_plain_python_busy_loop() -> None:
    with start_kernel() as kernel:
        kernel.ok("import threading\ncount = [0]\n%load_ext asyncbridge_ext")
        cell = kernel.submit(
            "%%in_thread\n"
            "looped_on = threading.current_thread().name\n"
            "while True:\n"
            "    count[0] += 1\n"
            "    if count[0] == 1000:\n"
            "        print('looping', flush=True)\n"
        )
        kernel.interrupt_once_running(cell, "looping")
        # The loop itself stopped, not only the wait for it: the next call runs on the very
        # thread it looped on (a worker runs one call at a time), and the counter did not
        # move while this cell waited for that call (the wait lets any other thread run).
        cell = kernel.ok(
            "first = count[0]\n"
            "same = %in_thread threading.current_thread().name == looped_on\n"
            "first >= 1000, same, count[0] == first"
        )
        assert cell.result == "(True, True, True)"
        assert kernel.ok("%in_thread 'next'").result == "'next'"
        kernel.ok("%unload_ext asyncbridge_ext")
        table = "get_ipython().magics_manager.magics"
        cell = kernel.ok(f"'in_thread' in {table}['line'], 'in_thread' in {table}['cell']")
        assert cell.result == "(False, False)"
