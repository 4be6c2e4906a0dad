"""%asyncbridge in real kernels: each fact of the report comes from a real situation."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from asyncbridge_ext.core.environment import installed_version, version_tuple
from asyncbridge_ext.ipython.diagnostics import render_text
from support.kernel_harness import Kernel, start_kernel

pytestmark = pytest.mark.kernel

THREAD_MODE = "c.AsyncBridge.nested_run = 'thread'\n"


def report(kernel: Kernel, subshell_id: str | None = None) -> dict[str, Any]:
    cell = kernel.ok("%asyncbridge --json", subshell_id=subshell_id)
    assert cell.results == [], "the report must not be echoed as Out[n]"
    facts: dict[str, Any] = json.loads(cell.stdout)
    return facts


def problems(facts: dict[str, Any]) -> str:
    return "\n".join(warning["problem"] for warning in facts["warnings"])


@pytest.fixture(scope="module")
def thread_kernel() -> Iterator[Kernel]:
    with start_kernel(kernel_config=THREAD_MODE) as kernel:
        kernel.ok("%load_ext asyncbridge_ext")
        yield kernel


def test_text_and_json_report_the_same_facts_in_a_fixed_order(thread_kernel: Kernel) -> None:
    facts = report(thread_kernel)
    text = thread_kernel.ok("%asyncbridge")
    assert text.results == []
    assert text.stdout.rstrip("\n") == render_text(facts)
    keys = [line.split(":", 1)[0] for line in text.stdout.splitlines()]
    assert keys[:3] == ["python", "python_executable", "ipython"]
    assert keys[-1] in ("run_in_thread_threads", "warning")
    assert facts["ipykernel"] == installed_version("ipykernel")
    assert facts["jupyter_client"] == installed_version("jupyter-client")
    assert facts["nest_asyncio2"] == installed_version("nest-asyncio2")
    assert facts["asyncbridge_ext"] == installed_version("asyncbridge-ext")
    assert facts["shell"] == "main"
    has_subshells = version_tuple(facts["ipykernel"]) >= (7,)
    forwarding = "installed" if has_subshells else "not needed (no subshells)"
    assert facts["interrupt_forwarding"] == forwarding


def test_thread_mode_after_two_nested_runs(thread_kernel: Kernel) -> None:
    before = report(thread_kernel)
    thread_kernel.ok("import asyncio\nasyncio.run(asyncio.sleep(0))")
    thread_kernel.ok("asyncio.run(asyncio.sleep(0))")
    thread_kernel.ok("from asyncbridge_ext import LoopThread\nrunner = LoopThread()")
    assert thread_kernel.ok("%in_thread 6 * 7").result == "42"
    try:
        facts = report(thread_kernel)
    finally:
        thread_kernel.ok("runner.close()")
    assert facts["mode"] == "thread"
    assert facts["thread_wrappers"] == "intact"
    assert facts["nest_patch"] == "none"
    assert facts["kernel_loop"] == "asyncio.unix_events._UnixSelectorEventLoop"
    assert facts["kernel_loop_reentrant"] is False
    runs = facts["nested_runs"]["same_thread"] - before["nested_runs"]["same_thread"]
    assert runs == 2, facts
    workers = facts["worker_threads"]
    assert workers["busy"] == 0 and workers["idle"] <= 1, workers
    assert facts["loop_threads"] == before["loop_threads"] + 1
    # The first run_in_thread worker stays (idle) for the next %in_thread.
    assert facts["run_in_thread_threads"] == {"busy": 0, "idle": 1, "abandoned": 0}
    assert facts["warnings"] == [], problems(facts)


def test_a_subshell_is_named_in_the_report(thread_kernel: Kernel) -> None:
    pytest.importorskip("ipykernel.subshell", reason="kernel subshells need ipykernel >= 7")
    subshell = thread_kernel.create_subshell()
    assert report(thread_kernel, subshell)["shell"] == f"subshell {subshell}"


def test_the_archived_nest_asyncio_applied_by_a_library_is_reported() -> None:
    # A library that took `from nest_asyncio import apply` before the extension loaded
    # holds the original function (the extension can only intercept later look-ups of
    # nest_asyncio.apply), and applies it; reported in the same cell, before the
    # pre_run_cell guard of the next cell replaces the patch.
    with start_kernel(kernel_config=THREAD_MODE) as kernel:
        kernel.ok("from nest_asyncio import apply as early_apply")
        kernel.ok("%load_ext asyncbridge_ext")
        cell = kernel.ok("early_apply()\nget_ipython().run_line_magic('asyncbridge', '--json')")
        facts = json.loads(cell.stdout)
    assert facts["nest_patch"] == "nest_asyncio"
    assert facts["nest_asyncio"] == f"{installed_version('nest-asyncio')} (imported)"
    assert facts["thread_wrappers"].startswith("replaced: asyncio.run by nest_asyncio")
    found = problems(facts)
    assert "archived nest_asyncio" in found
    assert "wrappers are replaced" in found
    fixes = " ".join(warning["fix"] for warning in facts["warnings"])
    assert "python -m asyncbridge_ext enable" in fixes


def test_a_kernel_running_uvloop_shows_its_loop_class() -> None:
    pytest.importorskip("uvloop")
    config = (
        "import asyncio, uvloop\n"
        "asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())\n" + THREAD_MODE
    )
    with start_kernel(kernel_config=config) as kernel:
        kernel.ok("%load_ext asyncbridge_ext")
        facts = report(kernel)
    assert facts["kernel_loop"] == "uvloop.Loop"
    assert facts["kernel_loop_reentrant"] is False
    assert "uvloop" not in problems(facts), "thread mode serves a uvloop kernel"


STUBBORN = """
import asyncio, threading
from asyncbridge_ext import run_coroutine_in_new_loop
release = threading.Event()
async def ignores_cancellation():
    while not release.is_set():
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            continue
try:
    run_coroutine_in_new_loop(ignores_cancellation(), timeout=0.2, cancel_grace=0.2)
except TimeoutError:
    print("timed out")
"""


def test_abandoned_work_is_reported_while_it_runs() -> None:
    with start_kernel() as kernel:
        kernel.ok("%load_ext asyncbridge_ext")
        assert "timed out" in kernel.ok(STUBBORN).stdout
        facts = report(kernel)
        kernel.ok("release.set()")
        text = kernel.ok("%asyncbridge")
        for _ in range(100):  # the worker notices `release` within a few slices
            if "abandoned_running: 0" in text.stdout:
                break
            text = kernel.ok("import time; time.sleep(0.05)\n%asyncbridge")
    assert facts["timeouts"] == 1
    assert facts["abandoned"] == 1
    assert len(facts["abandoned_running"]) == 1, facts
    assert "timeout of 0.2 s" in facts["abandoned_running"][0]
    assert facts["worker_threads"]["busy"] == 1
    assert "abandoned coroutine(s) or thread(s) still running" in problems(facts)
    assert "warning:" not in text.stdout


def test_log_debug_shows_records_in_the_cell_that_produced_them() -> None:
    with start_kernel() as kernel:
        kernel.ok("%load_ext asyncbridge_ext")
        kernel.ok("import asyncio, logging")
        quiet = kernel.ok("%run_async asyncio.sleep(0)")
        assert "asyncbridge_ext DEBUG" not in quiet.stderr
        kernel.ok("%asyncbridge --log debug")
        ran = kernel.ok(
            "async def logs():\n"
            "    logging.getLogger('asyncbridge_ext').debug('from the coroutine')\n"
            "%run_async logs()"
        )
        after = kernel.ok("6 * 7")
        kernel.ok("%asyncbridge --log off")
        off = kernel.ok("%run_async asyncio.sleep(0)")
        combined = json.loads(kernel.ok("%asyncbridge --log info --json").stdout)
        kernel.ok("%unload_ext asyncbridge_ext")
        handlers = kernel.ok("print(logging.getLogger('asyncbridge_ext').handlers)")
        gone = kernel.run("%asyncbridge")
    assert "asyncbridge_ext DEBUG: from the coroutine" in ran.stderr, ran.describe()
    if version_tuple(installed_version("ipykernel") or "0") >= (7,):
        # The worker's own record (outside the coroutine): ipykernel 6 sends a reused
        # thread's output to the cell that started the thread.
        assert "asyncbridge_ext DEBUG: closed a fresh loop" in ran.stderr, ran.describe()
    assert "asyncbridge_ext" not in after.stderr, after.describe()
    assert "asyncbridge_ext DEBUG" not in off.stderr, off.describe()
    assert combined["log"] == "info"
    assert handlers.stdout.strip() == "[]"
    assert gone.status == "error" and "%asyncbridge` not found" in gone.stderr, gone.describe()


SDK_CALLING_NEST_ASYNCIO = '''
import sys, types
sdk = types.ModuleType("some_sdk.utils")
exec(compile("""import nest_asyncio

def start_loop():
    nest_asyncio.apply()
""", "some_sdk/utils.py", "exec"), sdk.__dict__)
sys.modules["some_sdk.utils"] = sdk
'''


@pytest.mark.parametrize("mode", ["thread", "auto", "nest"])
def test_a_library_nest_asyncio_apply_is_reported_with_its_call_site(mode: str) -> None:
    with start_kernel(kernel_config=f"c.AsyncBridge.nested_run = {mode!r}") as kernel:
        kernel.ok("%load_ext asyncbridge_ext")
        assert report(kernel)["nest_patch_cause"] == "none"
        kernel.ok(SDK_CALLING_NEST_ASYNCIO + "sdk.start_loop()")
        facts = report(kernel)
        text = kernel.ok("%asyncbridge").stdout
    if mode == "nest":  # patched at load already: the library's call changed nothing
        assert facts["nest_patch_cause"] == "none"
        assert "some_sdk" not in text
        return
    cause = "nest_asyncio.apply() at some_sdk.utils, line 4 (lasts until restart)"
    assert facts["nest_patch"] == "nest_asyncio2"
    assert facts["nest_patch_cause"] == cause
    assert f"nest_patch_cause: {cause}" in text.splitlines()
    found = problems(facts)
    assert "nest_asyncio.apply() at some_sdk.utils, line 4" in found
    assert f"nested_run is {mode!r}; the patch lasts until the kernel restarts" in found
    assert "warning: a library called nest_asyncio.apply() at some_sdk.utils, line 4" in text


FIELDS = [  # every fact of the report, in display order (README, "What is going on")
    "python", "python_executable", "ipython", "ipykernel", "jupyter_client",
    "asyncbridge_ext", "nest_asyncio2", "nest_asyncio", "mode", "nest_patch",
    "nest_patch_cause", "kernel_loop", "kernel_loop_reentrant", "thread_wrappers", "shell",
    "interrupt_forwarding", "log", "nested_runs", "magic_calls", "timeouts", "interrupts",
    "abandoned", "abandoned_running", "worker_threads", "loop_threads", "run_in_thread_threads",
    "warnings",
]  # fmt: skip
COUNTED = """
import asyncio
async def slow():
    try:
        print('coroutine started', flush=True)
        await asyncio.sleep(60)
    finally:
        pass
asyncio.run(asyncio.sleep(0))
%run_async asyncio.sleep(0)
%run_async asyncio.sleep(0)
"""


def test_every_field_of_the_json_report_and_the_counts_that_change() -> None:
    """A fresh thread-mode kernel: each count is 0 at load, then each counted thing is done
    a known number of times, and the report says exactly that."""
    with start_kernel(kernel_config=THREAD_MODE) as kernel:
        kernel.ok("%load_ext asyncbridge_ext")
        at_load = report(kernel)
        kernel.ok(COUNTED)
        kernel.ok("%%in_new_loop\nawait asyncio.sleep(0)")
        kernel.ok("%in_thread 1")
        kernel.ok("%%in_thread\n2")
        refused = kernel.run(
            "loop = asyncio.get_event_loop()\n"
            "loop.run_until_complete(asyncio.ensure_future(asyncio.sleep(0), loop=loop))"
        )
        assert refused.error is not None and refused.error["ename"] == "RuntimeError"
        timed_out = kernel.run("%run_async --timeout 0.1 asyncio.sleep(30)")
        assert timed_out.error is not None and timed_out.error["ename"] == "TimeoutError"
        kernel.interrupt_once_running(kernel.submit("%run_async slow()"), "coroutine started")
        facts = report(kernel)
    assert list(at_load) == FIELDS and list(facts) == FIELDS
    zero_runs = {"same_thread": 0, "reentrant": 0, "auto_fallback": 0, "refused": 0}
    assert (at_load["nested_runs"], at_load["magic_calls"]) == (zero_runs, {})
    assert [at_load[key] for key in ("timeouts", "interrupts", "abandoned")] == [0, 0, 0]
    assert facts["nested_runs"] == {**zero_runs, "same_thread": 1, "refused": 1}
    assert facts["magic_calls"] == {"in_new_loop": 1, "in_thread": 2, "run_async": 4}
    assert (facts["timeouts"], facts["interrupts"], facts["abandoned"]) == (1, 1, 0)
    assert facts["abandoned_running"] == []
    assert facts["worker_threads"] == {"busy": 0, "idle": 1}  # run_async's reused worker
    assert facts["loop_threads"] == 0
    assert facts["run_in_thread_threads"] == {"busy": 0, "idle": 1, "abandoned": 0}
    expected = {
        "python": platform.python_version(),
        "python_executable": os.path.abspath(sys.executable),
        "ipython": installed_version("ipython"),
        "ipykernel": installed_version("ipykernel"),
        "jupyter_client": installed_version("jupyter-client"),
        "asyncbridge_ext": installed_version("asyncbridge-ext"),
        "nest_asyncio2": installed_version("nest-asyncio2"),
        "mode": "thread",
        "nest_patch": "none",
        "nest_patch_cause": "none",
        "kernel_loop": "asyncio.unix_events._UnixSelectorEventLoop",
        "kernel_loop_reentrant": False,
        "thread_wrappers": "intact",
        "shell": "main",
        "log": "off",
        "warnings": [],
    }
    assert {key: facts[key] for key in expected} == expected
    archived = installed_version("nest-asyncio")  # imported at load, to intercept apply()
    assert facts["nest_asyncio"] == (f"{archived} (imported)" if archived else "not installed")
    has_subshells = version_tuple(facts["ipykernel"]) >= (7,)
    assert facts["interrupt_forwarding"] == (
        "installed" if has_subshells else "not needed (no subshells)"
    )
