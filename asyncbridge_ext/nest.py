"""NestAsyncio: make asyncio's event loop re-entrant, once, through a nest library.

Re-entrant means ``asyncio.run(...)`` and ``loop.run_until_complete(...)`` work while
the loop of the calling thread is already running (as in a Jupyter cell): the nested
run happens on the same thread and the same loop. The patch comes from nest_asyncio2
(the maintained fork; versions before 1.7.3 drop cells queued behind a nested run on
ipykernel 7) or, if chosen, the archived nest_asyncio. It cannot be undone in a running
process. Nothing is imported or patched until :meth:`NestAsyncio.apply_once` is called.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
from typing import Any, Literal

__all__ = ["NestAsyncio", "NestBackend"]

logger = logging.getLogger("asyncbridge_ext")

NestBackend = Literal["auto", "nest_asyncio2", "nest_asyncio"]

_PIP = {
    "nest_asyncio2": "pip install 'nest-asyncio2>=1.7.3'",
    "nest_asyncio": "pip install 'asyncbridge-ext[nest-asyncio]'",
}
_MIN_NEST_ASYNCIO2 = (1, 7, 3)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


class _NestAsyncio:
    """The one re-entrancy switch of the process (use the instance ``NestAsyncio``).

    Its answers are read from the markers the nest libraries leave behind
    (``asyncio._nest_patched``, ``asyncio._nest_asyncio2`` and ``_nest_patched`` on the
    loop class), never from a flag of ours, so they stay true when another library
    applied the patch first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def backend(self) -> str | None:
        """The library that patched asyncio: ``"nest_asyncio2"``, ``"nest_asyncio"`` or None."""
        if not getattr(asyncio, "_nest_patched", False):
            return None
        return "nest_asyncio2" if hasattr(asyncio, "_nest_asyncio2") else "nest_asyncio"

    @property
    def is_applied(self) -> bool:
        """True if asyncio is patched and so is the running loop of this thread (if any)."""
        if self.backend is None:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return True
        return bool(getattr(type(loop), "_nest_patched", False))

    def apply_once(
        self, loop: asyncio.AbstractEventLoop | None = None, *, backend: NestBackend = "auto"
    ) -> str:
        """Make ``loop`` (default: the running loop of this thread) re-entrant; return the backend.

        Runs on the calling thread and patches in place; idempotent and thread-safe.
        If asyncio was already patched by either nest library, that library stays in
        charge (a different one is never stacked on top) and its name is returned.
        Raises ``RuntimeError`` for a loop that cannot be patched (uvloop or any loop
        not derived from ``asyncio.BaseEventLoop``) and ``ImportError``, with the pip
        command, when the chosen library is missing.
        """
        if backend not in ("auto", "nest_asyncio2", "nest_asyncio"):
            raise ValueError(
                f"backend must be 'auto', 'nest_asyncio2' or 'nest_asyncio', got {backend!r}"
            )
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        if loop is not None and not isinstance(loop, asyncio.BaseEventLoop):
            raise RuntimeError(
                f"cannot make a {type(loop).__module__}.{type(loop).__qualname__} loop "
                "re-entrant: the nest libraries patch only asyncio's own event loops (not "
                "uvloop or other implementations). Use thread mode instead: "
                '`%config AsyncBridge.nested_run = "thread"`, or call '
                "run_coroutine_in_new_loop(coro) in place of asyncio.run(coro)."
            )
        with self._lock:
            active = self.backend
            if active is not None:
                if backend not in ("auto", active):
                    logger.warning(
                        "asyncbridge_ext: asyncio is already patched by %s; not applying %s "
                        "on top of it",
                        active,
                        backend,
                    )
                chosen = active
            else:
                chosen = "nest_asyncio2" if backend == "auto" else backend
            if active is not None and (loop is None or getattr(type(loop), "_nest_patched", False)):
                return chosen
            module = _import_backend(chosen)
            module.apply(loop)
            logger.debug("%s applied to %r", chosen, loop)
            return chosen


def _import_backend(name: str) -> Any:
    """Import nest_asyncio2 or nest_asyncio, or raise ImportError with the pip command."""
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"asyncbridge_ext needs {name} to make the running loop re-entrant, and it is not "
            f"installed. Install it with: {_PIP[name]}"
        ) from exc
    if name == "nest_asyncio2":
        from importlib import metadata  # costs ~20 ms: only when a patch is applied

        try:
            version = metadata.version("nest-asyncio2")
        except metadata.PackageNotFoundError:
            version = "0"
        if _version_tuple(version) < _MIN_NEST_ASYNCIO2:
            raise ImportError(
                f"nest-asyncio2 {version} is installed, but versions before 1.7.3 drop the "
                "cells queued behind a nested asyncio.run on ipykernel 7. Upgrade it with: "
                f"{_PIP[name]}"
            )
    return module


#: The process-wide switch: ``NestAsyncio.apply_once()``, ``NestAsyncio.is_applied``.
NestAsyncio = _NestAsyncio()
