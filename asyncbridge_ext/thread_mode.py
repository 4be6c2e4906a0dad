"""Thread mode: send nested ``asyncio.run`` / ``run_until_complete`` calls to a fresh loop.

The alternative to :mod:`asyncbridge_ext.nest` that patches nothing of the nest kind:
asyncio keeps its C tasks and futures, and the kernel's loop stays as it is. Only two
entry points are wrapped, and only one case changes: a call made while an event loop
is running in the calling thread (which would raise "asyncio.run() cannot be called
from a running event loop" or "This event loop is already running") goes to
:func:`~asyncbridge_ext.run_coroutine_in_new_loop`, so the coroutine runs on a fresh
loop in a worker thread while the calling thread blocks. Every other call reaches the
original function untouched. :meth:`uninstall` puts the originals back.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

from .activity import ACTIVITY
from .core import run_coroutine_in_new_loop

__all__ = ["NestedRunRedirect"]

logger = logging.getLogger("asyncbridge_ext")


def _loop_running_here() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _NestedRunRedirect:
    """Install / uninstall the redirect (use the instance ``NestedRunRedirect``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._original_run: Callable[..., Any] | None = None
        self._original_run_until_complete: Callable[..., Any] | None = None

    @property
    def installed(self) -> bool:
        """True while our wrappers are in place."""
        return getattr(asyncio.run, "__asyncbridge_redirect__", False) is True

    def install(self) -> None:
        """Wrap ``asyncio.run`` and ``asyncio.BaseEventLoop.run_until_complete``. Idempotent."""
        with self._lock:
            if self.installed:
                return
            original_run = asyncio.run
            original_ruc = asyncio.BaseEventLoop.run_until_complete

            @functools.wraps(original_run)
            def run(main: Any, *args: Any, **kwargs: Any) -> Any:
                __tracebackhide__ = True
                if _loop_running_here() and inspect.isawaitable(main):
                    ACTIVITY.count("nested_run.worker")
                    return run_coroutine_in_new_loop(main)
                return original_run(main, *args, **kwargs)

            @functools.wraps(original_ruc)
            def run_until_complete(self: asyncio.BaseEventLoop, future: Any) -> Any:
                __tracebackhide__ = True
                if (
                    _loop_running_here()
                    and inspect.isawaitable(future)
                    and not asyncio.isfuture(future)
                ):
                    ACTIVITY.count("nested_run.worker")
                    return run_coroutine_in_new_loop(future)
                return original_ruc(self, future)

            run.__asyncbridge_redirect__ = True  # type: ignore[attr-defined]
            run_until_complete.__asyncbridge_redirect__ = True  # type: ignore[attr-defined]
            self._original_run = original_run
            self._original_run_until_complete = original_ruc
            asyncio.run = run
            asyncio.BaseEventLoop.run_until_complete = run_until_complete  # type: ignore[method-assign]
            logger.debug("thread mode installed: nested runs go to a fresh loop")

    def uninstall(self) -> None:
        """Put the original functions back (if ours are still the ones in place)."""
        with self._lock:
            if self._original_run is None or self._original_run_until_complete is None:
                return
            if getattr(asyncio.run, "__asyncbridge_redirect__", False):
                asyncio.run = self._original_run
            if getattr(asyncio.BaseEventLoop.run_until_complete, "__asyncbridge_redirect__", False):
                asyncio.BaseEventLoop.run_until_complete = (  # type: ignore[method-assign]
                    self._original_run_until_complete
                )
            self._original_run = self._original_run_until_complete = None
            logger.debug("thread mode uninstalled")


#: The process-wide redirect: ``NestedRunRedirect.install()`` / ``.uninstall()``.
NestedRunRedirect = _NestedRunRedirect()
