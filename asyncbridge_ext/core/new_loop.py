"""Run a coroutine to completion from sync code, on a fresh event loop in another thread.

This is the plain core of asyncbridge_ext: standard library only, no IPython.
:func:`run_coroutine_in_new_loop` only; :class:`~asyncbridge_ext.LoopThread` (one
persistent loop for many fast calls) lives in :mod:`.loop_thread`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

from ._awaitables import as_coroutine, check_grace, check_timeout, close_quietly
from ._call import (
    DEFAULT_CANCEL_GRACE,
    Call,
    cancel_if_running,
    capture_outcome,
    create_task_in_context,
    wait_for_outcome,
)
from ._closing import tidy_loop_before_close
from ._loop_tasks import FreshLoopTasks
from ._pools import Job, fresh_loop_pool

__all__ = ["run_coroutine_in_new_loop"]

T = TypeVar("T")

#: How timeout errors, warnings and ``%asyncbridge`` name the work and where it runs.
SUBJECT, WHERE = "the coroutine", "on its loop thread"

logger = logging.getLogger(__name__)


def run_coroutine_in_new_loop(
    awaitable: Awaitable[T],
    *,
    timeout: float | None = None,
    cancel_grace: float = DEFAULT_CANCEL_GRACE,
) -> T:
    """Run ``awaitable`` on a brand-new event loop in a worker thread; block for its result.

    Where it runs: every call gets a fresh event loop, run by a worker thread (never the
    caller's thread), and that loop is closed before this function returns. Worker
    threads are reused from a small pool, so the thread count follows the number of
    calls running at once, not the number of calls made; loops are never reused. The
    caller's thread may or may not have a running loop of its own (a Jupyter cell does):
    that loop is not touched, and it does not advance while the caller blocks here.

    The coroutine runs under a copy of the caller's :mod:`contextvars` context, so context
    variables set by the caller are visible inside it, and in a Jupyter kernel its
    ``print()`` / ``display()`` output lands in the calling cell.

    What the caller does meanwhile: it blocks on a lock, in short slices, until the
    coroutine has finished *and* its loop has been cleaned up: remaining tasks cancelled,
    async generators finalized, the default executor shut down, the loop closed.

    Result and errors: the coroutine's return value is returned; its exception is raised
    in the caller as the very same object (same type and message, the coroutine's frames
    in the traceback, the bridge frames hidden from IPython with ``__tracebackhide__``).

    Timeout and Ctrl-C: after ``timeout`` seconds, or on ``KeyboardInterrupt`` in the
    caller (a kernel interrupt is SIGINT in the main thread), the coroutine is cancelled
    and the caller waits up to ``cancel_grace`` seconds for its ``finally`` blocks; then it
    raises ``TimeoutError`` or re-raises ``KeyboardInterrupt``. A coroutine that ignores
    cancellation for longer is abandoned with a logged warning; the caller never hangs.

    Example::

        >>> async def add(a, b):
        ...     await asyncio.sleep(0)
        ...     return a + b
        >>> run_coroutine_in_new_loop(add(1, 2))
        3

    Raises ``TypeError`` for a non-awaitable or an uncalled coroutine function, and
    ``ValueError`` for a future that belongs to another loop or a bad ``timeout``.
    """
    __tracebackhide__ = True
    try:
        timeout = check_timeout(timeout)
        grace = check_grace(cancel_grace)
        coro = as_coroutine(awaitable, caller="run_coroutine_in_new_loop")
    except BaseException:
        close_quietly(awaitable)
        raise
    call: Call[T] = Call()
    loop = asyncio.new_event_loop()
    tasks = FreshLoopTasks(loop)  # its task factory records the loop's tasks
    # The task is created here, before any thread runs the loop, so a cancellation
    # request always finds both the loop and the task, however early it comes.
    task = create_task_in_context(loop, _run_then_clean_up(call, coro, grace, tasks), call)
    job = FreshLoopJob(loop, task, call)
    pool = fresh_loop_pool()
    worker = pool.reserve()  # last, so that only the try below can leave it reserved

    def request_cancel() -> None:
        tasks.disturbed = True  # before the request's handle refers to the loop
        try:
            loop.call_soon_threadsafe(cancel_if_running, call)
        except RuntimeError:
            pass  # the loop is already closed: the coroutine has finished
        if not job.queued:  # a Ctrl-C cut the hand-over short: the loop must still
            pool.submit(worker, job)  # run, to cancel the coroutine and close

    def hand_over() -> None:
        pool.submit(worker, job)

    # Submitted inside the wait: starting a worker thread can take long enough for the
    # coroutine to run (and a Ctrl-C to arrive) before submit() returns.
    try:
        return wait_for_outcome(
            call, timeout, grace, request_cancel, hand_over, subject=SUBJECT, where=WHERE
        )
    finally:
        pool.after_call(worker, job)


async def _run_then_clean_up(
    call: Call[T], coro: Coroutine[Any, Any, T], grace: float, tasks: FreshLoopTasks
) -> None:
    """The one task of a fresh loop: run the coroutine, then tidy the loop for closing.

    Runs on a worker thread. Cleanup happens in the same task, so a call costs a single
    ``run_until_complete``. The loop's references are counted here, before the
    coroutine runs, and again during the tidy-up, with this frame alive both times.
    """
    __tracebackhide__ = True
    tasks.note_start(asyncio.get_running_loop())
    await capture_outcome(call, coro, release=False)
    await tidy_loop_before_close(grace, "a fresh loop", tasks)


class FreshLoopJob(Job):
    """A fresh loop and its one task, handed to a worker of :func:`~._pools.fresh_loop_pool`.

    The job holds the loop and the task fixed while the call runs: the loop's tidy-up
    counts this thread's references to them (see :class:`FreshLoopTasks`).
    """

    __slots__ = ("loop", "task")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[None], call: Call[Any]
    ) -> None:
        super().__init__(call)
        self.loop = loop
        self.task = task

    def run(self) -> None:
        """Run the task to the end on the loop, then close the loop. Runs on the worker."""
        loop = self.loop
        try:
            loop.run_until_complete(self.task)
        except BaseException:  # never kill the worker; the outcome is already in the call
            logger.exception("asyncbridge_ext: the worker loop failed")
        finally:
            loop.close()
            logger.debug("closed a fresh loop on %s", threading.current_thread().name)
