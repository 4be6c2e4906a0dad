"""ipykernel 7 subshells: "Interrupt kernel" stops bridged work there too, main shell idle or busy.

A subshell's cell runs on its own thread, and SIGINT reaches only the main thread; the
extension forwards it (see asyncbridge_ext/ipython/sigint.py). Each test waits for a
marker printed by the running cell before it interrupts, then checks what the user sees:
KeyboardInterrupt in the subshell's cell, the coroutine's finally ran, and both shells
still run cells.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from asyncbridge_ext.core.environment import installed_version, version_tuple
from support.kernel_harness import Cell, Kernel, start_kernel

IPYKERNEL = installed_version("ipykernel") or "0"

HAS_SUBSHELLS = version_tuple(IPYKERNEL) >= (7,)

pytestmark = pytest.mark.kernel
needs_subshells = pytest.mark.skipif(
    not HAS_SUBSHELLS,
    reason=f"kernel subshells (JEP 91) need ipykernel >= 7; this is ipykernel {IPYKERNEL}",
)

SLOW_COROUTINE = """
import asyncio
async def slow(label):
    try:
        print("started", label, flush=True)
        await asyncio.sleep(30)
    finally:
        print("finally ran", label, flush=True)
"""

#: What a subshell cell runs, per kind of bridged work; each prints "started <label>".
BRIDGED = {
    "run_async": "%run_async slow('{label}')",
    "in_new_loop": "%%in_new_loop\nawait slow('{label}')",
    # thread mode: runs on the subshell's own thread, with the subshell's loop paused
    "nested_asyncio_run": "asyncio.run(slow('{label}'))",
}

MAIN_BUSY = """
import time
print("main busy", flush=True)
while True:
    time.sleep(0.05)
"""


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    config = "c.AsyncBridge.nested_run = 'thread'\n"
    with start_kernel(kernel_config=config) as kernel:
        kernel.ok("%load_ext asyncbridge_ext")
        kernel.ok(SLOW_COROUTINE)
        yield kernel


def assert_interrupted(cell: Cell, label: str) -> None:
    assert cell.status == "error", cell.describe()
    assert cell.error is not None and cell.error["ename"] == "KeyboardInterrupt", cell.describe()
    assert f"finally ran {label}" in cell.stdout, cell.describe()


def assert_both_shells_go_on(kernel: Kernel, subshell_id: str) -> None:
    assert kernel.ok("6 * 7").result == "42"
    assert kernel.ok("6 * 7", subshell_id=subshell_id).result == "42"


@needs_subshells
@pytest.mark.parametrize("what", sorted(BRIDGED))
def test_interrupt_reaches_a_subshell_while_the_main_shell_is_idle(
    kernel: Kernel, what: str
) -> None:
    subshell = kernel.create_subshell()
    label = f"idle-{what}"
    cell = kernel.submit(BRIDGED[what].format(label=label), subshell)
    kernel.interrupt_once_running(cell, f"started {label}", timeout=15)
    assert_interrupted(cell, label)
    assert_both_shells_go_on(kernel, subshell)


@needs_subshells
@pytest.mark.parametrize("what", ["run_async", "in_new_loop"])
def test_interrupt_reaches_a_subshell_while_the_main_shell_is_busy(
    kernel: Kernel, what: str
) -> None:
    subshell = kernel.create_subshell()
    label = f"busy-{what}"
    main = kernel.submit(MAIN_BUSY)
    kernel.wait_for_stdout(main, "main busy")
    cell = kernel.submit(BRIDGED[what].format(label=label), subshell)
    kernel.wait_for_stdout(cell, f"started {label}")
    kernel.interrupt()
    kernel.wait([cell, main], timeout=15)
    assert_interrupted(cell, label)
    assert main.error is not None and main.error["ename"] == "KeyboardInterrupt", main.describe()
    assert_both_shells_go_on(kernel, subshell)


@needs_subshells
def test_interrupt_reaches_a_subshell_while_the_main_shell_awaits_at_top_level(
    kernel: Kernel,
) -> None:
    # ipykernel gives such a cell its own SIGINT handler; ours wraps it from pre_execute.
    # (ipykernel 7.4 itself cancels that main cell only when its sleep ends.)
    subshell = kernel.create_subshell()
    main = kernel.submit("print('main awaits', flush=True)\nawait asyncio.sleep(10)")
    kernel.wait_for_stdout(main, "main awaits")
    cell = kernel.submit(BRIDGED["run_async"].format(label="async-main"), subshell)
    kernel.wait_for_stdout(cell, "started async-main")
    kernel.interrupt()
    kernel.wait([cell], timeout=15)
    assert not main.done, "the subshell was interrupted, not merely released by the main cell"
    assert_interrupted(cell, "async-main")
    kernel.wait([main], timeout=20)
    assert main.error is not None and main.error["ename"] == "CancelledError", main.describe()
    assert_both_shells_go_on(kernel, subshell)


@needs_subshells
def test_an_interrupt_request_message_reaches_a_subshell_too() -> None:
    # interrupt_mode "message": the control channel's interrupt_request; the kernel then
    # sends SIGINT to itself, which takes the same way in.
    with start_kernel(interrupt_mode="message") as kernel:
        kernel.ok("%load_ext asyncbridge_ext")
        kernel.ok(SLOW_COROUTINE)
        subshell = kernel.create_subshell()
        cell = kernel.submit(BRIDGED["run_async"].format(label="message"), subshell)
        kernel.interrupt_once_running(cell, "started message", timeout=15)
        assert_interrupted(cell, "message")
        assert_both_shells_go_on(kernel, subshell)


def test_without_subshells_ipykernels_sigint_handlers_are_left_alone() -> None:
    if HAS_SUBSHELLS:
        pytest.skip("this ipykernel has subshells: the forwarding is installed")
    with start_kernel() as kernel:
        kernel.ok("%load_ext asyncbridge_ext")
        cell = kernel.ok(
            "import signal\nprint(signal.getsignal(signal.SIGINT) is signal.default_int_handler,"
            " get_ipython().kernel.saved_sigint_handler is signal.SIG_IGN)\n%asyncbridge"
        )
    assert cell.stdout.splitlines()[0] == "True True"
    assert "interrupt_forwarding: not needed (no subshells)" in cell.stdout


@needs_subshells
def test_loaded_from_a_subshell_the_forwarding_is_installed_on_the_main_thread() -> None:
    with start_kernel() as kernel:
        subshell = kernel.create_subshell()
        kernel.ok("%load_ext asyncbridge_ext", subshell_id=subshell)
        kernel.ok(SLOW_COROUTINE, subshell_id=subshell)
        cell = kernel.submit(BRIDGED["run_async"].format(label="loaded-here"), subshell)
        kernel.interrupt_once_running(cell, "started loaded-here", timeout=15)
        assert_interrupted(cell, "loaded-here")
        assert_both_shells_go_on(kernel, subshell)


@needs_subshells
def test_unload_puts_ipykernels_sigint_handlers_and_hooks_back() -> None:
    check = (
        "import signal\n"
        "k = get_ipython().kernel\n"
        "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler,"
        " k.saved_sigint_handler is signal.SIG_IGN, 'pre_handler_hook' in vars(k),"
        " len(get_ipython().events.callbacks['pre_execute']),"
        # wrapped once: the busy handler inside our wrapper is ipykernel's own
        " getattr(signal.getsignal(signal.SIGINT), 'previous', None) is signal.default_int_handler)"
    )
    with start_kernel() as kernel:
        unloaded = kernel.ok(check).stdout.split()
        assert unloaded[:3] + unloaded[4:] == ["True", "True", "False", "False"], unloaded
        kernel.ok("%load_ext asyncbridge_ext")
        kernel.ok("%reload_ext asyncbridge_ext")
        loaded = kernel.ok(check).stdout.split()
        # pre_execute hooks: the SIGINT forwarding's and CellWatch's (the running loop)
        assert loaded == ["False", "False", "True", str(int(unloaded[3]) + 2), "True"], loaded
        kernel.ok("%unload_ext asyncbridge_ext")
        assert kernel.ok(check).stdout.split() == unloaded
        subshell = kernel.create_subshell()
        # The main shell is idle while a subshell cell runs: ipykernel's own SIG_IGN is back.
        idle = kernel.ok(
            "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)",
            subshell_id=subshell,
        )
        assert idle.stdout.strip() == "True"
