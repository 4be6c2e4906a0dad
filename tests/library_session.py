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

        self.loop.run_until_complete(waiting())

    def ping(self) -> str:
        """A call that works only while the connection task is alive and beating."""

        async def pinging() -> str:
            before = self.beats
            while self.beats < before + 2:
                if self.connection.done():
                    raise ConnectionError("the session's connection task has ended")
                await asyncio.sleep(0.005)
            return "pong"

        return self.loop.run_until_complete(pinging())

    def close(self) -> None:
        self.connection.cancel()
        self.loop.run_until_complete(asyncio.gather(self.connection, return_exceptions=True))
        self.loop.close()
