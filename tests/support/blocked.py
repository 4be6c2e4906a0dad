"""A coroutine that never ends on its own, for the tests that cancel leftovers."""

from __future__ import annotations

import asyncio
import threading


class Blocked:
    """A coroutine that waits forever and records that its ``finally`` ran."""

    def __init__(self) -> None:
        self.finally_ran = threading.Event()

    async def wait_forever(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            self.finally_ran.set()
