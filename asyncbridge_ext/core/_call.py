"""One call handed from a caller thread to a loop, and the caller's bounded wait for it.

Shared by :func:`~asyncbridge_ext.run_coroutine_in_new_loop` and
:class:`~asyncbridge_ext.LoopThread`, and by :func:`~asyncbridge_ext.run_in_thread`,
whose call is a plain function on a worker thread. The caller thread blocks on a plain
lock in short slices (so Ctrl-C works everywhere, and a SIGINT in the main thread raises
``KeyboardInterrupt`` promptly); the loop (or worker) thread records the outcome and
releases the lock. The coroutine's own exception object is carried across unchanged,
which ``run_coroutine_threadsafe(...).result()`` does not do (it turns a user's
``CancelledError("msg")`` into ``concurrent.futures.CancelledError`` without a message).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from ._stop import StopRequested
from .activity import ACTIVITY
from .interrupts import INTERRUPTS

T = TypeVar("T")

logger = logging.getLogger("asyncbridge_ext")

#: How long one blocking wait lasts before the caller checks again. Short enough that
#: a platform whose lock waits cannot be interrupted still reacts to Ctrl-C quickly.
WAIT_SLICE = 0.2

#: Default for how long a cancelled coroutine may take to finish its ``finally`` blocks
#: before it is abandoned with a warning.
DEFAULT_CANCEL_GRACE = 3.0


#: What a timed-out call raises: the built-in TimeoutError (asyncio's since Python 3.11).
CallTimeoutError = TimeoutError


class Call(Generic[T]):
    """The state of one coroutine handed to a loop thread, shared by both threads.

    (For ``run_in_thread``, of one function handed to a worker thread: it writes
    ``result`` / ``error`` / ``settled`` the same way, and ``task`` stays ``None``.)
    The loop thread writes ``result`` / ``error`` / ``settled`` (only from the loop);
    the caller reads them after ``done`` was released. ``cancel_cause`` is written by
    the thread that asks for cancellation, before it asks.
    """

    __slots__ = ("cancel_cause", "context", "done", "error", "result", "settled", "task")

    def __init__(self) -> None:
        self.context = contextvars.copy_context()
        self.done = threading.Lock()
        self.done.acquire()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.settled = False
        self.task: asyncio.Task[None] | None = None
        self.cancel_cause: str | None = None


def create_task_in_context(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None], call: Call[Any]
) -> asyncio.Task[None]:
    """Create ``coro``'s task on ``loop`` under the caller's copied context; record it."""
    task = loop.create_task(coro, context=call.context)
    call.task = task
    return task


async def capture_outcome(call: Call[T], coro: Coroutine[Any, Any, T], release: bool) -> None:
    """Await ``coro`` on the current loop and store its result or exception in ``call``.

    Runs on the loop thread. Catches everything, ``KeyboardInterrupt`` and
    ``CancelledError`` included, so the exact exception object reaches the caller and
    the loop itself is never torn down by the user's error.
    """
    __tracebackhide__ = True
    try:
        call.result = await coro
    except BaseException as exc:
        call.error = exc
    finally:
        call.settled = True
        if release:
            release_caller(call)


def release_caller(call: Call[Any]) -> None:
    """Wake the thread waiting for ``call``; harmless if it was woken already."""
    try:
        call.done.release()
    except RuntimeError:
        pass  # already released, e.g. LoopThread.close() gave up on this call


def cancel_if_running(call: Call[Any]) -> None:
    """Cancel the call's task unless its coroutine already finished. Runs on the loop."""
    if not call.settled and call.task is not None:
        call.task.cancel()


def _acquire_by(
    lock: threading.Lock, deadline: float | None, interrupted: threading.Event | None = None
) -> bool:
    """Wait for ``lock`` until ``deadline`` (monotonic), in short slices.

    ``interrupted`` (set by a kernel interrupt aimed at a thread other than the main
    one) turns into ``KeyboardInterrupt`` here, within one slice.
    """
    __tracebackhide__ = True
    while True:
        if interrupted is not None and interrupted.is_set():
            interrupted.clear()
            raise KeyboardInterrupt
        if deadline is None:
            if lock.acquire(timeout=WAIT_SLICE):
                return True
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return lock.acquire(blocking=False)
        if lock.acquire(timeout=min(remaining, WAIT_SLICE)):
            return True


def _wait_for_cancelled(
    call: Call[Any],
    grace: float,
    what: str,
    subject: str = "the coroutine",
    where: str = "on its loop thread",
    escalate: Callable[[], None] | None = None,
) -> bool:
    """After cancellation was requested, wait up to ``grace`` seconds for the work to end.

    ``escalate`` (if given) is called once, halfway through the grace period, when the
    work has not ended by then: the second, stronger way of stopping it. Returns
    ``False`` (after logging a warning) when the work did not finish in time: it is then
    abandoned on its thread and the caller goes on. A second Ctrl-C during the grace
    period abandons it at once.
    """
    deadline = time.monotonic() + grace
    try:
        finished = False
        if escalate is not None:
            finished = _acquire_by(call.done, time.monotonic() + grace / 2)
            if not finished:
                escalate()
        if not finished:
            finished = _acquire_by(call.done, deadline)
    except KeyboardInterrupt:
        finished = False
    if not finished:
        logger.warning(
            "asyncbridge_ext: %s did not finish within %.1f s of being cancelled (%s); it was "
            "abandoned and may still be running %s, so its finally blocks have not run yet",
            subject,
            grace,
            what,
            where,
        )
        ACTIVITY.abandon(f"{subject} {where}, cancelled after {what}", lambda: not call.settled)
    return finished


def wait_for_outcome(
    call: Call[T],
    timeout: float | None,
    grace: float,
    request_cancel: Callable[[], None],
    hand_over: Callable[[], None] | None = None,
    *,
    subject: str = "the coroutine",
    where: str = "on its loop thread",
    escalate: Callable[[], None] | None = None,
) -> T:
    """Block the calling thread until ``call`` settles; return its result or raise.

    ``hand_over`` (if given) starts the call on its loop thread; it runs inside the
    same ``try`` as the wait, so a Ctrl-C that lands while a new worker thread starts
    (the coroutine may already be running on it) still cancels the coroutine.

    Timeout: cancel the coroutine, wait up to ``grace`` seconds for its ``finally``
    blocks, then raise ``TimeoutError``. ``KeyboardInterrupt`` while waiting: the same,
    then re-raise ``KeyboardInterrupt``. The caller never waits longer than
    ``timeout + grace`` (or ``grace`` after an interrupt).

    Off the main thread (an ipykernel 7 subshell) no SIGINT arrives; the wait is
    registered with :data:`~asyncbridge_ext.core.interrupts.INTERRUPTS` instead, so an
    interrupt delivered through it raises ``KeyboardInterrupt`` here within one slice.

    ``subject`` and ``where`` name the work and its thread in messages; ``escalate``
    is the second way to stop it (see :func:`_wait_for_cancelled`). Besides
    ``CancelledError``, a :class:`~asyncbridge_ext.core._stop.StopRequested` that
    the work raised because it was stopped is not reported as the timeout's cause.
    """
    __tracebackhide__ = True
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        if threading.current_thread() is threading.main_thread():
            if hand_over is not None:
                hand_over()
            finished = _acquire_by(call.done, deadline)
        else:  # no signal reaches this thread: let the extension's SIGINT handling in
            interrupted = threading.Event()
            with INTERRUPTS.target(interrupted.set):
                if hand_over is not None:
                    hand_over()
                finished = _acquire_by(call.done, deadline, interrupted)
    except KeyboardInterrupt:
        ACTIVITY.count("interrupt")
        call.cancel_cause = "interrupt"
        request_cancel()
        _wait_for_cancelled(call, grace, "KeyboardInterrupt", subject, where, escalate)
        raise
    if not finished:
        ACTIVITY.count("timeout")
        call.cancel_cause = "timeout"
        request_cancel()
        ran_finally = _wait_for_cancelled(
            call, grace, f"timeout of {timeout} s", subject, where, escalate
        )
        cause = call.error
        call.error = None
        if isinstance(cause, (asyncio.CancelledError, StopRequested)):
            cause = None
        message = f"{subject} did not finish within {timeout} s; it was cancelled" + (
            " and its finally blocks ran" if ran_finally else " but did not stop in time"
        )
        raise CallTimeoutError(message) from cause
    if call.cancel_cause == "close" and isinstance(call.error, asyncio.CancelledError):
        call.error = None
        raise RuntimeError(
            "the LoopThread was closed while this call was waiting; its coroutine was "
            "cancelled. Close the LoopThread only after its callers are done."
        )
    return take_outcome(call)


def take_outcome(call: Call[T]) -> T:
    """Return the stored result or raise the stored exception (the very same object)."""
    __tracebackhide__ = True
    error = call.error
    if error is None:
        return call.result  # type: ignore[return-value]
    call.error = None  # break the cycle exception -> traceback -> frame -> call
    try:
        raise error
    finally:
        del error
