"""LoopThread: one persistent event loop on one daemon thread, for many fast calls."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Awaitable, Coroutine
from types import TracebackType
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

__all__ = ["LoopThread"]

T = TypeVar("T")

#: How timeout errors, warnings and ``%asyncbridge`` name a call's work and where it runs.
SUBJECT, WHERE = "the coroutine", "on its loop thread"

logger = logging.getLogger(__name__)

_names = itertools.count(1)

#: How long the constructor waits for the new thread to start its loop.
STARTUP_SECONDS = 10.0


class LoopThread:
    """A persistent event loop running on its own daemon thread.

    Where it runs: the constructor creates one event loop and starts one daemon thread
    (named ``asyncbridge-loop-N``) that runs it until :meth:`close`. Every :meth:`run`
    call schedules its coroutine as a task on that same loop, so state bound to a loop
    (a client session, a connection pool) can be reused across calls. Calls from many
    threads at once are safe; their coroutines run concurrently on the one loop.

    What the caller does meanwhile: it blocks in :meth:`run`, in short slices, until
    its coroutine finishes. Calling :meth:`run` from the loop's own thread would deadlock
    and raises ``RuntimeError`` instead (``await`` the coroutine there).

    Timeout and Ctrl-C behave as in :func:`~asyncbridge_ext.run_coroutine_in_new_loop`:
    the coroutine is cancelled and gets ``cancel_grace`` seconds for its ``finally``
    blocks before ``TimeoutError`` is raised or ``KeyboardInterrupt`` re-raised. Each
    coroutine runs under a copy of its caller's :mod:`contextvars` context.

    Cleanup: :meth:`close` (idempotent; also on leaving a ``with`` block) cancels what is
    still running, lets ``finally`` blocks run, finalizes async generators, shuts down
    the default executor, stops and closes the loop and joins the thread.

    Example::

        with LoopThread() as runner:
            rows = [runner.run(fetch(i)) for i in range(1000)]
    """

    def __init__(self, *, cancel_grace: float = DEFAULT_CANCEL_GRACE) -> None:
        self._grace = check_grace(cancel_grace)
        self._lock = threading.Lock()
        self._closed = False
        self._calls: set[Call[Any]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run_loop, name=f"asyncbridge-loop-{next(_names)}", daemon=True
        )
        started = threading.Event()
        self._loop.call_soon(started.set)
        self._thread.start()
        if not started.wait(STARTUP_SECONDS):  # pragma: no cover - a machine in trouble
            self._loop.call_soon_threadsafe(self._loop.stop)
            raise RuntimeError(f"LoopThread: {self._thread.name} did not start its loop")
        logger.debug("started %s", self._thread.name)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop this thread runs (for ``asyncio.run_coroutine_threadsafe`` and the like)."""
        return self._loop

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def _run_loop(self) -> None:
        """Body of the loop thread: run the loop until :meth:`close` stops it, then close it."""
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()
            logger.debug("closed the loop of %s", threading.current_thread().name)

    def run(self, awaitable: Awaitable[T], *, timeout: float | None = None) -> T:
        """Run ``awaitable`` on this thread's loop; block the calling thread for the result.

        Raises ``RuntimeError`` after :meth:`close`, or when called from the loop's own
        thread; otherwise as :func:`~asyncbridge_ext.run_coroutine_in_new_loop`.
        """
        __tracebackhide__ = True
        try:
            timeout = check_timeout(timeout)
            if threading.current_thread() is self._thread:
                raise RuntimeError(
                    "LoopThread.run() was called from the LoopThread's own loop thread, where "
                    "blocking would deadlock. Inside a coroutine on that loop, use "
                    "`await coro` instead of `runner.run(coro)`."
                )
            coro = as_coroutine(awaitable, caller="LoopThread.run", loop=self._loop)
            call: Call[T] = Call()
            with self._lock:
                if self._closed:
                    raise RuntimeError(
                        "LoopThread.run() was called after close(); create a new LoopThread, "
                        "or keep calls inside its `with LoopThread() as runner:` block."
                    )
                self._calls.add(call)
        except BaseException:
            close_quietly(awaitable)
            raise

        def hand_over() -> None:
            try:
                self._loop.call_soon_threadsafe(self._start, call, coro)
            except RuntimeError:  # the loop closed after our check above
                coro.close()
                raise RuntimeError(
                    "LoopThread.run() was called while the LoopThread was closing; create a "
                    "new LoopThread for further calls."
                ) from None

        try:
            # Scheduled inside the wait's try, so a Ctrl-C right after scheduling still
            # cancels the coroutine instead of leaving it running unobserved.
            return wait_for_outcome(
                call,
                timeout,
                self._grace,
                lambda: self._cancel(call),
                hand_over,
                subject=SUBJECT,
                where=WHERE,
            )
        except asyncio.CancelledError:
            if call.cancel_cause != "close":
                raise
            raise RuntimeError(
                "the LoopThread was closed while this call was waiting; its coroutine was "
                "cancelled. Close the LoopThread only after its callers are done."
            ) from None
        finally:
            with self._lock:
                self._calls.discard(call)

    def _start(self, call: Call[T], coro: Coroutine[Any, Any, T]) -> None:
        """Create the call's task. Runs on the loop thread."""
        create_task_in_context(self._loop, capture_outcome(call, coro, True), call)

    def _cancel(self, call: Call[Any]) -> None:
        """Ask the loop to cancel ``call``. Runs on the caller's thread."""
        try:
            self._loop.call_soon_threadsafe(cancel_if_running, call)
        except RuntimeError:
            pass  # the loop is closed: close() already cancelled the call

    def close(self) -> None:
        """Cancel pending coroutines, let their ``finally`` blocks run, stop and join.

        Idempotent and safe from any thread except the loop's own. Returns after the
        loop is closed and the thread joined, or after ``cancel_grace`` plus a few seconds
        if a coroutine blocks the loop thread (then the thread is left behind, logged).
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError(
                "LoopThread.close() was called from its own loop thread, which cannot join "
                "itself. Call close() from another thread, e.g. the one that created it."
            )
        with self._lock:
            first_close = not self._closed
            self._closed = True
            for call in self._calls:
                call.cancel_cause = "close"
        if first_close:
            try:
                asyncio.run_coroutine_threadsafe(self._shut_down(), self._loop)
            except RuntimeError:
                pass  # the loop already stopped
        self._thread.join(self._grace + 5.0)
        if self._thread.is_alive():
            logger.warning(
                "asyncbridge_ext: %s did not stop within %.1f s (a coroutine is blocking its "
                "loop); it was left running as a daemon thread",
                self._thread.name,
                self._grace + 5.0,
            )
        with self._lock:
            unsettled = [call for call in self._calls if not call.settled]
        for call in unsettled:  # wake callers whose coroutine will never report back
            call.error = asyncio.CancelledError()
            try:
                call.done.release()
            except RuntimeError:
                pass

    async def _shut_down(self) -> None:
        """Runs on the loop: cancel every other task, tidy up, then stop the loop."""
        try:
            await tidy_loop_before_close(self._grace, f"the loop of {self._thread.name}")
        except Exception:
            logger.exception("asyncbridge_ext: error while closing a LoopThread")
        finally:
            self._loop.stop()

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running"
        return f"<LoopThread {self._thread.name} {state}>"
