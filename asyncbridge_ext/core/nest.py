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
import sys
import threading
from typing import Any, Literal

from .asyncio_internals import undo_archived_nest_patch

__all__ = ["NestAsyncio", "NestBackend"]

logger = logging.getLogger(__name__)

NestBackend = Literal["auto", "nest_asyncio2", "nest_asyncio"]

_PIP = {
    "nest_asyncio2": "pip install 'nest-asyncio2>=1.7.3'",
    "nest_asyncio": "pip install 'asyncbridge-ext[nest-asyncio]'",
}


#: Python 3.14+ keeps the current task per thread in C; the archived library swaps in the
#: pure-Python tasks, so inside its nested runs ``asyncio.current_task()`` is None (and
#: ``asyncio.timeout``, ``TaskGroup``, anyio fail) or the kernel wedges.
ARCHIVED_ON_314 = (
    "the archived nest_asyncio does not work on Python 3.14 and newer: inside its nested "
    "runs asyncio.current_task() is None, so asyncio.timeout, TaskGroup and anyio fail. "
    'Use nest-asyncio2 instead: `%config AsyncBridge.nest_backend = "auto"`.'
)


class _NestAsyncio:
    """The one re-entrancy switch of the process (use the instance ``NestAsyncio``).

    Its answers are read from the markers the nest libraries leave behind
    (``asyncio._nest_patched``, ``asyncio._nest_asyncio2`` and ``_nest_patched`` on the
    loop class), never from a flag of ours, so they stay true when another library
    applied the patch first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Where a library called the intercepted ``nest_asyncio.apply()`` that made us
        #: patch asyncio (``"module, line N"``), or None. The patch outlives the call.
        self.applied_for: str | None = None

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
        not derived from ``asyncio.BaseEventLoop``), for the archived library on Python
        3.14+ (see :data:`ARCHIVED_ON_314`) and ``ImportError``, with the pip
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
                if chosen == "nest_asyncio" and sys.version_info >= (3, 14):
                    raise RuntimeError(ARCHIVED_ON_314)
            if active is not None and (loop is None or getattr(type(loop), "_nest_patched", False)):
                return chosen
            module = _import_backend(chosen)
            module.apply(loop)
            logger.debug("%s applied to %r", chosen, loop)
            return chosen

    @property
    def archived_in_force(self) -> bool:
        """True if the archived nest_asyncio 1.x patched asyncio (cheap: two attribute reads)."""
        return getattr(asyncio, "_nest_patched", False) and not hasattr(asyncio, "_nest_asyncio2")

    def replace_archived(self, loop: asyncio.AbstractEventLoop | None = None) -> str | None:
        """Replace a patch of the archived nest_asyncio 1.x by nest-asyncio2; say what was found.

        On ipykernel 7 the archived patch loses every cell queued behind the next nested
        run; nest-asyncio2 (1.7.3+) does not. Runs on the calling thread: the markers of
        the old patch are cleared (on asyncio and on the class of ``loop``, default: the
        running loop of this thread) and nest-asyncio2 is applied to ``loop``, which
        replaces ``asyncio.run`` and the loop class's methods again. On Python 3.14+ asyncio
        first gets back what the archived patch replaced (its C ``Task`` and ``Future``,
        ``get_event_loop``, the current-task bookkeeping: see
        :func:`~asyncbridge_ext.core.asyncio_internals.undo_archived_nest_patch`), which
        nest-asyncio2 leaves alone there; before 3.14 nest-asyncio2 replaces those itself.
        Returns None if the archived patch is not in force, else a description such as
        ``"nest_asyncio 1.6.0"``.
        """
        if not self.archived_in_force:
            return None
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        with self._lock:
            if not self.archived_in_force:
                return None
            found = "nest_asyncio " + _installed_version("nest_asyncio")
            module = _import_backend("nest_asyncio2")
            # 3.14+: nest-asyncio2 keeps asyncio's C tasks and futures, so what the archived
            # patch replaced must come back first, or the next nested run wedges.
            restored = undo_archived_nest_patch()
            del asyncio._nest_patched  # type: ignore[attr-defined]
            if loop is not None:
                for cls in type(loop).__mro__:
                    if "_nest_patched" in vars(cls) and not hasattr(cls, "_nest_asyncio2"):
                        delattr(cls, "_nest_patched")
            module.apply(loop)
            logger.debug("replaced %s by nest_asyncio2 on %r (%s)", found, loop, restored)
            return found

    def intercept_archived_apply(self, on_call: Any = None) -> bool:
        """Make ``nest_asyncio.apply`` (the archived library) apply nest-asyncio2 instead.

        For libraries that import and call ``nest_asyncio.apply()`` and then run a nested
        loop within the same call (llama-index's progress bars): no check between cells
        can come in between. The module is imported here, if it is installed, so that a
        later ``import nest_asyncio`` gets it with ``apply`` replaced. Same signature; the
        replacement runs :meth:`apply_once` with nest-asyncio2 on the caller's thread,
        then calls ``on_call()`` (if given). Returns False if nest_asyncio is not
        installed. :meth:`release_archived_apply` undoes it.
        """
        import importlib.util

        if "nest_asyncio" not in sys.modules and importlib.util.find_spec("nest_asyncio") is None:
            return False
        module = importlib.import_module("nest_asyncio")
        if getattr(module.apply, "__asyncbridge_redirect__", False):
            return True
        original = module.apply

        def apply(loop: asyncio.AbstractEventLoop | None = None) -> None:
            already = loop is None and self.is_applied
            self.apply_once(loop, backend="nest_asyncio2")
            if not already:
                if self.applied_for is None:
                    self.applied_for = _call_site(sys._getframe(1))
                if on_call is not None:
                    on_call()

        apply.__asyncbridge_redirect__ = True  # type: ignore[attr-defined]
        apply.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(module, "apply", apply)  # noqa: B010 - a module attribute, typed as such
        return True

    def release_archived_apply(self) -> None:
        """Put the archived library's own ``nest_asyncio.apply`` back (if we replaced it)."""
        module = sys.modules.get("nest_asyncio")
        apply = getattr(module, "apply", None)
        if getattr(apply, "__asyncbridge_redirect__", False):
            module.apply = apply.__wrapped__  # type: ignore[union-attr]


def _call_site(frame: Any) -> str:
    """``module, line N`` of ``frame`` (the caller of ``nest_asyncio.apply``)."""
    module = frame.f_globals.get("__name__") or frame.f_code.co_filename
    return f"{module}, line {frame.f_lineno}"


def _installed_version(distribution: str) -> str:
    # environment.py imports importlib.metadata (~20 ms): only on the rare paths that need it.
    from .environment import installed_version

    return installed_version(distribution) or "0"


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
        from .environment import MIN_NEST_ASYNCIO2, version_tuple

        version = _installed_version("nest-asyncio2")
        if version_tuple(version) < MIN_NEST_ASYNCIO2:
            raise ImportError(
                f"nest-asyncio2 {version} is installed, but versions before 1.7.3 drop the "
                "cells queued behind a nested asyncio.run on ipykernel 7. Upgrade it with: "
                f"{_PIP[name]}"
            )
    return module


#: The process-wide switch: ``NestAsyncio.apply_once()``, ``NestAsyncio.is_applied``.
NestAsyncio = _NestAsyncio()
