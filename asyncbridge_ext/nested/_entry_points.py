"""asyncio's loop-driving entry points, and the wrapper that stands in for each of them.

The table of names (``asyncio.run``, ``asyncio.Runner.run`` / ``close``,
``BaseEventLoop.run_until_complete`` / ``run_forever``), which of them each mode wraps,
where each lives, and :func:`make_wrapper`, which builds the stand-in that asks *is a loop
already running in this thread?* and hands the call to the redirect's routing if so
(:mod:`.redirect`). Plain asyncio, no IPython.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from ..core.activity import ACTIVITY
from ..core.asyncio_internals import get_running_loop_or_none as _get_running_loop
from ._serve import close_runner

__all__ = ["RUN", "WRAPPED_IN", "make_wrapper", "owner_of"]

RUN, RUNNER, RUNNER_CLOSE, UNTIL_COMPLETE, FOREVER = (
    "asyncio.run",
    "asyncio.Runner.run",
    "asyncio.Runner.close",
    "BaseEventLoop.run_until_complete",
    "BaseEventLoop.run_forever",
)
WRAPPED_IN = {
    "thread": (RUN, RUNNER, RUNNER_CLOSE, UNTIL_COMPLETE, FOREVER),
    "auto": (RUN, RUNNER, RUNNER_CLOSE, UNTIL_COMPLETE, FOREVER),
    "nest": (RUN, RUNNER, RUNNER_CLOSE),
}


def owner_of(name: str) -> tuple[Any, str] | None:
    """The object and attribute behind an entry point's name (None: not in this Python)."""
    if name == RUN:
        return asyncio, "run"
    if name in (RUNNER, RUNNER_CLOSE):
        return asyncio.Runner, name.rpartition(".")[2]
    return asyncio.BaseEventLoop, name.rpartition(".")[2]


def make_wrapper(
    name: str,
    original: Callable[..., Any],
    route: Callable[..., Any],
    reentrant_run: Callable[..., Any] | None = None,
) -> Callable[..., Any]:
    """The wrapper of one entry point: the original when no loop runs in the calling
    thread, ``route(running, target, awaitable, what, original, args[, kwargs])`` when one
    does. ``reentrant_run`` (nest mode's ``asyncio.run``) serves a plain
    ``asyncio.run(coro)`` on the running loop instead. Runs on the thread that calls it."""
    if name in (RUN, RUNNER):
        what = "asyncio.run()" if name == RUN else "asyncio.Runner.run()"
        first = 1 if name == RUNNER else 0  # Runner.run(self, coro, ...)
        key = "coro" if name == RUNNER else "main"

        def run(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            running = _get_running_loop()
            if running is None:
                return original(*args, **kwargs)
            main = args[first] if len(args) > first else kwargs.get(key)
            if (
                reentrant_run is not None
                and len(args) <= 1
                and not any(value is not None for arg, value in kwargs.items() if arg != "main")
            ):
                ACTIVITY.count("nested_run.reentrant")
                return reentrant_run(main)
            return route(running, None, main, what, original, args, kwargs)

        return functools.wraps(original)(run)
    if name == RUNNER_CLOSE:

        def close(runner: Any) -> Any:
            __tracebackhide__ = True
            running = _get_running_loop()
            if running is None:
                return original(runner)
            return close_runner(running, original, runner)

        return functools.wraps(original)(close)
    if name == UNTIL_COMPLETE:

        def run_until_complete(loop: Any, future: Any) -> Any:
            __tracebackhide__ = True
            running = _get_running_loop()
            if running is None:
                return original(loop, future)
            return route(
                running, loop, future, "loop.run_until_complete()", original, (loop, future)
            )

        return functools.wraps(original)(run_until_complete)

    def run_forever(loop: Any) -> Any:
        __tracebackhide__ = True
        running = _get_running_loop()
        if running is None:
            return original(loop)
        return route(running, loop, None, "loop.run_forever()", original, (loop,))

    return functools.wraps(original)(run_forever)
