"""Inside a nested asyncio.run in nest mode, in a real kernel: what anyio and asyncio need.

From Python 3.14 the C tasks keep the current task per thread; a nest patch that loses it
makes ``asyncio.current_task()`` None, and ``asyncio.timeout``, ``TaskGroup``, anyio's
cancel scopes (and so httpx, which streams through anyio) then fail. Each case runs in a
nested ``asyncio.run`` inside the cell (the kernel's loop running), with three cells
queued behind it that must all reply. One kernel per backend (module-scoped).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.kernel_harness import Kernel, start_kernel

pytestmark = pytest.mark.kernel

SETUP = """
import asyncio, socket, threading
import anyio

def echo_server():
    # A local server on its own thread, as a remote HTTP server is: it answers one line.
    listener = socket.create_server(("127.0.0.1", 0))
    def serve():
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"echo " + conn.recv(100))
    thread = threading.Thread(target=serve, name="asyncbridge-test-echo", daemon=True)
    thread.start()
    return listener.getsockname()[1], thread

async def with_timeout():
    async with asyncio.timeout(5):
        await asyncio.sleep(0.01)
    try:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(5)
    except TimeoutError:
        return "timed out"

async def with_task_group():
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(asyncio.sleep(0.01, i)) for i in range(3)]
    return [t.result() for t in tasks]

async def with_wait_for():
    first = await asyncio.wait_for(asyncio.sleep(0.01, "in time"), 5)
    try:
        await asyncio.wait_for(asyncio.sleep(5), 0.01)
    except TimeoutError:
        return first, "timed out"

async def with_anyio_task_group():
    results = []
    async def child(i):
        await anyio.sleep(0.01)
        results.append(i)
    async with anyio.create_task_group() as group:
        for i in range(3):
            group.start_soon(child, i)
    with anyio.move_on_after(0.01) as scope:
        await anyio.sleep(5)
    return sorted(results), scope.cancelled_caught

async def with_anyio_stream(port):
    # What httpx's transport does through httpcore: connect, send, receive, under a deadline.
    with anyio.fail_after(10):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(b"hello")
            return await stream.receive()

async def current_task_seen():
    return asyncio.current_task() is not None
"""

CASES = {
    "asyncio.timeout": ("asyncio.run(with_timeout())", "'timed out'"),
    "TaskGroup": ("asyncio.run(with_task_group())", "[0, 1, 2]"),
    "wait_for": ("asyncio.run(with_wait_for())", "('in time', 'timed out')"),
    "anyio task group": ("asyncio.run(with_anyio_task_group())", "([0, 1, 2], True)"),
    "anyio stream to 127.0.0.1": (
        "port, server = echo_server()\n"
        "reply = asyncio.run(with_anyio_stream(port))\n"
        "server.join(10)\nreply, server.is_alive()",
        "(b'echo hello', False)",
    ),
    "current_task() inside and after": (
        "asyncio.run(current_task_seen()), asyncio.current_task() is not None",
        "(True, True)",
    ),
}


@pytest.fixture(scope="module", params=["nest-asyncio2", "archived nest_asyncio first"])
def nest_kernel(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    """Nest mode; or the archived library applied before the load, which the load replaces."""
    with start_kernel() as kernel:
        if request.param != "nest-asyncio2":
            kernel.ok("import nest_asyncio\nnest_asyncio.apply()")
        kernel.ok("%config AsyncBridge.nested_run = 'nest'\n%load_ext asyncbridge_ext")
        kernel.ok(SETUP)
        assert kernel.ok("from asyncbridge_ext import NestAsyncio\nNestAsyncio.backend").result == (
            "'nest_asyncio2'"
        )
        yield kernel


@pytest.mark.parametrize("case", list(CASES))
def test_inside_a_nested_run_in_nest_mode(nest_kernel: Kernel, case: str) -> None:
    code, expected = CASES[case]
    first = nest_kernel.submit(code, stop_on_error=False)
    behind = [nest_kernel.submit(f"'queued {i}'", stop_on_error=False) for i in range(3)]
    nest_kernel.wait([first, *behind], timeout=60)
    assert first.status == "ok", first.describe() + "\n" + first.traceback
    assert first.result == expected
    assert "Cannot enter into task" not in first.stderr
    for i, cell in enumerate(behind):
        assert (cell.status, cell.result) == ("ok", f"'queued {i}'"), cell.describe()
