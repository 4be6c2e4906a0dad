"""In real kernels, every mode: a library that leaves another loop as the kernel thread's
running loop no longer wedges the kernel, and known refusals point to %%in_thread.

The "library" is asyncio and threads only: an object made in a %%in_thread cell whose
loop runs in a thread of its own. Used from a plain cell it does what Playwright's sync
API does there: it makes its loop the running loop of the calling thread, then fails.
Every case has cells queued behind it, sent with stop_on_error=False; a kernel that
stops answering fails the test with the cells still waiting, and is shut down.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.kernel_harness import Cell, Kernel, start_kernel

pytestmark = pytest.mark.kernel

MODES = ("nest", "thread", "auto", "off")

LIBRARY = '''
import asyncio, threading

class Page:
    """Bound to the thread that made it and to a loop running in a thread of its own."""

    def __init__(self):
        self.owner = threading.current_thread()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.loop.call_soon(started.set)
        threading.Thread(target=self.loop.run_forever, name="library-loop", daemon=True).start()
        started.wait(10)

    def title(self):
        if threading.current_thread() is not self.owner:
            # What Playwright's dispatcher leaves behind when called from another thread.
            asyncio.events._set_running_loop(self.loop)
            raise RuntimeError("Cannot switch to a different thread")
        async def read():
            return "Example Domain"
        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(10)
'''

HIJACK_HINT = "belongs to that %%in_thread worker thread"


@pytest.fixture(params=MODES)
def kernel(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    # The mode from a config file: a nest patch applied at load would outlive %config.
    with start_kernel(kernel_config=f"c.AsyncBridge.nested_run = {request.param!r}") as kernel:
        kernel.ok("%load_ext asyncbridge_ext")
        kernel.ok("%%in_thread\n" + LIBRARY + "page = Page()\n")
        yield kernel


def wait_or_wedged(kernel: Kernel, cells: list[Cell], timeout: float = 30.0) -> None:
    try:
        kernel.wait(cells, timeout)
    except TimeoutError as exc:
        pytest.fail(f"the kernel is wedged: queued cells got no reply. {exc}")


def assert_repaired(failed: Cell) -> None:
    assert failed.status == "error", failed.describe()
    assert failed.reply is not None and failed.reply["evalue"] == (
        "Cannot switch to a different thread"  # the user's exception, unchanged
    )
    assert HIJACK_HINT in failed.stderr, failed.describe()
    assert "`%in_thread EXPR`" in failed.stderr and "`%%in_thread` cell" in failed.stderr
    assert "'library-loop'" in failed.stderr, failed.describe()
    assert failed.stderr.count("asyncbridge_ext: this cell") == 1, failed.describe()


def test_a_foreign_running_loop_is_put_back_and_queued_cells_reply(kernel: Kernel) -> None:
    cells = [
        kernel.submit(code, stop_on_error=False)
        for code in (
            "page.title()",  # a sync cell
            "print('next')",
            "import asyncio\nawait asyncio.sleep(0.01)\nprint('awaited')",
            "print(asyncio.get_running_loop() is not page.loop)",
            "title = %in_thread page.title()\nprint(title)",
        )
    ]
    wait_or_wedged(kernel, cells)
    sync_cell, nxt, awaited, loop_check, in_thread = cells
    assert_repaired(sync_cell)
    assert nxt.stdout == "next\n", nxt.describe()
    assert awaited.stdout == "awaited\n", awaited.describe()
    assert loop_check.stdout == "True\n", loop_check.describe()
    assert in_thread.stdout == "Example Domain\n", in_thread.describe()
    for cell in (nxt, awaited, loop_check, in_thread):
        assert HIJACK_HINT not in cell.stderr, cell.describe()


def test_an_async_cell_that_leaves_a_foreign_loop_is_put_back_too(kernel: Kernel) -> None:
    # ipykernel runs this cell as a task of its own and fires post_execute only after
    # awaiting it: the loop is put back inside that task, by the cell's rewritten code.
    cells = [
        kernel.submit(code, stop_on_error=False)
        for code in (
            "import asyncio\nawait asyncio.sleep(0)\npage.title()",  # an async cell
            "print(asyncio.get_running_loop() is not page.loop)",
            "title = %in_thread page.title()\nprint(title)",
        )
    ]
    wait_or_wedged(kernel, cells)
    async_cell, loop_check, in_thread = cells
    assert_repaired(async_cell)
    assert loop_check.stdout == "True\n", loop_check.describe()
    assert in_thread.stdout == "Example Domain\n", in_thread.describe()


def test_an_async_cell_whose_hijacking_call_raises_mid_cell_is_put_back(kernel: Kernel) -> None:
    cells = [
        kernel.submit(code, stop_on_error=False)
        for code in (
            "import asyncio\nawait asyncio.sleep(0)\npage.title()\nprint('not reached')",
            "print('next')",
            "await asyncio.sleep(0.01)\nprint(asyncio.get_running_loop() is not page.loop)",
        )
    ]
    wait_or_wedged(kernel, cells)
    failed, nxt, loop_check = cells
    assert_repaired(failed)
    assert "not reached" not in failed.stdout, failed.describe()
    assert re.search(r"^-+> 3 page\.title\(\)$", failed.traceback, re.M), failed.traceback
    assert "raise RuntimeError(" in failed.traceback, failed.traceback  # the library's frame
    for machinery in ("cell_rewrite", "statement_done", "__import__"):
        assert machinery not in failed.traceback, failed.traceback
    assert nxt.stdout == "next\n", nxt.describe()
    assert loop_check.stdout == "True\n", loop_check.describe()


def test_an_async_cell_that_goes_on_after_a_hijack_awaits_on_the_kernels_loop(
    kernel: Kernel,
) -> None:
    # Put back after the statement, not at the end of the cell: the sleep's timer would
    # otherwise go to the library's loop (or, from 3.14, no task step would start).
    cells = [
        kernel.submit(code, stop_on_error=False)
        for code in (
            "try:\n    page.title()\nexcept RuntimeError as exc:\n    caught = exc\n"
            "await asyncio.sleep(0.01)\nprint('awaited', caught)",
            "print('next')",
        )
    ]
    wait_or_wedged(kernel, cells)
    going_on, nxt = cells
    assert going_on.status == "ok", going_on.describe() + going_on.traceback
    assert going_on.stdout == "awaited Cannot switch to a different thread\n", going_on.describe()
    assert going_on.stderr.count("asyncbridge_ext: this cell") == 1, going_on.describe()
    assert HIJACK_HINT in going_on.stderr, going_on.describe()
    assert nxt.stdout == "next\n", nxt.describe()


def test_an_async_cell_shows_its_last_value_as_before(kernel: Kernel) -> None:
    cells = [
        kernel.submit(code, stop_on_error=False)
        for code in (
            "await asyncio.sleep(0)\n6 * 7",
            "print(_, Out[len(In) - 2])",
            "await asyncio.sleep(0)\n'silenced';",
            "print(_)",
            "await asyncio.sleep(0)\nprint('printed')",
            "x = await asyncio.sleep(0, result=5)\nx",
        )
    ]
    wait_or_wedged(kernel, cells)
    value, underscore, silenced, still, printed, assigned = cells
    assert value.status == "ok" and value.results == ["42"], value.describe()
    assert underscore.stdout == "42 42\n", underscore.describe()
    assert silenced.status == "ok" and silenced.results == [], silenced.describe()
    assert still.stdout == "42\n", still.describe()  # ';' kept '_' too
    assert printed.stdout == "printed\n" and printed.results == [], printed.describe()
    assert assigned.results == ["5"], assigned.describe()


def test_an_async_cell_keeps_its_docstring_and_future_imports(kernel: Kernel) -> None:
    cell = kernel.run(
        '"""A cell with a docstring."""\n'
        "from __future__ import annotations\n"
        "def f(x: NotDefinedAnywhere) -> int:\n"
        "    return 1\n"
        "await asyncio.sleep(0)\n"
        "f.__annotations__"
    )
    assert cell.status == "ok", cell.describe() + cell.traceback
    assert cell.results == ["{'x': 'NotDefinedAnywhere', 'return': 'int'}"], cell.describe()


REWRITTEN = "import sys\nprint('statement_done' in sys._getframe().f_code.co_names)"


def test_only_the_own_code_of_a_cell_that_awaits_at_top_level_is_rewritten(
    kernel: Kernel,
) -> None:
    cells = [
        kernel.submit(code, stop_on_error=False)
        for code in (
            "await asyncio.sleep(0)\n" + REWRITTEN,  # the control: rewritten
            REWRITTEN,  # a sync cell: post_execute is in time
            "%%in_new_loop\nawait asyncio.sleep(0)\n" + REWRITTEN,  # a magic's body
            "%config InteractiveShell.ast_node_interactivity = 'all'",
            "await asyncio.sleep(0)\n" + REWRITTEN,  # would not display as 'all' asks
        )
    ]
    wait_or_wedged(kernel, cells)
    rewritten, sync, magic_body, _, other_interactivity = cells
    assert rewritten.stdout == "True\n", rewritten.describe()
    for cell in (sync, magic_body, other_interactivity):
        assert cell.stdout == "False\n", cell.describe()


def test_unload_and_reload_leave_one_rewrite_or_none() -> None:
    count = (
        "print(sum(type(t).__name__ == 'AwaitingCellRewrite' "
        "for t in get_ipython().ast_transformers))"
    )
    with start_kernel() as kernel:
        counts = []
        for step in ("load", "reload", "unload"):
            kernel.ok(f"%{step}_ext asyncbridge_ext")
            counts.append(kernel.ok(count).stdout)
        after = kernel.ok("import asyncio\nawait asyncio.sleep(0)\n" + REWRITTEN)
    assert counts == ["1\n", "1\n", "0\n"], counts
    assert after.stdout == "False\n", after.describe()


FAILING = (
    "await asyncio.sleep(0)\nfail()\nprint('not reached')",
    "await asyncio.sleep(0)\nfail()",
    "for i in range(2):\n    await asyncio.sleep(0)\n    if i:\n        fail()",
)


def _user_error(cell: Cell) -> tuple[str, str, str]:
    assert cell.reply is not None and cell.reply["status"] == "error", cell.describe()
    # IPython 7 names a cell's code by a file under ipykernel_<pid>: the pids differ.
    traceback = re.sub(r"ipykernel_\d+", "ipykernel_PID", cell.traceback)
    return cell.reply["ename"], cell.reply["evalue"], traceback


def test_an_async_cell_raises_what_it_raises_without_the_extension() -> None:
    setup = "import asyncio\ndef fail():\n    raise ValueError('from the cell')"
    errors = []
    for first in ("pass", "%load_ext asyncbridge_ext"):  # the same execution counts
        with start_kernel() as kernel:
            kernel.ok(first)
            kernel.ok(setup)
            cells = [kernel.submit(code, stop_on_error=False) for code in FAILING]
            wait_or_wedged(kernel, cells)
            errors.append([_user_error(cell) for cell in cells])
    without, loaded = errors
    assert loaded == without
    assert all(error[:2] == ("ValueError", "from the cell") for error in loaded), loaded


EMBEDDED_SHELL = """
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "asyncbridge_ext")
shell.run_cell("import asyncio\\nawait asyncio.sleep(0)")
shell.run_cell("print('marked running:', asyncio.events._get_running_loop())")
"""


def test_a_shell_that_runs_an_async_cell_in_a_loop_of_its_own_gets_no_loop_back(
    tmp_path: Path,
) -> None:
    # IPython's own InteractiveShell (no kernel) starts a loop for such a cell after
    # pre_execute and stops it before post_execute: that loop is not put back.
    done = subprocess.run(
        [sys.executable, "-c", EMBEDDED_SHELL],
        env={**os.environ, "IPYTHONDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "marked running: None" in done.stdout, done.stdout + done.stderr
    assert "asyncbridge_ext: this cell" not in done.stderr, done.stderr


REFUSALS = {
    "gql": 'raise AssertionError("Cannot run client.execute(query) if an asyncio loop is '
    "running. Use 'await client.execute_async(query)' instead.\")",
    "openai-agents": "raise RuntimeError('AgentRunner.run_sync() cannot be called when an "
    "event loop is already running.')",
    "anyio": "raise RuntimeError('Already running asyncio in this thread')",
    "asgiref": "raise RuntimeError('You cannot use AsyncToSync in the same thread as an "
    "async event loop - just await the async function directly.')",
    "playwright": "raise type('Error', (Exception,), {'__module__': 'playwright._impl._errors'})"
    "('It looks like you are using Playwright Sync API inside the asyncio loop.\\n"
    "Please use the Async API instead.')",
}


def hint_lines(cell: Cell) -> list[str]:
    return [line for line in cell.stderr.splitlines() if line.startswith("asyncbridge_ext: ")]


def test_each_refusal_prints_one_pointer_after_its_traceback(kernel: Kernel) -> None:
    refusing = [kernel.submit(code, stop_on_error=False) for code in REFUSALS.values()]
    unrelated = kernel.submit(
        "raise RuntimeError('Already running asyncio here')", stop_on_error=False
    )
    after = kernel.submit("print('still here')", stop_on_error=False)
    wait_or_wedged(kernel, [*refusing, unrelated, after])
    for cell in refusing:
        assert cell.status == "error", cell.describe()
        lines = hint_lines(cell)
        assert len(lines) == 1, cell.describe()
        assert "`%in_thread EXPR`" in lines[0] and "`%%in_thread` cell" in lines[0]
        assert cell.reply is not None  # the user's exception, unchanged:
        assert cell.reply["evalue"].replace("\n", "\\n") in cell.code, cell.describe()
    assert unrelated.status == "error" and hint_lines(unrelated) == [], unrelated.describe()
    assert after.stdout == "still here\n" and hint_lines(after) == [], after.describe()


def test_a_nested_asyncio_run_in_off_mode_names_the_modes(kernel: Kernel) -> None:
    mode = kernel.ok("%config AsyncBridge.nested_run").result
    cells = [
        kernel.submit(code, stop_on_error=False)
        for code in (
            "async def answer():\n    return 42\nasyncio.run(answer())",
            "asyncio.get_event_loop().run_until_complete(answer())",
            "print('still here')",
        )
    ]
    wait_or_wedged(kernel, cells)
    run, run_until_complete, after = cells
    if mode != "'off'":
        assert run.result == "42" and hint_lines(run) == [], run.describe()
        assert run_until_complete.result == "42", run_until_complete.describe()
    else:
        for cell in (run, run_until_complete):
            assert cell.status == "error", cell.describe()
            lines = hint_lines(cell)
            assert len(lines) == 1 and '"thread"' in lines[0] and '"nest"' in lines[0]
    assert after.stdout == "still here\n", after.describe()


def test_a_refusal_inside_in_thread_gets_no_pointer_back_to_in_thread(kernel: Kernel) -> None:
    cell = kernel.submit(
        "%%in_thread\nraise RuntimeError('Already running asyncio in this thread')",
        stop_on_error=False,
    )
    after = kernel.submit("print('still here')", stop_on_error=False)
    wait_or_wedged(kernel, [cell, after])
    assert cell.status == "error" and hint_lines(cell) == [], cell.describe()
    assert after.stdout == "still here\n", after.describe()


def test_a_cleared_running_loop_is_put_back_too(kernel: Kernel) -> None:
    cells = [
        kernel.submit(code, stop_on_error=False)
        for code in (
            "asyncio.events._set_running_loop(None)",
            "print('next')",
            "await asyncio.sleep(0.01)\nprint('awaited')",
        )
    ]
    wait_or_wedged(kernel, cells)
    cleared, nxt, awaited = cells
    assert cleared.status == "ok", cleared.describe()
    assert "cleared the running event loop of the kernel's thread" in cleared.stderr
    assert nxt.stdout == "next\n" and awaited.stdout == "awaited\n", awaited.describe()
