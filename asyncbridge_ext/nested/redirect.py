"""Nested runs: one routing decision for every way code drives an event loop.

A library's sync API runs a loop in one of a few ways: ``asyncio.run`` (3.12+:
``loop_factory=``), ``asyncio.Runner(...).run`` (3.11+), ``loop.run_until_complete`` (with a
coroutine, a task, an ``ensure_future`` or ``gather`` future; on the running loop or on a
loop of its own) or ``loop.run_forever`` + ``stop``. :data:`NestedRunRedirect` wraps these
four entry points (and ``Runner.close``, which a ``with`` block calls outside ``run()``
and which clears the thread's event loop: :func:`~asyncbridge_ext.nested._serve.close_runner`
sets the running loop again), and every wrapper asks one question first: *is an event loop already
running in this thread?* If not (a script, a worker thread), the original is called
untouched. If one is (a Jupyter cell), the call goes to :meth:`_NestedRunRedirect._route`,
the one place that decides:

- **serve it here**: the call makes or runs a loop other than the running one, or hands a
  coroutine to the running loop. It runs on the calling thread, on its own fresh loop,
  while the running loop is paused (:func:`~asyncbridge_ext.nested._serve.run_with_loop_paused`):
  what a plain script does, at a script's cost, with ``debug=`` / ``loop_factory=`` and
  asyncio's own Ctrl-C handling intact. Nothing runs on the kernel's loop.
- **re-entrant**: the call waits for a future bound to the running loop, or runs that loop
  again. Only a re-entrant (nest-patched) loop can finish it. Mode ``"auto"`` applies
  nest-asyncio2 to the running loop right there, once (a one-line notice says so), and
  goes on; later such calls are served by the patched loop directly, everything else keeps
  the routing above. Mode ``"thread"`` refuses with an error naming the setting that
  serves it. A loop the nest libraries cannot patch (uvloop) gets that error in both.
- In mode ``"nest"`` only ``Runner.run``, ``Runner.close`` and ``asyncio.run`` are
  wrapped: nest-asyncio2 serves the rest on the kernel's loop, but cannot serve a Runner,
  and its ``asyncio.run`` ignores ``loop_factory=`` and applies ``debug=`` to the
  kernel's loop. A Runner, and an ``asyncio.run`` with either argument, are served here,
  as above; a plain ``asyncio.run(coro)`` goes to the nest library.

Where it runs and what waits: a call served here runs on the calling thread, which runs
the nested loop itself; the kernel's loop is paused meanwhile (the cell is its current
callback), as during any blocking call, and queued cells wait for the cell to end. The
nested loop is made, tidied and closed by asyncio itself (``asyncio.run`` / ``Runner``)
or by the library that made it. Ctrl-C in the main thread is asyncio's own handling
(``asyncio.run`` and ``Runner`` cancel their task and run its ``finally`` blocks before
``KeyboardInterrupt``). Off the main thread (ipykernel 7 subshells), where no SIGINT
arrives, a kernel interrupt delivered through ``INTERRUPTS`` cancels the tasks of the
nested loops (:func:`~asyncbridge_ext.nested._serve.serve_off_main`). A refused future is
cancelled, so the library's work does not start later on its own.

Modes "thread" and "auto" patch nothing of the nest kind until a call needs it (auto) or
ever (thread): asyncio keeps its C tasks and the kernel's throughput is unchanged.
:meth:`~_NestedRunRedirect.uninstall` puts the originals back;
:meth:`~_NestedRunRedirect.status` tells whether our wrappers are all in place, and what
replaced them if not.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..core.activity import ACTIVITY
from ..core.names import name_of
from ..core.nest import NestAsyncio, NestBackend
from ._entry_points import (
    RUN,
    WRAPPED_IN,
    make_wrapper,
    owner_of,
)
from ._serve import (
    as_coroutine_for_run,
    bound_loop,
    refusal,
    run_with_loop_paused,
    serve_off_main,
)

__all__ = ["NestedRunRedirect"]

_MAIN_THREAD_IDENT = threading.main_thread().ident


class _NestedRunRedirect:
    """Install / uninstall the nested-run wrappers (use the instance ``NestedRunRedirect``).

    ``mode`` is "thread", "auto" or "nest" (see the module docstring). State lives here:
    the originals, our wrappers, and whether the auto-mode notice was printed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._originals: dict[str, Callable[..., Any]] = {}
        self._wrappers: dict[str, Callable[..., Any]] = {}
        self.mode = "thread"
        self.nest_backend: NestBackend = "auto"
        self._fallback_told = False
        self._active = False

    # -- state, for the extension's guard and the %asyncbridge report -----------------

    @property
    def installed(self) -> bool:
        """True while our wrappers are installed (by :meth:`install`) and all still in place."""
        return self._active and not self.replaced()

    def replaced(self) -> dict[str, str]:
        """Our entry points that something else replaced since: name -> what is there now."""
        found = {}
        for name, wrapper in list(self._wrappers.items()):
            owner = owner_of(name)
            current = None if owner is None else getattr(owner[0], owner[1], None)
            if current is not wrapper:
                found[name] = name_of(current, with_module=True)
        return found

    def status(self) -> dict[str, Any]:
        """For reports: the mode installed (None if none), whether all our wrappers are in
        place, and, for each one replaced since, what replaced it."""
        return {
            "mode": self.mode if self._active else None,
            "installed": self.installed,
            "replaced": self.replaced(),
        }

    # -- install / uninstall / restore ------------------------------------------------

    def install(self, mode: str = "thread", nest_backend: NestBackend = "auto") -> None:
        """Wrap the entry points ``mode`` needs, on the calling thread. Idempotent."""
        if mode not in WRAPPED_IN:
            raise ValueError(f"mode must be 'thread', 'auto' or 'nest', got {mode!r}")
        with self._lock:
            self.nest_backend = nest_backend
            if self._active and self.mode == mode:
                return
            self._uninstall_locked()
            self.mode = mode
            for name in WRAPPED_IN[mode]:
                owner = owner_of(name)
                if owner is None:
                    continue
                original = getattr(*owner)
                # asyncio.run may be a nest library's by now (it replaces only that
                # name): our wrapper always calls asyncio's own, asyncio.runners.run.
                if name == RUN:
                    # In nest mode a plain asyncio.run(coro) stays the nest library's
                    # (nested runs happen on the kernel's loop); one with debug= or
                    # loop_factory= gets the loop it asks for, and the kernel's loop
                    # keeps its own debug setting.
                    wrapper = make_wrapper(
                        RUN, asyncio.runners.run, self._route, original if mode == "nest" else None
                    )
                else:
                    wrapper = make_wrapper(name, original, self._route)
                wrapper.__asyncbridge_redirect__ = True  # type: ignore[attr-defined]
                self._originals[name] = original
                self._wrappers[name] = wrapper
                setattr(owner[0], owner[1], wrapper)
            self._active = True

    def uninstall(self) -> None:
        """Put the originals back where ours are still in place. Idempotent."""
        with self._lock:
            self._uninstall_locked()

    def _uninstall_locked(self) -> None:
        for name, wrapper in self._wrappers.items():
            owner = owner_of(name)
            if owner is not None and getattr(*owner) is wrapper:
                setattr(owner[0], owner[1], self._previous(name))
        self._wrappers.clear()
        self._originals.clear()
        self._active = False

    def _previous(self, name: str) -> Callable[..., Any]:
        """What uninstalling puts back: what we replaced, or the nest library's asyncio.run
        if the loop was made re-entrant since (auto's fallback), so nested runs keep working.
        """
        if name == RUN and NestAsyncio.backend is not None:
            nest_run = getattr(sys.modules.get(NestAsyncio.backend), "run", None)
            if callable(nest_run):
                return nest_run  # type: ignore[no-any-return]
        return self._originals[name]

    def restore(self) -> tuple[dict[str, str], dict[str, str]]:
        """Put our wrappers back where another library replaced them.

        Returns ``(restored, failed)``, each mapping an entry point to what had replaced
        it. Our wrappers still call the originals saved at install.
        """
        restored, failed = {}, {}
        with self._lock:
            for name, what in self.replaced().items():
                owner = owner_of(name)
                try:
                    if owner is None:
                        raise AttributeError(name)
                    setattr(owner[0], owner[1], self._wrappers[name])
                    restored[name] = what
                except (AttributeError, TypeError):
                    failed[name] = what
        return restored, failed

    # -- the one routing decision -----------------------------------------------------

    def _route(
        self,
        running: asyncio.AbstractEventLoop,
        target: Any,
        awaitable: Any,
        what: str,
        call: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        """Serve a loop-driving call made while ``running`` runs in this thread.

        ``target`` is the loop the call would run (None: a loop the call makes itself),
        ``awaitable`` what it waits for (None for ``run_forever``).
        """
        __tracebackhide__ = True
        owner = bound_loop(awaitable)
        if target is running and awaitable is not None and owner is None:
            # A coroutine handed to the running loop: it needs no particular loop, so
            # it runs as asyncio.run would run it, on a fresh loop of its own.
            call, kwargs = asyncio.runners.run, None
            args = (as_coroutine_for_run(awaitable),)
        elif target is running or owner is running:
            return self._run_reentrant(running, awaitable, what)
        ACTIVITY.count("nested_run.same_thread")
        if threading.get_ident() == _MAIN_THREAD_IDENT:
            return run_with_loop_paused(running, call, *args, **(kwargs or {}))
        return serve_off_main(running, call, *args, **(kwargs or {}))

    def _run_reentrant(self, running: asyncio.AbstractEventLoop, awaitable: Any, what: str) -> Any:
        """Wait for ``awaitable`` (or run ``running`` on) re-entrantly, or refuse."""
        __tracebackhide__ = True
        if not getattr(type(running), "_nest_patched", False):
            if self.mode != "auto":
                raise self._refuse(awaitable, what)
            try:
                backend = NestAsyncio.apply_once(running, backend=self.nest_backend)
            except RuntimeError as exc:  # a loop the nest libraries cannot patch
                raise self._refuse(awaitable, what, extra=f"{exc} ") from None
            ACTIVITY.count("nested_run.auto_fallback")
            self.restore()  # the nest library replaced asyncio.run with its own
            self._tell_fallback(backend, what)
        ACTIVITY.count("nested_run.reentrant")
        if awaitable is None:
            return type(running).run_forever(running)
        return type(running).run_until_complete(running, awaitable)

    def _refuse(self, awaitable: Any, what: str, extra: str = "") -> RuntimeError:
        # Cancel the refused future, so the library's work does not start later, unasked,
        # once the cell has ended and the kernel's loop runs again.
        error = refusal(what, awaitable, self.mode, extra)
        if asyncio.isfuture(awaitable):
            awaitable.cancel()
        ACTIVITY.count("nested_run.refused")
        return error

    def _tell_fallback(self, backend: str, what: str) -> None:
        if self._fallback_told:
            return
        self._fallback_told = True
        print(
            f'asyncbridge_ext: nested_run = "auto" made the running event loop re-entrant '
            f"({backend}), because {what} waited for work of that very loop; it stays "
            "re-entrant until the kernel restarts (asyncio.run and loops of their own still "
            "run on a fresh loop).",
            file=sys.stderr,
        )


#: The process-wide redirect: ``NestedRunRedirect.install(mode)`` / ``.uninstall()``.
NestedRunRedirect = _NestedRunRedirect()
