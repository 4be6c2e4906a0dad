"""The per-call contenders: ways to run a coroutine to completion from sync code.

Every contender is a factory: ``make()`` returns ``(call, close)``, where ``call(x)``
runs ``work(x)`` to completion from the calling (sync) thread and returns ``x + 1``,
and ``close()`` releases what the factory set up. The harness calls them from sync
code running inside a live event loop (the notebook situation), so helpers that need
"no running loop here" (plain ``asyncio.run``) cannot take part; the nested
``asyncio.run`` under nest_asyncio2 runs in its own process (see ``nest_worker.py``)
because its patch is global and would slow every other contender.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

Call = Callable[[int], int]
Factory = Callable[[], tuple[Call, Callable[[], None]]]


async def work(x: int) -> int:
    """The coroutine every contender runs: one turn of the loop, then a result."""
    await asyncio.sleep(0)
    return x + 1


def make_fresh_loop() -> tuple[Call, Callable[[], None]]:
    """The project's ``run_coroutine_in_new_loop``: pooled worker, fresh loop per call."""
    from asyncbridge_ext import run_coroutine_in_new_loop

    return (lambda x: run_coroutine_in_new_loop(work(x))), (lambda: None)


def make_loop_thread() -> tuple[Call, Callable[[], None]]:
    """The project's ``LoopThread.run``: one persistent loop thread."""
    from asyncbridge_ext import LoopThread

    runner = LoopThread()
    return (lambda x: runner.run(work(x))), runner.close


def naive_run(coro: Any) -> Any:
    """The baseline helper people write: new thread + new loop per call, then tear down."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        return asyncio.run_coroutine_threadsafe(coro, loop).result()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def make_naive() -> tuple[Call, Callable[[], None]]:
    """New thread + new loop per call, ``future.result()``, then stop / join / close."""
    return (lambda x: naive_run(work(x))), (lambda: None)


def make_textbook() -> tuple[Call, Callable[[], None]]:
    """``run_coroutine_threadsafe(...).result()`` on a persistent loop thread (the floor)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="bench-textbook", daemon=True)
    thread.start()

    def call(x: int) -> int:
        return asyncio.run_coroutine_threadsafe(work(x), loop).result()

    def close() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    return call, close


def make_anyio_portal() -> tuple[Call, Callable[[], None]]:
    """anyio's ``start_blocking_portal()``; each call is ``portal.call(work, x)``."""
    from anyio.from_thread import start_blocking_portal

    manager = start_blocking_portal()
    portal = manager.__enter__()
    return (lambda x: portal.call(work, x)), (lambda: manager.__exit__(None, None, None))


def make_jupyter_core() -> tuple[Call, Callable[[], None]]:
    """``jupyter_core.utils.run_sync`` (a persistent runner thread per calling thread)."""
    from jupyter_core.utils import run_sync

    return run_sync(work), (lambda: None)


#: name -> (label, factory). Order is the table's order.
CONTENDERS: dict[str, tuple[str, Factory]] = {
    "fresh_loop": ("asyncbridge_ext run_coroutine_in_new_loop", make_fresh_loop),
    "loop_thread": ("asyncbridge_ext LoopThread.run", make_loop_thread),
    "naive": ("naive: new thread + new loop per call", make_naive),
    "textbook": ("run_coroutine_threadsafe().result(), persistent loop", make_textbook),
    "anyio": ("anyio BlockingPortal.call", make_anyio_portal),
    "jupyter_core": ("jupyter_core.utils.run_sync", make_jupyter_core),
}
