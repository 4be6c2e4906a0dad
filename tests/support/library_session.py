"""A fake SDK made of asyncio and threads, as Playwright's sync API or ib_async drive theirs.

``Session()`` keeps an event loop in thread-local state (``asyncio.set_event_loop``) with
a background "connection" task that beats while the loop runs. Its sync methods drive
the loop with ``loop.run_until_complete(...)``, so the connection only runs during a
call, and the session is usable only while that task is alive. Used by the stop tests,
in process and (as source, exec'd in a ``%%in_thread`` cell) in real kernels.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any


class Session:
    def __init__(self) -> None:
        self.thread = threading.current_thread()
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.beats = 0
        self.waits_cleaned_up = 0
        self.connection = self.loop.create_task(self._connection())

    async def _connection(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            self.beats += 1

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run one request to completion: here, the loop runs until the request is done."""
        return self.loop.run_until_complete(coro)

    def wait(self, seconds: float, started: threading.Event | None = None) -> None:
        """Like ``page.wait_for_timeout``: a call the caller may interrupt."""

        async def waiting() -> None:
            try:
                if started is not None:
                    started.set()
                print("waiting", flush=True)
                await asyncio.sleep(seconds)
            finally:
                self.waits_cleaned_up += 1

        self._call(waiting())

    def ping(self) -> str:
        """A call that works only while the connection task is alive and beating."""

        async def pinging() -> str:
            before = self.beats
            while self.beats < before + 2:
                await asyncio.sleep(0.005)
            return "pong"

        if self.connection.done():
            raise ConnectionError("the session's connection task has ended")
        return str(self._call(pinging()))

    def close(self) -> None:
        self.connection.cancel()
        self.loop.run_until_complete(asyncio.gather(self.connection, return_exceptions=True))
        self.loop.close()


class DispatcherSession(Session):
    """Playwright's shape: a call is a task, and the loop runs *until the connection ends*.

    Each sync call makes a task for the request, then drives the loop with
    ``loop.run_until_complete(connection)``, stopping it once the request is done; so
    what ``run_until_complete`` waits for is the library's connection, not the call.
    """

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        request = self.loop.create_task(coro)
        request.add_done_callback(lambda _: self.loop.stop())
        while not request.done():
            try:
                self.loop.run_until_complete(self.connection)
            except RuntimeError as exc:  # the loop stopped: the request is done
                if "stopped before Future completed" not in str(exc):
                    raise
        return request.result()
