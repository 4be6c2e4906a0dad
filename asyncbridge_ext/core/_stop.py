"""Stop a function that runs on a worker thread, for :func:`~asyncbridge_ext.run_in_thread`.

Python cannot kill a thread; this module does the two things that can stop the code
running in one. Both are requested from the caller's thread (after a timeout or a
Ctrl-C) and act on the worker thread:

1. :meth:`Stopper.stop` first looks for the asyncio event loops running in the worker
   (the function, or a library, called ``asyncio.run``, ``loop.run_until_complete`` or
   ``run_forever``) and cancels what this call started there, thread-safely through
   ``call_soon_threadsafe``; the ``finally`` blocks run on that loop as usual. On a
   loop the thread kept from earlier calls (a library's loop, noted by
   :meth:`Stopper.begin`), that is the tasks made since the call began: the library's
   own older tasks (a connection, a heartbeat) stay alive, as after Ctrl-C in a script,
   so its session stays usable. On a loop of the call's own, it is the future each
   ``run_until_complete`` on the stack waits for (the main task of ``asyncio.run`` and
   ``asyncio.Runner``, which then shut their loop down as on Ctrl-C), or, with none
   (``run_forever``), all its tasks. With no loop there, it goes on to step 2 at once.
2. :meth:`Stopper.raise_in_function` makes the worker raise :class:`StopRequested` at
   its next Python bytecode (``PyThreadState_SetAsyncExc``), and wakes the loops
   running there so that one idle in its selector runs that bytecode at once. The
   caller's wait does this halfway through the grace period if step 1 was not enough.
   Code blocked inside one C call (``time.sleep``, a lock or ``Event.wait``, a socket
   read) only sees the exception once that call returns.

Delivery is race-free: the exception is sent only while the function runs, at most once
per call; :meth:`Stopper.end` (on the worker, right after the function ended) takes back
one that was sent but has not landed yet, and the worker catches one that lands between
the function's end and that point, so it never hits the next call. No lock is held on the
worker where it can land (see :class:`Stopper`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, cast

from .loops import cancel_all_tasks, cancel_new_tasks, kept_loops, running_loops, waited_futures

__all__ = ["StopRequested", "Stopper"]

logger = logging.getLogger(__name__)


class StopRequested(KeyboardInterrupt):
    """Raised inside a function run by ``run_in_thread`` when its caller stops it.

    A ``KeyboardInterrupt``, so code that cleans up on Ctrl-C cleans up here too, and
    an asyncio loop it lands in stops instead of storing it in a task.
    """


def _set_async_exc(ident: int, exc_type: type[BaseException] | None) -> int:
    """Schedule ``exc_type`` in thread ``ident`` (``None``: drop a pending one)."""
    import ctypes  # only when work is stopped: it costs a few ms at import

    pythonapi = getattr(ctypes, "pythonapi", None)
    if pythonapi is None:  # not CPython: no way to raise in another thread
        return 0
    # ctypes passes None as a NULL pointer, which is what "drop a pending one" takes.
    exc = None if exc_type is None else ctypes.py_object(exc_type)
    return int(pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), exc))


class Stopper:
    """Stops one call of a function on one worker thread.

    The worker calls :meth:`begin` before the function and :meth:`end` after it; any
    thread may call :meth:`stop` and :meth:`raise_in_function` at any time, before,
    during or after the call.

    The worker never holds a lock of ours where the exception can land: from Python 3.14
    it can land right after a ``with`` statement acquired its lock, before the block that
    releases it, and that left the lock held for ever (measured: the worker and the
    caller then waited on it for good). One permission to raise per call, a lock taken
    without waiting, decides instead: the caller's thread takes it to raise, or
    :meth:`end` takes it so that nothing is raised any more.
    """

    __slots__ = (
        "_before", "_ident", "_lock", "_may_raise", "_running", "_sent", "_stop_requested",
    )  # fmt: skip

    def __init__(self) -> None:
        self._lock = threading.Lock()  # begin() against stop(): only before any raise
        self._may_raise = threading.Lock()  # released by begin(); taken once, never given back
        self._may_raise.acquire()
        self._sent = threading.Lock()  # released once the exception has been sent
        self._sent.acquire()
        self._ident: int | None = None
        self._running = False
        self._stop_requested = False
        #: The tasks of the loops this thread kept from earlier calls, as the call began.
        self._before: dict[asyncio.AbstractEventLoop, set[asyncio.Task[Any]]] = {}

    def begin(self) -> bool:
        """On the worker: the function is about to run. ``False``: it was stopped already.

        Notes the tasks of the loops a library keeps in this thread from call to call
        (its running-loop marker, its event loop), so that a stop cancels only what
        this call started.
        """
        try:
            before = {loop: set(asyncio.all_tasks(loop)) for loop in kept_loops()}
        except Exception:  # a stop then treats those loops as the call's own
            logger.debug("could not note the tasks of this thread's loops", exc_info=True)
            before = {}
        with self._lock:
            if self._stop_requested:
                return False
            self._before = before
            self._ident = threading.get_ident()
            self._running = True
        self._may_raise.release()  # from here on the caller's thread may raise in it
        return True

    def end(self, landed: bool = False) -> None:
        """On the worker, after the function: no more exceptions; drop one not yet landed.

        One that lands in here anyway propagates; ``_run_job`` catches it and calls
        ``end(landed=True)``, which returns at once (at most one is ever sent).
        """
        self._running = False
        self._before = {}
        if landed or self._ident is None or self._may_raise.acquire(blocking=False):
            return  # landed already, never started, or nothing can be raised any more
        # The caller's thread took the permission: it sends the exception now, if it has
        # not yet (bounded: a Ctrl-C in that thread between the two steps sends nothing).
        if not self._sent.acquire(timeout=_SENT_TIMEOUT):
            logger.debug("no StopRequested was sent to thread %d after all", self._ident)
        _set_async_exc(self._ident, None)

    def stop(self) -> None:
        """Cancel what the call started on the loops running in it, or else raise in it.

        On a loop the thread kept from earlier calls: the tasks made since the call
        began (a library's connection task, older, stays). On a loop of the call's
        own: the futures its ``run_until_complete`` frames wait for, or all its tasks.
        """
        with self._lock:
            self._stop_requested = True
            ident = self._ident if self._running else None
            before = self._before
        if ident is None:
            return  # not started (it will not start) or already ended
        loops = _loops_in(ident)
        waited = _waited_in(ident) if loops else []
        for loop in loops:
            if loop in before:
                _call_soon(loop, cancel_new_tasks, loop, before[loop])
                continue
            futures = [future for owner, future in waited if owner is loop]
            for future in futures:
                _call_soon(loop, _cancel, future)
            if not futures:
                _call_soon(loop, cancel_all_tasks, loop)
        if loops:
            logger.debug("stopping what runs on %d loop(s) in thread %d", len(loops), ident)
        else:
            self.raise_in_function()

    def raise_in_function(self) -> None:
        """Make the worker raise :class:`StopRequested` at its next bytecode (once).

        A loop idle in its selector runs no bytecode until something wakes it, so the
        loops running there are woken too: the exception then lands at once, and stops
        even a ``run_forever()`` that has no task to cancel.
        """
        if not self._may_raise.acquire(blocking=False):
            return  # not started, ended, or raised already
        ident = cast(int, self._ident)  # set by begin() before it gave the permission
        try:
            _set_async_exc(ident, StopRequested)
        finally:
            self._sent.release()
        for loop in _loops_in(ident):
            _call_soon(loop, _do_nothing)
        logger.debug("raised StopRequested in thread %d", ident)


#: How long :meth:`Stopper.end` waits for an exception the caller's thread is sending.
_SENT_TIMEOUT = 5.0


def _loops_in(ident: int) -> list[asyncio.AbstractEventLoop]:
    try:
        return running_loops(ident)
    except Exception:  # reading another thread's frames must not stop the stopping
        logger.debug("could not look for loops in thread %d", ident, exc_info=True)
        return []


def _waited_in(ident: int) -> list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]]:
    try:
        return waited_futures(ident)
    except Exception:  # as in _loops_in
        logger.debug("could not look for awaited futures in thread %d", ident, exc_info=True)
        return []


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # closed since we looked
        pass


def _cancel(future: asyncio.Future[Any]) -> None:
    future.cancel()


def _do_nothing() -> None:
    pass
