"""Call sync code on a worker thread where no event loop runs: :func:`run_in_thread`.

For libraries that refuse to work while an event loop runs in the calling thread (a
Jupyter cell always has one): ``anyio.run``, asgiref's ``async_to_sync``, gql's sync
``Client.execute``, openai-agents' ``Runner.run_sync``. Standard library only, no IPython.
The threads live in :mod:`asyncbridge_ext.core._pools` (the pool shape shared with
:func:`~asyncbridge_ext.run_coroutine_in_new_loop`); stopping the work is
:mod:`asyncbridge_ext.core._stop`; the caller's wait is the same as
:func:`~asyncbridge_ext.run_coroutine_in_new_loop`'s.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from ._awaitables import check_grace, check_timeout, close_quietly
from ._call import Call, release_caller, wait_for_outcome
from ._pools import Job, thread_pool
from ._stop import Stopper, StopRequested
from .names import name_of

__all__ = ["DEFAULT_THREAD_CANCEL_GRACE", "run_in_thread"]

T = TypeVar("T")

#: Default for how long stopped work may take to end before it is abandoned.
DEFAULT_THREAD_CANCEL_GRACE = 2.0


def run_in_thread(
    func: Callable[..., T],
    /,
    *args: Any,
    timeout: float | None = None,
    cancel_grace: float = DEFAULT_THREAD_CANCEL_GRACE,
    **kwargs: Any,
) -> T:
    """Call ``func(*args, **kwargs)`` on a loop-free worker thread and return its result.

    Which thread: a worker thread named ``asyncbridge-thread-N`` that sets and runs no
    event loop of its own, so ``asyncio.run``, ``anyio.run`` and libraries that refuse
    a running loop work there, whether or not a loop runs in the caller's thread (a
    Jupyter cell's does; it is not touched and does not advance meanwhile).
    Consecutive calls run on the same worker while it is free, so thread-local state
    persists from call to call: a default event loop set with
    ``asyncio.set_event_loop``, an HTTP session kept in a ``threading.local``. A call
    made while that worker is busy (``run_in_thread`` called from inside ``func``, from
    another thread, from a subshell) runs on another worker; it never waits for the
    busy one, so it never deadlocks. Extra workers exit after being idle a while.

    ``func`` runs under a copy of the caller's :mod:`contextvars` context, so context
    variables set by the caller are visible, and in a Jupyter kernel its ``print()``
    output lands in the calling cell.

    What the caller does meanwhile: it blocks on a lock, in short slices, so Ctrl-C
    (and a kernel interrupt, in the main shell or a subshell) reaches it at once.

    Result and errors: the return value is returned; an exception raised by ``func``
    is raised in the caller as the very same object, with ``func``'s frames in its
    traceback (the bridge frames are hidden from IPython with ``__tracebackhide__``).

    Timeout and Ctrl-C stop the work, not only the wait. After ``timeout`` seconds, or
    on ``KeyboardInterrupt`` in the caller:

    - on an asyncio loop running in the worker (``func`` called ``asyncio.run``,
      ``run_until_complete`` or ``run_forever``, directly or through a library), what
      this call started is cancelled and its ``finally`` blocks run on that loop. On a
      loop the thread kept from earlier calls (a library's, in ``set_event_loop`` or
      left as the running loop), that is the tasks made since the call began, so the
      library's own older tasks (a connection, a heartbeat) stay alive and its session
      stays usable, as after Ctrl-C in a script; on a loop of the call's own, what its
      ``run_until_complete`` waits for (``asyncio.run``'s main task: it then shuts
      its loop down as on Ctrl-C), or all its tasks if it runs forever;
    - plain Python code (or a loop whose tasks do not stop within half of
      ``cancel_grace``) gets a ``KeyboardInterrupt`` subclass raised at its next
      bytecode (CPython's ``PyThreadState_SetAsyncExc``), so its ``finally`` and
      ``except KeyboardInterrupt`` blocks run; like Ctrl-C in a script, it may land
      anywhere in that code;
    - code blocked inside one C call (``time.sleep``, ``threading.Event().wait()``, a
      lock, a socket read with no timeout) cannot be interrupted: it only sees the
      exception once that call returns. Neither can work ``func`` handed to other
      threads (an executor; asgiref's ``async_to_sync``, whose loop runs in a thread
      of its own while the worker waits for it in a C call). If ``func`` has not
      ended within ``cancel_grace`` seconds it is abandoned with a logged warning (and
      listed by ``%asyncbridge``); it goes on running in its thread, which gets no
      more work and exits when ``func`` returns. Thread-local state kept in that
      thread is then out of reach: the next call runs on another worker.

    Then the caller raises ``TimeoutError`` or re-raises ``KeyboardInterrupt``; it never
    waits longer than ``timeout + cancel_grace`` (``cancel_grace`` after a Ctrl-C, and a
    second Ctrl-C gives up at once).

    Cleanup: there is nothing to close. The worker thread is kept for the next call:
    the first worker is a daemon thread that stays, idle, for the life of the process
    (so its thread-local state does too); extra workers exit after 10 s without work.
    Whatever ``func`` leaves in its thread (a default event loop it set, a session) is
    the function's to close, as in any thread.

    ``timeout`` and ``cancel_grace`` are taken by ``run_in_thread`` itself; to pass
    arguments of those names to ``func``, use ``functools.partial``.

    Example::

        >>> import anyio
        >>> async def answer():
        ...     return 42
        >>> run_in_thread(anyio.run, answer)
        42

    Raises ``TypeError`` if ``func`` is not callable or is a coroutine function or
    coroutine (use :func:`~asyncbridge_ext.run_coroutine_in_new_loop` for those), and
    ``ValueError`` for a bad ``timeout``.
    """
    __tracebackhide__ = True
    try:
        _check_function(func)
        timeout = check_timeout(timeout)
        grace = check_grace(cancel_grace)
    except BaseException:
        close_quietly(func)
        raise
    job = FunctionJob(func, args, kwargs)
    pool = thread_pool()
    worker = pool.reserve()
    try:
        result: T = wait_for_outcome(
            job.call,
            timeout,
            grace,
            job.stop,
            lambda: pool.submit(worker, job),
            subject=_subject(func),
            where=f"on thread {worker.thread.name}",
            escalate=job.stopper.raise_in_function,
            quiet_causes=_QUIET_CAUSES,
        )
    finally:
        pool.after_call(worker, job)
    if inspect.iscoroutine(result):
        close_quietly(result)
        raise TypeError(
            f"run_in_thread() called {name_of(func)}, which returned a coroutine instead "
            "of running it. For async code use run_coroutine_in_new_loop(coro), or let "
            "the thread run it: run_in_thread(asyncio.run, coro)."
        )
    return result


#: What a stopped function raises because it was stopped: not reported as a timeout's cause.
_QUIET_CAUSES = (asyncio.CancelledError, StopRequested)


class FunctionJob(Job):
    """One function call handed to a worker of :func:`~._pools.thread_pool`."""

    __slots__ = ("args", "func", "kwargs", "stopper")

    def __init__(self, func: Callable[..., Any], args: Any, kwargs: Any) -> None:
        super().__init__(Call())  # copies the caller's contextvars context
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.stopper = Stopper()

    def stop(self) -> None:
        """On the caller's thread, after a timeout or Ctrl-C: stop the function.

        A job never handed over (a Ctrl-C landed in the hand-over) has nothing to stop
        and nothing to wait for: it is settled at once, so the caller does not wait out
        the grace period for a function that will never run.
        """
        if self.queued:
            self.stopper.stop()
        else:
            self.call.settled = True
            release_caller(self.call)

    def run(self) -> None:
        """Call the function under the caller's context; store its outcome in the call.

        Runs on the worker. A :class:`StopRequested` that lands after the function ended
        (before :meth:`Stopper.end` took it back) is caught here; at most one is ever
        sent per call, so the second :meth:`Stopper.end` returns at once.
        """
        __tracebackhide__ = True
        call = self.call
        try:
            try:
                if self.stopper.begin():
                    call.result = call.context.run(self.func, *self.args, **self.kwargs)
                else:
                    call.error = StopRequested()
            except BaseException as exc:
                call.error = exc
            self.stopper.end()
        except StopRequested:
            self.stopper.end(landed=True)


def _subject(func: object) -> str:
    """How messages name the work: ``the function fetch()`` or ``the callable X object``."""
    name = name_of(func)
    return f"the callable {name}" if name.endswith(" object") else f"the function {name}()"


def _check_function(func: object) -> None:
    """Raise a ``TypeError`` that says what to pass, for anything but a sync callable."""
    if inspect.iscoroutine(func):
        raise TypeError(
            f"run_in_thread() got a coroutine ({name_of(func)}), not a function. "
            "For async code use run_coroutine_in_new_loop(coro), or let the thread run "
            "it: run_in_thread(asyncio.run, coro)."
        )
    if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
        name = name_of(func)
        raise TypeError(
            f"run_in_thread() got the coroutine function {name}, which cannot be called "
            f"synchronously. Use run_coroutine_in_new_loop({name}(...)), or "
            f"run_in_thread(asyncio.run, {name}(...))."
        )
    if not callable(func):
        raise TypeError(
            f"run_in_thread() expects a function to call, got {type(func).__name__} "
            f"{func!r}. Pass the function and its arguments separately: "
            "run_in_thread(func, arg, key=value), not run_in_thread(func(arg, key=value))."
        )
