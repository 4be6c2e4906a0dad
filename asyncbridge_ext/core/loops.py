"""Find the event loops running in a thread, and the futures they wait for; cancel tasks.

Read from another thread's frames (``sys._current_frames``), so any thread may ask about
any other: the stopper of :func:`~asyncbridge_ext.run_in_thread` asks about its worker,
and a nested run served off the main thread asks about its own. Cancelling runs on the
loop's own thread (pass these functions to ``call_soon_threadsafe``). No IPython here.
"""

from __future__ import annotations

import asyncio
import sys
from types import FrameType
from typing import Any, TypeGuard

from .asyncio_internals import (
    get_running_loop_or_none,
    loop_thread_id,
    runner_loop,
    thread_event_loop,
)

__all__ = ["cancel_all_tasks", "cancel_new_tasks", "kept_loops", "running_loops", "waited_futures"]

_LOOP_FRAMES = frozenset({"run_forever", "run_until_complete", "_run_once", "run"})


def running_loops(ident: int) -> list[asyncio.AbstractEventLoop]:
    """The asyncio loops running in thread ``ident``, innermost first.

    Found by walking the thread's Python stack for the frames of a loop running: its
    ``run_forever``, ``run_until_complete`` or ``_run_once`` (nest-asyncio2's patched
    loops run through the last two only), or ``asyncio.Runner.run``, whose loop may
    have no Python frames (uvloop's). Called from another thread; it only reads.
    """
    frame: FrameType | None = sys._current_frames().get(ident)
    runner_class = getattr(asyncio, "Runner", None)  # Python 3.11+
    loops: list[asyncio.AbstractEventLoop] = []
    while frame is not None:
        if frame.f_code.co_name in _LOOP_FRAMES:
            # The loop is the method's ``self``, or a ``run`` function's local ``loop``
            # (uvloop.run on 3.10 keeps its loop there and runs it in C).
            for owner in (frame.f_locals.get("self"), frame.f_locals.get("loop")):
                if runner_class is not None and isinstance(owner, runner_class):
                    owner = getattr(owner, "_loop", None)
                if _runs_in(owner, ident) and owner not in loops:
                    loops.append(owner)
        frame = frame.f_back
    return loops


def _runs_in(owner: object, ident: int) -> TypeGuard[asyncio.AbstractEventLoop]:
    """Is ``owner`` an event loop running now, in thread ``ident`` as far as can be told?

    asyncio's own loops record their thread; others (uvloop) do not, and were found in a
    frame of that thread's stack that runs them.
    """
    if not isinstance(owner, asyncio.AbstractEventLoop) or not owner.is_running():
        return False
    return loop_thread_id(owner, ident) == ident


#: Where a loop's run keeps the future it runs until: asyncio's ``run_until_complete``
#: (``future``), nest-asyncio2's (``f``), ``asyncio.Runner.run`` (``task``).
_WAITED_NAMES = ("future", "f", "task")


def waited_futures(ident: int) -> list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]]:
    """What thread ``ident`` waits for: each ``run_until_complete`` future, innermost first.

    Walks the thread's stack as :func:`running_loops` does; for each frame of a loop's
    ``run_until_complete`` (or of ``asyncio.Runner.run``) whose loop runs in that thread,
    the unfinished future it runs until. Called from another thread; it only reads.
    """
    frame: FrameType | None = sys._current_frames().get(ident)
    found: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = []
    while frame is not None:
        name = frame.f_code.co_name
        owner = frame.f_locals.get("self")
        if name == "run" and isinstance(owner, asyncio.Runner):
            owner = runner_loop(owner)
        elif name != "run_until_complete":
            owner = None
        if owner is not None and _runs_in(owner, ident):
            for local in _WAITED_NAMES:
                future = frame.f_locals.get(local)
                if (
                    asyncio.isfuture(future)
                    and not future.done()
                    and future.get_loop() is owner
                    and all(future is not seen for _, seen in found)
                ):
                    found.append((owner, future))
                    break
        frame = frame.f_back
    return found


def kept_loops() -> list[asyncio.AbstractEventLoop]:
    """On a worker: the open loops this thread holds, which a library may run again.

    Its running-loop marker (Playwright's sync API leaves its loop there between calls)
    and its event loop (``asyncio.set_event_loop``, as ib_async and many SDKs keep it).
    """
    loops: list[asyncio.AbstractEventLoop] = []
    for loop in (get_running_loop_or_none(), thread_event_loop()):
        if isinstance(loop, asyncio.AbstractEventLoop) and not loop.is_closed():
            if loop not in loops:
                loops.append(loop)
    return loops


def cancel_new_tasks(loop: asyncio.AbstractEventLoop, before: set[asyncio.Task[Any]]) -> None:
    """Cancel the unfinished tasks of ``loop`` not in ``before``. Runs on that loop's thread."""
    for task in asyncio.all_tasks(loop):
        if task not in before:
            task.cancel()


def cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel every unfinished task of ``loop``. Runs on that loop's thread."""
    for task in asyncio.all_tasks(loop):
        task.cancel()
