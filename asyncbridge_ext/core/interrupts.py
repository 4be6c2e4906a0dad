"""Interrupts for bridged work running off the main thread (ipykernel 7 subshells).

A kernel interrupt is SIGINT, and Python runs signal handlers only in the main thread,
so a bridged call waiting in another thread (a subshell's cell) never sees it. Each
such call registers what to do on interrupt with :data:`INTERRUPTS` while it runs; the
extension's SIGINT handling (main thread) calls :meth:`Interrupts.interrupt_off_main`,
which runs those callbacks. Calls on the main thread register nothing: SIGINT raises
``KeyboardInterrupt`` there by itself. No IPython here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["INTERRUPTS", "Interrupts"]

logger = logging.getLogger(__name__)


class Interrupts:
    """Per-thread interrupt callbacks of bridged work (use :data:`INTERRUPTS`)."""

    def __init__(self) -> None:
        # Re-entrant: interrupt_off_main runs inside a SIGINT handler on the main thread,
        # which may have interrupted that same thread while it held the lock (a report
        # reading waiting_threads); a plain Lock would deadlock the kernel there.
        self._lock = threading.RLock()
        self._targets: dict[int, Callable[[], None]] = {}

    @contextmanager
    def target(self, on_interrupt: Callable[[], None]) -> Iterator[None]:
        """While in the block, a kernel interrupt calls ``on_interrupt`` (off the main thread).

        ``on_interrupt`` runs on the main thread, inside a signal handler: it must only
        set a flag or schedule something thread-safely (``call_soon_threadsafe``), and
        the blocked thread then raises ``KeyboardInterrupt`` itself. Nested blocks on
        one thread: the innermost wins, and the outer one is back when it ends. On the
        main thread this does nothing.
        """
        if threading.current_thread() is threading.main_thread():
            yield
            return
        ident = threading.get_ident()
        with self._lock:
            previous = self._targets.get(ident)
            self._targets[ident] = on_interrupt
        try:
            yield
        finally:
            with self._lock:
                if previous is None:
                    self._targets.pop(ident, None)
                else:
                    self._targets[ident] = previous

    def interrupt_off_main(self) -> int:
        """Call every registered callback; return how many. Called on the main thread."""
        with self._lock:
            targets = list(self._targets.values())
        for on_interrupt in targets:
            try:
                on_interrupt()
            except Exception:  # a failing callback must not stop the others
                logger.exception("asyncbridge_ext: an interrupt callback failed")
        if targets:
            logger.debug("interrupt sent to %d bridged call(s) off the main thread", len(targets))
        return len(targets)

    def waiting_threads(self) -> int:
        """How many threads other than the main one are in interruptible bridged work now."""
        with self._lock:
            return len(self._targets)


#: The process-wide registry.
INTERRUPTS = Interrupts()
