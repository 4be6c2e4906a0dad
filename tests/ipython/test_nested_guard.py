"""Auto mode's fallback, and the guard against the archived nest_asyncio, in real kernels."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support.kernel_harness import Kernel, start_kernel

pytestmark = pytest.mark.kernel

LIBRARY_RUN_SYNC = (  # the run_sync of pydantic-ai / util.run of ib_async, with asyncio alone
    "loop = asyncio.get_event_loop()\n"
    "loop.run_until_complete(asyncio.ensure_future(work(4), loop=loop))"
)
SETUP = (
    "import asyncio, threading\n"
    "from asyncbridge_ext import NestAsyncio\n"
    "from asyncbridge_ext.core.activity import ACTIVITY\n"
    "from asyncbridge_ext.nested.redirect import NestedRunRedirect\n"
    "async def work(x):\n"
    "    await asyncio.sleep(0.01)\n"
    "    return x * 2\n"
)


def _queue_three_behind(kernel: Kernel, code: str) -> str:
    """Run ``code`` with three cells queued behind it; all must reply. Return its stderr."""
    first = kernel.submit(code, stop_on_error=False)
    behind = [kernel.submit(f"'queued {i}'", stop_on_error=False) for i in range(3)]
    kernel.wait([first, *behind], timeout=60)
    assert first.status == "ok", first.describe() + "\n" + first.traceback
    for i, cell in enumerate(behind):
        assert (cell.status, cell.result) == ("ok", f"'queued {i}'"), cell.describe()
    return first.stderr


def test_auto_falls_back_to_nest_once_and_keeps_routing_the_rest() -> None:
    with start_kernel() as kernel:
        kernel.ok("%config AsyncBridge.nested_run = 'auto'\n%load_ext asyncbridge_ext")
        kernel.ok(SETUP)
        assert kernel.ok("asyncio.run(work(1)), NestAsyncio.is_applied").result == "(2, False)"

        # the wrappers' state is read in the same cell, right after the fallback: the
        # next cell's pre_run_cell guard would put back one the fallback failed to restore
        assign = LIBRARY_RUN_SYNC.replace("loop.run", "result = loop.run") + (
            "\nright_after = NestedRunRedirect.installed, NestedRunRedirect.replaced()"
        )
        notice = _queue_three_behind(kernel, assign)
        assert kernel.ok("right_after").result == "(True, {})"
        # the patch on the kernel loop's class is the point now, not a replacement
        facts = json.loads(kernel.ok("%asyncbridge --json").stdout)
        assert (facts["thread_wrappers"], facts["warnings"]) == ("intact", []), facts
        assert 'nested_run = "auto" made the running event loop re-entrant' in notice
        assert notice.count("asyncbridge_ext:") == 1
        assert kernel.ok("result, NestAsyncio.is_applied").result == "(8, True)"
        assert kernel.ok("ACTIVITY.counts['nested_run.auto_fallback']").result == "1"

        again = _queue_three_behind(kernel, LIBRARY_RUN_SYNC)
        # nothing to say: the patched loop class serves it without reaching our routing
        # (the notice's once-logic is held by the test below)
        assert again == ""
        # asyncio.run still gets a fresh loop of its own, through our wrapper
        kernel.ok(
            "async def which_loop():\n    return asyncio.get_running_loop()\n"
            "kernel_loop = asyncio.get_running_loop()"
        )
        check = "(asyncio.run(which_loop()) is not kernel_loop, NestedRunRedirect.installed)"
        assert kernel.ok(check).result == "(True, True)"


TWO_FALLBACKS = """
import asyncio
from asyncio import selector_events
from asyncbridge_ext.core.activity import ACTIVITY
from asyncbridge_ext.nested.redirect import NestedRunRedirect
NestedRunRedirect.install("auto")
class LoopOne(selector_events.BaseSelectorEventLoop): pass
class LoopTwo(selector_events.BaseSelectorEventLoop): pass
async def work():
    await asyncio.sleep(0)
    return 1
async def cell():
    loop = asyncio.get_running_loop()
    return loop.run_until_complete(loop.create_task(work()))
for kind in (LoopOne, LoopTwo):
    loop = kind()
    print(kind.__name__, loop.run_until_complete(cell()), kind._nest_patched)
    loop.close()
print("fallbacks", ACTIVITY.counts["nested_run.auto_fallback"])
"""


def test_the_auto_fallback_notice_is_printed_once_for_two_fallbacks() -> None:
    """Two loop classes of their own, each made re-entrant by its own fallback (a kernel
    has one loop class, so there the second call never reaches the notice): told once."""
    done = subprocess.run(
        [sys.executable, "-c", TWO_FALLBACKS],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == ["LoopOne 1 True", "LoopTwo 1 True", "fallbacks 2"]
    assert done.stderr.count('nested_run = "auto" made the running event loop re-entrant') == 1
    assert done.stderr.count("asyncbridge_ext:") == 1, done.stderr


@pytest.mark.parametrize("when", ["before load", "after load", "same cell"])
@pytest.mark.parametrize("mode", ["nest", "thread", "auto"])
def test_the_archived_nest_asyncio_loses_no_cell(mode: str, when: str) -> None:
    """A library calls the archived nest_asyncio.apply(); queued cells must all reply.

    "same cell": it imports and applies it, then runs a nested loop, within one call (as
    llama-index's progress bars do), so no check between cells can come in between.
    """
    apply_archived = "import nest_asyncio\nnest_asyncio.apply()"
    load = f"%config AsyncBridge.nested_run = {mode!r}\n%load_ext asyncbridge_ext"
    with start_kernel() as kernel:
        kernel.ok(SETUP)
        if when == "before load":
            kernel.ok(apply_archived)
            told = kernel.ok(load).stderr
        elif when == "after load":
            kernel.ok(load)
            told = kernel.ok(apply_archived).stderr + kernel.ok("pass").stderr
        else:
            kernel.ok(load)
            told = _queue_three_behind(
                kernel,
                apply_archived + "\nloop = asyncio.get_event_loop()\n"
                "loop.run_until_complete(work(6))\n"
                "right_after = NestedRunRedirect.installed, NestedRunRedirect.replaced()",
            )
            # read in that cell: the next cell's guard would mask a wrapper not put back
            assert kernel.ok("right_after").result == "(True, {})"
        if when == "before load":
            assert "asyncio was patched by the archived nest_asyncio 1." in told
            assert told.count("archived") == 1
        elif mode == "nest":
            # harmless: nest-asyncio2 is in charge already, nothing changes, nothing to say
            assert told == ""
        else:
            # the call site: the cell's second line
            assert "a library called nest_asyncio.apply() (at __main__, line 2; " in told
            assert "the archived nest_asyncio" in told
            assert "applied nest-asyncio2 instead" in told
        state = "NestAsyncio.backend, NestedRunRedirect.installed"
        assert kernel.ok(state).result == "('nest_asyncio2', True)"

        assert _queue_three_behind(kernel, "asyncio.run(work(5))") == ""
        assert _queue_three_behind(kernel, "asyncio.run(asyncio.sleep(0.5))") == ""
        assert _queue_three_behind(kernel, LIBRARY_RUN_SYNC) == ""
        assert kernel.ok("pass").stderr == ""  # told once, not before every cell


def test_a_replaced_wrapper_is_put_back_before_the_next_cell() -> None:
    with start_kernel() as kernel:
        kernel.ok("%config AsyncBridge.nested_run = 'thread'\n%load_ext asyncbridge_ext")
        kernel.ok(SETUP)
        kernel.ok("def other_run(main, **kwargs):\n    raise AssertionError('not ours')")
        kernel.ok("asyncio.run = other_run")
        told = kernel.ok("asyncio.run(work(2))")
        assert told.result == "4"
        assert "asyncbridge_ext: asyncio.run had been replaced by __main__.other_run" in (
            told.stderr
        )


def test_a_uvloop_kernel_auto_loading_nest_mode_starts_and_says_how_to_fix_it() -> None:
    """Auto-loaded before the kernel's loop starts: patching then would patch asyncio's
    loop policy, and the kernel died at start on a uvloop policy. Now the patch waits for
    the first cell, which says once that nest mode cannot serve this loop, and what can."""
    pytest.importorskip("uvloop")
    config = (
        "import asyncio, uvloop\n"
        "asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())\n"
        "c.InteractiveShellApp.extensions = ['asyncbridge_ext']\n"
    )
    with start_kernel(kernel_config=config) as kernel:
        first = kernel.ok("import asyncio\ntype(asyncio.get_running_loop()).__name__")
        second = kernel.ok("1 + 1")
        kernel.ok("%config AsyncBridge.nested_run = 'thread'")
        kernel.ok(SETUP)
        nested = kernel.ok("asyncio.run(work(21))")
    assert first.result == "'Loop'"
    assert "nested_run = 'nest' is not in force" in first.stderr, first.describe()
    assert 'nested_run = "thread"' in first.stderr
    assert second.stderr == "", "said once, not before every cell"
    assert nested.result == "42"


def test_the_archived_patch_applied_before_load_does_not_wedge_the_next_nested_run() -> None:
    """Python 3.14+: the archived patch made every new task a pure-Python one, which keeps
    the current task apart from the C tasks and nest-asyncio2; replacing it without giving
    asyncio back its own made the next nested asyncio.run print "Cannot enter into task"
    for ever, and that cell never replied. Each cell's reply is awaited with a deadline."""
    current = (
        "async def current():\n"
        "    await asyncio.sleep(0.01)\n"
        "    return asyncio.current_task() is not None\n"
    )
    with start_kernel() as kernel:
        kernel.ok(SETUP + current)
        kernel.ok("import nest_asyncio\nnest_asyncio.apply()")
        told = kernel.ok("%load_ext asyncbridge_ext").stderr
        assert "asyncio was patched by the archived nest_asyncio 1." in told
        nested = kernel.submit(
            "asyncio.run(current()), asyncio.current_task() is not None", stop_on_error=False
        )
        behind = [kernel.submit(f"'queued {i}'", stop_on_error=False) for i in range(3)]
        try:
            kernel.wait([nested, *behind], timeout=60)
        except TimeoutError as exc:
            raise AssertionError(
                "the nested asyncio.run after the archived nest_asyncio was replaced never "
                f"replied (the kernel is wedged): {exc}\nits stderr ends with: "
                f"{nested.stderr[-400:]!r}"
            ) from None
        assert nested.status == "ok", nested.describe() + "\n" + nested.traceback
        assert nested.result == "(True, True)", "current_task() is None inside or after"
        assert "Cannot enter into task" not in nested.stderr
        for i, cell in enumerate(behind):
            assert (cell.status, cell.result) == ("ok", f"'queued {i}'"), cell.describe()
        assert kernel.ok(LIBRARY_RUN_SYNC).result == "8"
