"""How a nested run is served: on the calling thread with the running loop paused, or refused.

Plain asyncio, no IPython. :mod:`asyncbridge_ext.nested.redirect` decides *which* route a call
takes; this module holds the two things a route does:

- :func:`run_with_loop_paused` runs a loop-driving call (``asyncio.run``, ``Runner.run``,
  ``loop.run_until_complete`` on a loop that is not running) on the calling thread itself,
  while the loop that runs there (the kernel's) is paused: asyncio's running-loop marker
  is cleared for the duration of the call and put back afterwards, so asyncio sees the
  thread as it would be in a plain script. This is what a plain script pays for the same
  call, keeps objects bound to the thread (a sqlite3 connection) usable, and keeps
  asyncio's own SIGINT handling (``asyncio.Runner`` cancels its main task on Ctrl-C in the
  main thread, so ``finally`` blocks run).
- :func:`serve_off_main` does the same off the main thread (an ipykernel 7 subshell),
  where no SIGINT arrives: while the call runs, a kernel interrupt (delivered through
  :data:`~asyncbridge_ext.core.interrupts.INTERRUPTS`) cancels the tasks of the loops the call
  runs, so their ``finally`` blocks run, and the call raises ``KeyboardInterrupt``.
- :func:`refusal` builds the error for a call that only a re-entrant loop can serve.
"""

from __future__ import annotations

import asyncio
import threading
from asyncio import events
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ..core.asyncio_internals import (
    loop_of_future,
    set_running_loop,
    swap_current_task,
    thread_event_loop,
)
from ..core.interrupts import INTERRUPTS
from ..core.loops import cancel_all_tasks, running_loops

__all__ = [
    "as_coroutine_for_run",
    "bound_loop",
    "close_runner",
    "refusal",
    "run_with_loop_paused",
    "serve_off_main",
]

T = TypeVar("T")


def run_with_loop_paused(
    running: asyncio.AbstractEventLoop, call: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """Call ``call(*args, **kwargs)`` on this thread as if no loop were running here.

    ``running`` is the loop running on this thread (the kernel's). It stays paused in the
    middle of its current callback, exactly as during any blocking call, and nothing of
    it is touched: its marker and current task are put aside, the call runs (starting
    and closing its own loop, as it would in a script), then both are put back, and so is
    the thread's event loop if the call cleared it (``asyncio.run`` sets it to None when
    it ends). Ctrl-C and timeouts behave as the call itself makes them behave.
    """
    __tracebackhide__ = True
    task = None
    if swap_current_task is not None:  # Python 3.14+: the current task is kept per thread
        task = swap_current_task(running, None)
    set_running_loop(None)
    thread_loop = thread_event_loop()
    try:
        return call(*args, **kwargs)
    finally:
        # Read while no loop runs here (from 3.14 the reading returns the running loop).
        if thread_event_loop() is not thread_loop:
            events.set_event_loop(thread_loop)
        set_running_loop(running)
        if task is not None and swap_current_task is not None:
            swap_current_task(running, task)


def close_runner(
    running: asyncio.AbstractEventLoop, close: Callable[[Any], Any], runner: Any
) -> Any:
    """Call ``asyncio.Runner.close`` while ``running`` runs on this thread, keeping a loop set.

    A Runner made in a cell takes the thread's event loop when it starts (``__enter__``,
    outside ``run()``) and, on close, sets it to None. In a cell that leaves the kernel's
    thread with no event loop for the rest of the session, so when close() cleared it,
    the running loop (the kernel's, which a cell's ``get_event_loop()`` returns anyway) is
    set again. The close itself runs as it would in a script; its
    ``run_until_complete`` calls are nested runs like any other.
    """
    __tracebackhide__ = True
    try:
        return close(runner)
    finally:
        set_running_loop(None)  # read the thread's event loop as asyncio keeps it
        try:
            if thread_event_loop() is None:
                events.set_event_loop(running)
        finally:
            set_running_loop(running)


def _loops_inside(
    ident: int, running: asyncio.AbstractEventLoop
) -> list[asyncio.AbstractEventLoop]:
    """The loops running in thread ``ident`` inside ``running`` (which stays untouched)."""
    loops = running_loops(ident)  # innermost first
    return loops[: loops.index(running)] if running in loops else loops


def serve_off_main(
    running: asyncio.AbstractEventLoop, call: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """:func:`run_with_loop_paused`, plus: a kernel interrupt cancels the call's tasks.

    Runs on a thread other than the main one (an ipykernel 7 subshell), where no SIGINT
    arrives. On interrupt (called on the main thread by
    :meth:`~asyncbridge_ext.core.interrupts.Interrupts.interrupt_off_main`) every task of the
    loops running in this thread inside ``running`` is cancelled from that loop's own
    thread (``call_soon_threadsafe``); the loops are found from this thread's stack, as
    :func:`~asyncbridge_ext.run_in_thread` finds them. Once the call has returned or
    raised, with those ``finally`` blocks run, ``KeyboardInterrupt`` is raised here.
    """
    __tracebackhide__ = True
    ident = threading.get_ident()
    interrupted: list[bool] = []

    def on_interrupt() -> None:
        interrupted.append(True)
        for loop in _loops_inside(ident, running):
            try:
                loop.call_soon_threadsafe(cancel_all_tasks, loop)
            except RuntimeError:
                pass  # closed meanwhile: that run is over

    with INTERRUPTS.target(on_interrupt):
        try:
            result = run_with_loop_paused(running, call, *args, **kwargs)
        except asyncio.CancelledError:
            if interrupted:
                raise KeyboardInterrupt from None
            raise
        if interrupted:
            raise KeyboardInterrupt
        return result


def bound_loop(awaitable: Any) -> asyncio.AbstractEventLoop | None:
    """The loop a future or task belongs to; None for anything else (a coroutine)."""
    if asyncio.isfuture(awaitable):
        return loop_of_future(awaitable)
    return None


async def _await(awaitable: Awaitable[T]) -> T:
    __tracebackhide__ = True
    return await awaitable


def as_coroutine_for_run(awaitable: Any) -> Coroutine[Any, Any, Any]:
    """A coroutine for ``asyncio.run`` out of what ``run_until_complete`` accepts."""
    if asyncio.iscoroutine(awaitable):
        return awaitable
    return _await(awaitable)


def refusal(what: str, awaitable: Any, mode: str, extra: str = "") -> RuntimeError:
    """The error for a call that only a re-entrant kernel loop can serve (thread mode)."""
    if awaitable is None:
        did = f"{what} was called on the event loop that is already running in this thread"
    else:
        did = (
            f"{what} was called with {awaitable!r}, which belongs to the event loop already "
            "running in this thread (the kernel's). A library scheduled it there (with "
            "asyncio.ensure_future, loop.create_task or asyncio.gather) and then waited for "
            "it from sync code; it was cancelled"
        )
    return RuntimeError(
        f"asyncbridge_ext (nested_run = {mode!r}): {did}. Only a re-entrant loop can finish "
        "it, and this mode never patches the kernel's loop (it runs nested calls on a "
        "fresh loop instead). "
        + extra
        + 'Set `%config AsyncBridge.nested_run = "auto"` (applies nest-asyncio2 at the first '
        'such call) or "nest", or await the library\'s async API in the cell instead.'
    )
