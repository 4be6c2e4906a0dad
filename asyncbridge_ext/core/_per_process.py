"""One lazily made object per process, made anew in a child that ``os.fork`` created.

The worker pools keep threads; a forked child inherits the pool objects but none of
their threads, so a pool carried over would promise workers that do not exist there and
calls would hang. :class:`PerProcess` hands out the pool of the current process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["PerProcess"]

T = TypeVar("T")


class PerProcess(Generic[T]):
    """Holds one ``factory()`` result per process; nothing is made until :meth:`get`."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._made: tuple[int, T] | None = None

    def get(self) -> T:
        """The object of this process, made on first use here. Thread-safe."""
        made = self._made
        if made is None or made[0] != os.getpid():
            with self._lock:
                made = self._made
                if made is None or made[0] != os.getpid():
                    made = self._made = (os.getpid(), self._factory())
        return made[1]

    def peek(self) -> T | None:
        """The object of this process if it was made, else None (for reports)."""
        made = self._made
        return made[1] if made is not None and made[0] == os.getpid() else None
