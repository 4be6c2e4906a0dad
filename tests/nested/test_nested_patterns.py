"""Every way a library drives a loop from sync code, in a real kernel, in each nested_run mode.

One kernel per mode (module-scoped). Each pattern runs in a cell with the exact result
asserted, and three cells are queued behind it without waiting (``stop_on_error=False``):
every one of them must reply. The patterns reproduce, with asyncio alone, what real SDKs
do (SPEC.md, "Facts measured with real libraries").
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from support.kernel_harness import GATHER_BINDS_TO_RUNNING_LOOP, Kernel, start_kernel

pytestmark = pytest.mark.kernel

SETUP = """
import asyncio, sqlite3, threading
from asyncbridge_ext import NestAsyncio
from asyncbridge_ext.core.activity import ACTIVITY
from asyncbridge_ext.nested.redirect import NestedRunRedirect

# Read right after each cell, before the next cell's pre_run_cell guard could put back a
# wrapper that the nested run failed to restore.
wrappers_after = {}
def _record_wrappers(result):
    wrappers_after[result.execution_count] = NestedRunRedirect.installed
get_ipython().events.register("post_run_cell", _record_wrappers)

async def work(x):
    await asyncio.sleep(0.01)
    return x * 2

async def debug_on():
    return asyncio.get_running_loop().get_debug()

def on_own_loop(drive):
    loop = asyncio.new_event_loop()
    try:
        return drive(loop)
    finally:
        loop.close()

def until_stopped(loop):
    task = loop.create_task(work(9))
    task.add_done_callback(lambda _: loop.stop())
    loop.run_forever()
    return task.result()
"""

# name -> (cell, result); REFUSED_IN_THREAD: the patterns thread mode refuses.
PATTERNS: dict[str, tuple[str, str]] = {
    "asyncio.run": ("asyncio.run(work(1))", "2"),
    "asyncio.run debug=True": ("asyncio.run(debug_on(), debug=True)", "True"),
    "asyncio.run debug=True leaves the kernel's loop alone": (
        "asyncio.run(debug_on(), debug=True)\nasyncio.get_running_loop().get_debug()",
        "False",
    ),
    "get_event_loop().run_until_complete(coro)": (
        "asyncio.get_event_loop().run_until_complete(work(3))",
        "6",
    ),
    "run_until_complete(ensure_future(coro, loop=running))": (
        "loop = asyncio.get_event_loop()\n"
        "loop.run_until_complete(asyncio.ensure_future(work(4), loop=loop))",
        "8",
    ),
    "running.run_until_complete(running.create_task(coro))": (
        "loop = asyncio.get_event_loop()\nloop.run_until_complete(loop.create_task(work(5)))",
        "10",
    ),
    "running.run_until_complete(gather(...))": (
        "asyncio.get_event_loop().run_until_complete(asyncio.gather(work(6), work(7)))",
        "[12, 14]",
    ),
    "own loop: run_until_complete(coro)": (
        "on_own_loop(lambda loop: loop.run_until_complete(work(8)))",
        "16",
    ),
    "own loop: run_until_complete(create_task)": (
        "on_own_loop(lambda loop: loop.run_until_complete(loop.create_task(work(9))))",
        "18",
    ),
    "own loop: run_until_complete(gather)": (
        "on_own_loop(lambda loop: loop.run_until_complete(asyncio.gather(\n"
        "    *(asyncio.ensure_future(work(i), loop=loop) for i in (1, 2)))))",
        "[2, 4]",
    ),
    "own loop: run_forever + stop": ("on_own_loop(until_stopped)", "18"),
    "nested two deep": (
        "async def outer():\n    return asyncio.run(work(10)) + 1\nasyncio.run(outer())",
        "21",
    ),
    "sqlite3 connection of the cell": (
        "con = sqlite3.connect(':memory:')\n"
        "async def query():\n    return con.execute('select 42').fetchone()[0]\n"
        "asyncio.run(query())",
        "42",
    ),
    "from another thread": (
        "box = []\n"
        "thread = threading.Thread(target=lambda: box.append(asyncio.run(work(12))))\n"
        "thread.start(); thread.join(30)\nbox",
        "[24]",
    ),
    "asyncio.Runner().run": (
        "with asyncio.Runner() as runner:\n    result = runner.run(work(2))\nresult",
        "4",
    ),
}
if sys.version_info >= (3, 12):
    PATTERNS["asyncio.run loop_factory="] = (
        "class MyLoop(asyncio.SelectorEventLoop):\n    pass\n"
        "async def loop_kind():\n    return type(asyncio.get_running_loop()).__name__\n"
        "asyncio.run(loop_kind(), loop_factory=MyLoop)",
        "'MyLoop'",
    )

REFUSED_IN_THREAD = {
    "run_until_complete(ensure_future(coro, loop=running))",
    "running.run_until_complete(running.create_task(coro))",
    "running.run_until_complete(gather(...))",
}
# In a cell the kernel's loop runs, so every mode gets asyncio's own error (see the harness).
REFUSED_BY_CPYTHON = (
    {"own loop: run_until_complete(gather)"} if GATHER_BINDS_TO_RUNNING_LOOP else set()
)
MODES = ["nest", "thread", "auto"]


@pytest.fixture(scope="module", params=MODES)
def mode_kernel(request: pytest.FixtureRequest) -> Iterator[tuple[str, Kernel]]:
    mode = request.param
    with start_kernel() as kernel:
        kernel.ok(f"%config AsyncBridge.nested_run = {mode!r}\n%load_ext asyncbridge_ext")
        kernel.ok(SETUP)
        yield mode, kernel


def _run_with_three_queued(kernel: Kernel, code: str) -> tuple[object, list[object]]:
    first = kernel.submit(code, stop_on_error=False)
    behind = [kernel.submit(f"'queued {i}'", stop_on_error=False) for i in range(3)]
    kernel.wait([first, *behind], timeout=60)
    for i, cell in enumerate(behind):
        assert (cell.status, cell.result) == ("ok", f"'queued {i}'"), cell.describe()
    return first, behind


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_pattern(mode_kernel: tuple[str, Kernel], pattern: str) -> None:
    mode, kernel = mode_kernel
    code, expected = PATTERNS[pattern]
    first, _ = _run_with_three_queued(kernel, code)
    assert first.reply is not None
    count = first.reply["execution_count"]
    assert kernel.ok(f"wrappers_after[{count}]").result == "True", "not restored in the cell"

    if pattern in REFUSED_BY_CPYTHON:
        assert first.error is not None and first.error["ename"] == "ValueError", first.describe()
        assert first.error["evalue"] == (
            "The future belongs to a different loop than the one specified as the loop argument"
        )
        return
    if mode == "thread" and pattern in REFUSED_IN_THREAD:
        assert first.status == "error", first.describe()
        assert first.error is not None and first.error["ename"] == "RuntimeError"
        message = first.error["evalue"]
        assert message.startswith("asyncbridge_ext (nested_run = 'thread'): ")
        assert "belongs to the event loop already running in this thread" in message
        assert 'nested_run = "auto"' in message and '"nest"' in message
        assert "This event loop is already running" not in first.traceback
        return
    assert first.status == "ok", first.describe() + "\n" + first.traceback
    assert first.result == expected


def test_thread_mode_never_patches_and_serves_on_the_calling_thread(
    mode_kernel: tuple[str, Kernel],
) -> None:
    mode, kernel = mode_kernel
    if mode != "thread":
        pytest.skip("thread mode only")
    here = kernel.ok(
        "async def where():\n    return threading.get_ident()\n"
        "before = ACTIVITY.counts['nested_run.same_thread']\n"
        "(asyncio.run(where()) == threading.get_ident(), NestAsyncio.is_applied,\n"
        " ACTIVITY.counts['nested_run.same_thread'] - before)"
    )
    assert here.result == "(True, False, 1)"


# The thread's event loop (what set_event_loop set, what the policy returns), read in the
# cell itself right after the nested run, and again in the next cell. asyncio.run sets it
# to None when it ends; it must be the kernel's loop again.
THREAD_EVENT_LOOP = (
    "policy = getattr(asyncio.events, '_get_event_loop_policy', asyncio.get_event_loop_policy)()\n"
    "kernel_loop = asyncio.get_running_loop()\n"
    "asyncio.set_event_loop(kernel_loop)  # an earlier cell may have left another\n"
    "set_before = policy._local._loop\n"
    "{call}\n"
    "(set_before is kernel_loop, policy._local._loop is kernel_loop,\n"
    " policy.get_event_loop() is kernel_loop)"
)


# Runner.close() (on leaving the with block) runs outside the wrapped Runner.run and sets
# the thread's event loop to None; its own wrapper puts the kernel's back.
RUNNER_CLOSE = pytest.param(
    "with asyncio.Runner() as runner:\n    runner.run(work(1))", id="Runner"
)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param("asyncio.run(work(1))", id="run"),
        pytest.param("asyncio.get_event_loop().run_until_complete(work(1))", id="running"),
        pytest.param("on_own_loop(lambda loop: loop.run_until_complete(work(1)))", id="own"),
        RUNNER_CLOSE,
    ],
)
def test_the_threads_event_loop_is_the_one_set_before_a_nested_run(
    mode_kernel: tuple[str, Kernel], call: str
) -> None:
    _, kernel = mode_kernel
    try:
        same_cell = kernel.ok(THREAD_EVENT_LOOP.format(call=call))
        assert same_cell.result == "(True, True, True)", same_cell.describe()
        next_cell = kernel.ok(
            "(policy._local._loop is kernel_loop, policy.get_event_loop() is kernel_loop)"
        )
        assert next_cell.result == "(True, True)", next_cell.describe()
    finally:  # the kernel is shared by the module's tests
        kernel.ok("asyncio.set_event_loop(kernel_loop)")


@pytest.mark.parametrize("mode", ["thread", "auto"])
def test_interrupting_a_nested_run_runs_its_finally(mode: str) -> None:
    """Served on the kernel's main thread, the nested asyncio.run gets SIGINT as in a script."""
    with start_kernel() as kernel:
        kernel.ok(f"%config AsyncBridge.nested_run = {mode!r}\n%load_ext asyncbridge_ext")
        cell = kernel.submit(
            "import asyncio\nstate = {}\n"
            "async def slow():\n"
            "    try:\n"
            "        print('coroutine started', flush=True)\n"
            "        await asyncio.sleep(60)\n"
            "    finally:\n"
            "        state['finally ran'] = True\n"
            "asyncio.run(slow())"
        )
        kernel.interrupt_once_running(cell, "coroutine started")
        assert kernel.ok("state").result == "{'finally ran': True}"
        assert kernel.ok("asyncio.run(asyncio.sleep(0, result='next'))").result == "'next'"


def test_nested_runs_in_an_ipykernel_7_subshell() -> None:
    """A subshell's cells run on their own thread, with their own loop running there."""
    ipykernel = pytest.importorskip("ipykernel")
    if int(ipykernel.__version__.split(".")[0]) < 7:
        pytest.skip("subshells need ipykernel 7")
    with start_kernel() as kernel:
        kernel.ok("%config AsyncBridge.nested_run = 'thread'\n%load_ext asyncbridge_ext")
        kernel.ok(SETUP)
        subshell_id = kernel.create_subshell()
        where = kernel.run("threading.current_thread().name", subshell_id=subshell_id)
        assert where.result is not None and "subshell" in where.result, where.describe()
        served = ("asyncio.run", "own loop: run_forever + stop", "sqlite3 connection of the cell")
        for pattern in served:
            code, expected = PATTERNS[pattern]
            cell = kernel.run(code, subshell_id=subshell_id)
            assert (cell.status, cell.result) == ("ok", expected), cell.describe()
        refused = kernel.run(PATTERNS[sorted(REFUSED_IN_THREAD)[0]][0], subshell_id=subshell_id)
        assert refused.error is not None and "nested_run = 'thread'" in refused.error["evalue"]
        assert kernel.ok("asyncio.run(work(21))").result == "42"
