"""Loading, unloading and configuring the extension in real kernels (and terminal IPython)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncbridge_ext.core.environment import installed_version, version_tuple
from support.kernel_harness import Kernel, start_kernel

pytestmark = pytest.mark.kernel

# A cell that reports the extension's footprint in the shell: how many of our
# configurables, magics instances and magics are registered, and whether asyncio.run is
# wrapped more than once by thread mode.
FOOTPRINT = """
import asyncio, asyncbridge_ext.ipython.options as _abc
_ip = get_ipython()
_mm = _ip.magics_manager
_wrapped = getattr(asyncio.run, "__wrapped__", None)
(
    sum(isinstance(c, _abc.AsyncBridge) for c in _ip.configurables),
    "AsyncBridgeMagics" in dict.keys(_mm.registry),
    "run_async" in _mm.magics["line"],
    "in_new_loop" in _mm.magics["cell"],
    getattr(asyncio.run, "__asyncbridge_redirect__", False)
    and not getattr(_wrapped, "__asyncbridge_redirect__", False),
)
""".strip()

LOADED_NEST = "(1, True, True, True, True)"
UNLOADED = "(0, False, False, False, False)"


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with start_kernel() as kernel:
        yield kernel


def test_load_load_reload_unload_unload(kernel: Kernel) -> None:
    """The lifecycle walk: nothing piles up, and unload removes everything."""
    assert kernel.ok(FOOTPRINT).result == UNLOADED
    kernel.ok(
        "from IPython.core.magic import register_line_magic\n"
        "@register_line_magic\n"
        "def run_async(line):\n"
        "    return 'the user magic'\n"
        "original_loop_class_ruc = type(asyncio.get_running_loop()).run_until_complete"
    )
    kernel.ok("%load_ext asyncbridge_ext")
    assert kernel.ok(FOOTPRINT).result == LOADED_NEST
    kernel.ok("patched_ruc = type(asyncio.get_running_loop()).run_until_complete")

    again = kernel.ok("%load_ext asyncbridge_ext")
    assert "already loaded" in again.stdout
    kernel.ok("import asyncbridge_ext\nasyncbridge_ext.load_ipython_extension(get_ipython())")
    assert kernel.ok(FOOTPRINT).result == LOADED_NEST

    kernel.ok("%config AsyncBridge.timeout = 7")
    guards = (
        "sum(type(c).__name__ == 'NestedRunGuard' for c in _ip.events.callbacks['pre_run_cell'])"
    )
    for _ in range(3):
        kernel.ok("%reload_ext asyncbridge_ext")
        assert kernel.ok(FOOTPRINT).result == LOADED_NEST
        assert kernel.ok(guards).result == "1"  # one pre_run_cell guard, not stacked
    intercepted = "import nest_asyncio\ngetattr(nest_asyncio.apply, '__asyncbridge_redirect__', 0)"
    assert kernel.ok(intercepted).result == "True"
    assert kernel.ok("%config AsyncBridge.timeout").result == "7.0"
    assert kernel.ok("%run_async asyncio.sleep(0, result='after reloads')").result == (
        "'after reloads'"
    )
    # the nest patch was applied once, not stacked by the reloads
    check = "type(asyncio.get_running_loop()).run_until_complete is patched_ruc"
    assert kernel.ok(check).result == "True"
    assert kernel.ok("patched_ruc is not original_loop_class_ruc").result == "True"

    kernel.ok("%unload_ext asyncbridge_ext")
    assert kernel.ok(FOOTPRINT).result == "(0, False, True, False, False)"
    assert kernel.ok(guards).result == "0"
    assert kernel.ok(intercepted).result == "0"  # the archived library's own apply is back
    assert kernel.ok("%run_async x").result == "'the user magic'"  # put back
    config = kernel.run("%config AsyncBridge")
    assert config.reply is not None and config.reply["ename"] == "UsageError"

    twice = kernel.ok("%unload_ext asyncbridge_ext")
    assert "not loaded" in twice.stdout
    kernel.ok("asyncbridge_ext.unload_ipython_extension(get_ipython())")
    kernel.ok("del _mm.magics['line']['run_async']")
    assert kernel.ok(FOOTPRINT).result == UNLOADED

    kernel.ok("%load_ext asyncbridge_ext")  # loads again after an unload
    assert kernel.ok(FOOTPRINT).result == LOADED_NEST
    assert kernel.ok("%config AsyncBridge.timeout").result == "7.0"
    kernel.ok("%config AsyncBridge.timeout = None")


# Every callback of the shell's events that belongs to us, as (event, owner's class) pairs,
# and the ids of everyone else's, to check that those are left alone.
HOOKS = """
import logging
def _owner(callback):
    return getattr(callback, "__self__", callback)
def _ours(callback):
    return type(_owner(callback)).__module__.startswith("asyncbridge_ext")
_events = get_ipython().events.callbacks
(
    sorted(
        (event, type(_owner(cb)).__name__)
        for event, cbs in _events.items() for cb in cbs if _ours(cb)
    ),
    sorted((event, id(cb)) for event, cbs in _events.items() for cb in cbs if not _ours(cb)),
    len(logging.getLogger("asyncbridge_ext").handlers),
)
""".strip()

WRAPPED = "getattr(asyncio.run, '__asyncbridge_redirect__', False)"
BRIDGE = "next(c for c in get_ipython().configurables if type(c).__name__ == 'AsyncBridge')"


def test_unload_leaves_no_hook_behind_and_reload_registers_each_once() -> None:
    """Every hook the Magics registers goes on unload; a reload registers each exactly once."""
    with start_kernel() as kernel:
        kernel.ok("import asyncio")
        before = kernel.ok(HOOKS).result
        assert before is not None and before.startswith("([],"), before
        kernel.ok("%load_ext asyncbridge_ext")
        loaded = kernel.ok(HOOKS).result
        assert loaded is not None
        for hook in [
            "('post_execute', 'CellWatch')",
            "('post_run_cell', 'CellWatch')",
            "('pre_execute', 'CellWatch')",
            "('pre_run_cell', 'NestedRunGuard')",
        ]:
            assert loaded.count(hook) == 1, loaded
        kernel.ok("%asyncbridge --log debug")
        kernel.ok(f"first = {BRIDGE}")
        for _ in range(2):
            kernel.ok("%reload_ext asyncbridge_ext")
            assert kernel.ok(HOOKS).result == loaded  # each once; the log handler is gone
        # the options object of the first load no longer acts: its observer went with it
        kernel.ok("first.nested_run = 'off'")
        assert kernel.ok(WRAPPED).result == "True"
        kernel.ok("%asyncbridge --log debug")
        kernel.ok("%unload_ext asyncbridge_ext")
        assert kernel.ok(HOOKS).result == before
        kernel.ok(f"%load_ext asyncbridge_ext\nlast = {BRIDGE}")
        kernel.ok("%unload_ext asyncbridge_ext")
        kernel.ok("last.nested_run = 'thread'")
        assert kernel.ok(WRAPPED).result == "False"
        assert kernel.ok(HOOKS).result == before


def test_config_shows_help_and_validates(kernel: Kernel) -> None:
    kernel.ok("%load_ext asyncbridge_ext")
    listing = kernel.ok("%config")
    assert listing.stdout.count("AsyncBridge") == 1
    helptext = kernel.ok("%config AsyncBridge").stdout
    for option in ("AsyncBridge.nested_run", "AsyncBridge.timeout", "AsyncBridge.nest_backend"):
        assert option in helptext
    flowing = " ".join(helptext.split())  # the help is wrapped at any word
    assert "fresh event loop" in flowing and "TimeoutError" in flowing
    assert "'auto'" in flowing

    kernel.ok("%config AsyncBridge.timeout = 3")
    bad = kernel.run("%config AsyncBridge.timeout = -1")
    assert "AsyncBridge.timeout must be a positive number of seconds or None, got -1.0" in (
        bad.stdout + bad.stderr
    ), bad.describe()
    assert kernel.ok("%config AsyncBridge.timeout").result == "3.0"
    bad = kernel.run("%config AsyncBridge.nested_run = 'sometimes'")
    assert "'sometimes'" in bad.stdout + bad.stderr, bad.describe()
    assert kernel.ok("%config AsyncBridge.nested_run").result == "'nest'"
    assert kernel.ok(FOOTPRINT).result == LOADED_NEST

    # IPython keeps the refused value in the shell's config; a reload must still work.
    reloaded = kernel.ok("%reload_ext asyncbridge_ext")
    assert "ignoring the AsyncBridge config" in reloaded.stderr
    assert kernel.ok(FOOTPRINT).result == LOADED_NEST
    assert kernel.ok("%run_async asyncio.sleep(0, result=1)").result == "1"


def test_thread_mode_from_config_file_with_autoload() -> None:
    """ipython_kernel_config.py: auto-load plus options; thread mode patches nothing nest."""
    config = (
        "c.InteractiveShellApp.extensions = ['asyncbridge_ext']\n"
        "c.AsyncBridge.nested_run = 'thread'\n"
        "c.AsyncBridge.timeout = 12.5\n"
    )
    with start_kernel(kernel_config=config) as kernel:
        assert kernel.ok("%config AsyncBridge.timeout").result == "12.5"
        assert kernel.ok("%config AsyncBridge.nested_run").result == "'thread'"
        cell = kernel.ok(
            "import asyncio, threading\n"
            "from asyncbridge_ext import NestAsyncio\n"
            "async def where():\n"
            "    return threading.get_ident()\n"
            "(asyncio.run(where()) == threading.get_ident(), NestAsyncio.is_applied)"
        )
        assert cell.result == "(True, False)"
        kernel.ok("%reload_ext asyncbridge_ext")
        kernel.ok("%reload_ext asyncbridge_ext")
        assert kernel.ok(FOOTPRINT).result == "(1, True, True, True, True)"
        kernel.ok("%unload_ext asyncbridge_ext")
        assert kernel.ok(FOOTPRINT).result == UNLOADED


def test_changing_nested_run_at_runtime_takes_effect() -> None:
    nested = "asyncio.run(asyncio.sleep(0, result='nested ok'))"
    with start_kernel() as kernel:
        kernel.ok(
            "import asyncio\n"
            "from asyncbridge_ext import NestAsyncio\n"
            "%config AsyncBridge.nested_run = 'off'"  # set before loading: read at load
        )
        kernel.ok("%load_ext asyncbridge_ext")
        off = kernel.run(nested)
        assert off.error is not None and off.error["ename"] == "RuntimeError"
        assert kernel.ok("NestAsyncio.is_applied").result == "False"

        kernel.ok("%config AsyncBridge.nested_run = 'thread'")
        assert kernel.ok(nested).result == "'nested ok'"
        assert kernel.ok("NestAsyncio.is_applied").result == "False"

        # a mode that cannot be set up leaves the one in effect, and says why
        kernel.ok("import sys\nsys.modules['nest_asyncio'] = None  # makes it unimportable")
        kernel.ok("%config AsyncBridge.nest_backend = 'nest_asyncio'")
        failed = kernel.run("%config AsyncBridge.nested_run = 'nest'")
        said = failed.stdout + failed.stderr
        if sys.version_info >= (3, 14):  # refused before it is imported: it would not work
            assert "the archived nest_asyncio does not work on Python 3.14" in said, said
        else:
            assert "pip install 'asyncbridge-ext[nest-asyncio]'" in said
        assert kernel.ok("%config AsyncBridge.nested_run").result == "'thread'"
        assert kernel.ok(nested).result == "'nested ok'"
        assert kernel.ok("NestAsyncio.is_applied").result == "False"
        kernel.ok("del sys.modules['nest_asyncio']\n%config AsyncBridge.nest_backend = 'auto'")

        kernel.ok("%config AsyncBridge.nested_run = 'off'")
        assert kernel.run(nested).status == "error"

        kernel.ok("%config AsyncBridge.nested_run = 'nest'")
        assert kernel.ok(nested).result == "'nested ok'"
        assert kernel.ok("NestAsyncio.is_applied, NestAsyncio.backend").result == (
            "(True, 'nest_asyncio2')"
        )
        to_thread = kernel.ok("%config AsyncBridge.nested_run = 'thread'")
        assert "cannot be undone" in to_thread.stderr
        assert "nest_asyncio2" in to_thread.stderr and "restart" in to_thread.stderr
        assert kernel.ok("getattr(asyncio.run, '__asyncbridge_redirect__', False)").result == (
            "True"
        )
        assert kernel.ok(nested).result == "'nested ok'"


IPYKERNEL = version_tuple(installed_version("ipykernel") or "0")

# The nested run lasts until the kernel has received the follow-up cells (the test creates
# the flag once it knows): they are always queued while it runs.
NESTED_RUN_UNTIL_RECEIVED = """
import asyncio, os, time

async def until_received(flag):
    deadline = time.monotonic() + 60
    while not os.path.exists(flag):
        if time.monotonic() > deadline:
            raise TimeoutError("the test never said the follow-up cells were received")
        await asyncio.sleep(0.01)

print("nested run started", flush=True)
asyncio.run(until_received({flag!r}))
print("nested run finished")
"""


def _queue_behind_a_nested_run(kernel: Kernel, tmp_path: Path) -> None:
    received = tmp_path / "follow-up-cells-received"
    # ipykernel 7: a subshell cell sent after the follow-up cells proves that the kernel
    # has them. ipykernel 6 has no subshells (and never lost queued cells): there the flag
    # only says they were sent.
    subshell = kernel.create_subshell() if IPYKERNEL >= (7,) else None
    first = kernel.submit(NESTED_RUN_UNTIL_RECEIVED.format(flag=str(received)))
    kernel.wait_for_stdout(first, "nested run started")
    behind = [kernel.submit(f"print('queued', {i})\n{i} * 10") for i in range(12)]
    if subshell is not None:
        kernel.confirm_received(subshell)
    assert not first.done, "the nested run ended before the follow-up cells were queued"
    received.touch()
    kernel.wait([first, *behind], timeout=60)
    assert first.status == "ok", first.describe() + first.traceback
    assert first.stdout == "nested run started\nnested run finished\n"
    for i, cell in enumerate(behind):
        assert cell.status == "ok", cell.describe() + cell.traceback
        assert (cell.stdout, cell.result) == (f"queued {i}\n", str(i * 10))


@pytest.mark.parametrize("mode", ["nest", "thread"])
def test_cells_queued_behind_a_nested_run_all_reply(mode: str, tmp_path: Path) -> None:
    with start_kernel() as kernel:
        kernel.ok(f"%config AsyncBridge.nested_run = {mode!r}\n%load_ext asyncbridge_ext")
        _queue_behind_a_nested_run(kernel, tmp_path)


def test_extension_loaded_at_kernel_start_with_ext_flag(tmp_path: Path) -> None:
    with start_kernel(extra_arguments=["--ext", "asyncbridge_ext"]) as kernel:
        assert kernel.ok(FOOTPRINT).result == LOADED_NEST
        _queue_behind_a_nested_run(kernel, tmp_path)
        assert kernel.ok("%run_async asyncio.sleep(0, result=2)").result == "2"


INTERRUPTIBLE = {
    "run_async": (
        "async def slow():\n"
        "    try:\n"
        "        print('coroutine started', flush=True)\n"
        "        await asyncio.sleep(60)\n"
        "    finally:\n"
        "        state['finally ran'] = True\n"
        "%run_async slow()"
    ),
    "in_new_loop": (
        "%%in_new_loop\n"
        "try:\n"
        "    print('coroutine started', flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "finally:\n"
        "    state['finally ran'] = True\n"
    ),
}


@pytest.mark.parametrize("magic", sorted(INTERRUPTIBLE))
def test_interrupt_runs_finally_and_the_next_cell_works(magic: str) -> None:
    with start_kernel() as kernel:
        kernel.ok("import asyncio\nstate = {}\n%load_ext asyncbridge_ext")
        cell = kernel.submit(INTERRUPTIBLE[magic])
        kernel.interrupt_once_running(cell, "coroutine started")
        assert kernel.ok("state").result == "{'finally ran': True}"
        assert kernel.ok("%run_async asyncio.sleep(0, result='next')").result == "'next'"


def test_terminal_ipython(tmp_path: Path) -> None:
    code = (
        "%%in_new_loop\n"
        "import asyncio, threading\n"
        "async def ident():\n"
        "    return threading.get_ident()\n"
        "by_magic = %run_async ident()\n"
        "here = threading.get_ident()\n"
        "print('terminal:', by_magic != here, await ident() == here)\n"
    )
    env = {**os.environ, "IPYTHONDIR": str(tmp_path)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "IPython",
            "--ext",
            "asyncbridge_ext",
            "--colors=NoColor",
            "-c",
            code,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "terminal: True True" in done.stdout, done.stdout + done.stderr
