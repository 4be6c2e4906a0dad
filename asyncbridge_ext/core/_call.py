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

from .activity import ACTIVITY
from .interrupts import INTERRUPTS

T = TypeVar("T")

logger = logging.getLogger(__name__)

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


def wait_bounded(
    wait: Callable[[float | None], bool],
    timeout: float | None,
    grace: float,
    request_cancel: Callable[[str], object],
    still_running: Callable[[], bool],
    *,
    subject: str,
    where: str,
    wait_cancelled: Callable[[float], bool] | None = None,
    escalate: Callable[[], None] | None = None,
    cause: Callable[[], BaseException | None] | None = None,
) -> None:
    """The one bounded wait: return once the work ended, or stop it and raise.

    Runs on the caller's thread. ``wait(deadline)`` blocks until the work has ended or
    the monotonic ``deadline`` (``None``: none) has passed, and says whether it ended;
    ``wait_cancelled(deadline)`` does the same after cancellation (default: ``wait``).

    On ``KeyboardInterrupt`` while waiting (counted as ``interrupt``), or at the
    timeout (counted as ``timeout``): ``request_cancel(reason)`` is called with
    ``"interrupt"`` or ``"timeout"``; ``escalate`` (if given) once, halfway through the
    ``grace`` seconds that the work then has to end. Work that has not ended by then is
    abandoned with a logged warning and listed in :data:`~.activity.ACTIVITY` while
    ``still_running()``; a second Ctrl-C abandons it at once. Then
    ``KeyboardInterrupt`` is re-raised, or :data:`CallTimeoutError` raised from
    ``cause()``. ``subject`` and ``where`` name the work and its thread in messages.
    """
    __tracebackhide__ = True
    deadline = None if timeout is None else time.monotonic() + timeout
    interrupt: KeyboardInterrupt | None = None
    try:
        if wait(deadline):
            return
        reason, what = "timeout", f"timeout of {timeout} s"
    except KeyboardInterrupt as exc:
        interrupt = exc
        reason, what = "interrupt", "KeyboardInterrupt"
    ACTIVITY.count(reason)
    request_cancel(reason)
    ended = wait if wait_cancelled is None else wait_cancelled
    deadline = time.monotonic() + grace
    try:
        finished = False
        if escalate is not None:
            finished = ended(time.monotonic() + grace / 2)
            if not finished:
                escalate()
        if not finished:
            finished = ended(deadline)
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
        ACTIVITY.abandon(f"{subject} {where}, cancelled after {what}", still_running)
    if interrupt is not None:
        try:
            raise interrupt
        finally:
            del interrupt
    message = f"{subject} did not finish within {timeout} s; it was cancelled" + (
        " and its finally blocks ran" if finished else " but did not stop in time"
    )
    raise CallTimeoutError(message) from (cause() if cause is not None else None)


def wait_for_outcome(
    call: Call[T],
    timeout: float | None,
    grace: float,
    request_cancel: Callable[[], None],
    hand_over: Callable[[], None] | None = None,
    *,
    subject: str,
    where: str,
    escalate: Callable[[], None] | None = None,
    quiet_causes: tuple[type[BaseException], ...] = (asyncio.CancelledError,),
) -> T:
    """Block the calling thread until ``call`` settles; return its result or raise.

    :func:`wait_bounded` on the call's lock, in short slices. ``hand_over`` (if given)
    starts the call on its loop thread; it runs inside the wait, so a Ctrl-C that lands
    while a new worker thread starts (the coroutine may already be running on it) still
    cancels the coroutine. ``call.cancel_cause`` says why it was cancelled.

    Timeout: cancel the coroutine, wait up to ``grace`` seconds for its ``finally``
    blocks, then raise ``TimeoutError`` from the work's exception, unless that is one of
    ``quiet_causes`` (what stopped work raises because it was stopped).
    ``KeyboardInterrupt`` while waiting: the same, then re-raise ``KeyboardInterrupt``.
    The caller never waits longer than ``timeout + grace`` (or ``grace`` after an
    interrupt).

    Off the main thread (an ipykernel 7 subshell) no SIGINT arrives; the wait is
    registered with :data:`~asyncbridge_ext.core.interrupts.INTERRUPTS` instead, so an
    interrupt delivered through it raises ``KeyboardInterrupt`` here within one slice.
    """
    __tracebackhide__ = True

    def wait(deadline: float | None) -> bool:
        if threading.current_thread() is threading.main_thread():
            if hand_over is not None:
                hand_over()
            return _acquire_by(call.done, deadline)
        interrupted = threading.Event()  # no signal reaches this thread: let one in
        with INTERRUPTS.target(interrupted.set):
            if hand_over is not None:
                hand_over()
            return _acquire_by(call.done, deadline, interrupted)

    def cancel(reason: str) -> None:
        call.cancel_cause = reason
        request_cancel()

    def cause() -> BaseException | None:
        error, call.error = call.error, None
        return None if isinstance(error, quiet_causes) else error

    wait_bounded(
        wait,
        timeout,
        grace,
        cancel,
        lambda: not call.settled,
        subject=subject,
        where=where,
        wait_cancelled=lambda deadline: _acquire_by(call.done, deadline),
        escalate=escalate,
        cause=cause,
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
