"""Every use of a private name of asyncio, in one place, each with the versions it is checked on.

Plain asyncio, no IPython; nothing runs at import but reading attributes. asyncio has no
public way to do what these do: pause the running loop of a thread for a call and put it
back, read a loop's owning thread, or undo the archived nest_asyncio's patch. Each name
below says which Python versions it is checked on (CPython 3.11 to 3.15);
``tests/core/test_asyncio_internals.py`` fails, naming it, the day CPython renames or removes one.
The event-loop policy system (deprecated in 3.14, removed in 3.16) is read only where
Python is older than 3.14 or the archived patch changed it, and only if it still exists.
"""

from __future__ import annotations

import asyncio
import sys
from asyncio import events, futures, tasks
from collections.abc import Callable
from typing import Any

# The names below have no type stubs (typeshed knows only the public ones).
_tasks: Any = tasks
_events: Any = events
_futures: Any = futures

__all__ = [
    "get_running_loop_or_none",
    "loop_of_future",
    "loop_thread_id",
    "runner_loop",
    "set_running_loop",
    "swap_current_task",
    "thread_event_loop",
    "undo_archived_nest_patch",
]

#: The loop running in this thread, or None (3.11-3.15). The public
#: ``asyncio.get_running_loop()`` raises instead, which costs more on every nested run.
get_running_loop_or_none: Callable[[], asyncio.AbstractEventLoop | None] = events._get_running_loop
#: Mark ``loop`` (or None) as the loop running in this thread (3.11-3.15); no public API.
set_running_loop: Callable[[asyncio.AbstractEventLoop | None], None] = events._set_running_loop

#: From 3.14 (checked on 3.14, 3.15) the C implementation keeps the current task per
#: *thread*, so a second loop run on a thread must put the first loop's current task aside
#: (nest-asyncio2 does the same). None before 3.14, where the task is kept per loop.
swap_current_task: Callable[[Any, Any], Any] | None = (
    _tasks._swap_current_task if sys.version_info >= (3, 14) else None
)


def thread_event_loop() -> asyncio.AbstractEventLoop | None:
    """The loop set for this thread by ``set_event_loop``; call it with no loop running here.

    3.14+: the public ``asyncio.get_event_loop()``, which from 3.14 neither creates a loop
    nor warns when none is set (it raises). 3.11-3.13: that call could create a loop or
    warn, so the policy's thread-local slot (``_local._loop``) is read instead.
    """
    if sys.version_info >= (3, 14):
        try:
            return asyncio.get_event_loop()
        except RuntimeError:
            return None
    return getattr(getattr(events.get_event_loop_policy(), "_local", None), "_loop", None)


def loop_of_future(future: Any) -> asyncio.AbstractEventLoop:
    """The loop of an asyncio (or asyncio-compatible) future or task (3.11-3.15).

    ``futures._get_loop`` also knows the futures of other libraries that only have
    ``_loop`` (no ``get_loop()``).
    """
    loop: asyncio.AbstractEventLoop = futures._get_loop(future)  # type: ignore[attr-defined]
    return loop


def loop_thread_id(loop: Any, default: int) -> int:
    """The thread running asyncio loop ``loop`` (``BaseEventLoop._thread_id``, 3.11-3.15).

    ``default`` for loops that are not asyncio's own (they have no such attribute).
    """
    ident = getattr(loop, "_thread_id", default)
    return default if ident is None else int(ident)


def runner_loop(runner: asyncio.Runner) -> asyncio.AbstractEventLoop | None:
    """The loop an ``asyncio.Runner`` runs on (``Runner._loop``, 3.11-3.15), None before it starts.

    ``Runner.get_loop()`` would create the loop of a Runner that has none yet.
    """
    loop: asyncio.AbstractEventLoop | None = getattr(runner, "_loop", None)
    return loop


def undo_archived_nest_patch() -> list[str]:
    """Give asyncio back what the archived nest_asyncio 1.x replaced on Python 3.14+.

    Runs on the calling thread (the kernel's), before nest-asyncio2 is applied in its
    place. Returns what was put back (empty before 3.14 or without the C accelerator).

    The archived library makes every new task and future the pure-Python ones. From 3.14
    those keep the current task in a dict per loop while the C tasks, ``current_task()``
    and nest-asyncio2 use the C per-thread slot, so a nested run gets "Cannot enter into
    task ... while another task ... is being executed" for ever and ``current_task()``
    says None. Put back: ``Task`` and ``Future`` (asyncio's C classes), ``get_event_loop``
    (and the ``events._get_event_loop`` the patch added), the policy class's
    ``get_event_loop`` (3.14, 3.15: the policy system goes in 3.16), and tornado's
    ``Future``. Pure-Python tasks created while the patch was in force go on running; their
    bookkeeping (``_py_enter_task``, ``_py_leave_task``, ``_py_swap_current_task``,
    ``_py_register_task``, ``_py_register_eager_task``, ``_py_unregister_eager_task``) now
    uses the C per-thread slot too, and the one running here is moved to that slot.
    """
    if sys.version_info < (3, 14) or not hasattr(_tasks, "_c_enter_task"):
        return []
    import _asyncio  # the C accelerator: the originals the archived patch replaced

    restored = []
    if asyncio.Task is not _asyncio.Task:
        asyncio.Task = _tasks.Task = _tasks._CTask = _asyncio.Task  # type: ignore[misc]
        restored.append("Task")
    if asyncio.Future is not _asyncio.Future:
        asyncio.Future = _futures.Future = _futures._CFuture = _asyncio.Future  # type: ignore[misc]
        restored.append("Future")
    if events.get_event_loop is not _asyncio.get_event_loop:
        events.get_event_loop = asyncio.get_event_loop = _asyncio.get_event_loop
        restored.append("get_event_loop")
    if "_get_event_loop" in vars(events):  # 3.14 has none; the patch added it
        del _events._get_event_loop
    if _undo_policy_patch():
        restored.append("policy.get_event_loop")
    tornado = sys.modules.get("tornado.concurrent")
    if tornado is not None and getattr(tornado, "Future", None) is _futures._PyFuture:
        tornado.Future = _asyncio.Future
        restored.append("tornado.concurrent.Future")
    if _move_bookkeeping_to_c():
        restored.append("current-task bookkeeping")
    return restored


def _undo_policy_patch() -> bool:
    """Drop the archived ``get_event_loop`` from the policy class (3.14, 3.15 only)."""
    getter = getattr(events, "_get_event_loop_policy", None)  # gone in 3.16, with policies
    base = getattr(events, "_BaseDefaultEventLoopPolicy", None)
    if getter is None or base is None:
        return False
    undone = False
    for cls in type(getter()).__mro__:
        method = vars(cls).get("get_event_loop")
        if getattr(method, "__module__", None) == "nest_asyncio" and cls is not base:
            delattr(cls, "get_event_loop")  # the inherited one comes back
            undone = True
    return undone


def _move_bookkeeping_to_c() -> bool:
    """Pure-Python tasks use the C per-thread current-task slot from now on (3.14, 3.15)."""
    if _tasks._py_enter_task is _tasks._c_enter_task:
        return False
    c_leave = _tasks._c_leave_task
    legacy = _tasks._current_tasks  # {loop: task} of the pure-Python bookkeeping

    def leave_task(loop: Any, task: Any) -> None:
        # A task entered in the dict before the switch (on another thread) leaves from it.
        if legacy.get(loop) is task:
            del legacy[loop]
        else:
            c_leave(loop, task)

    for task in list(_tasks._scheduled_tasks):  # so that all_tasks() sees them
        _tasks._c_register_task(task)
    running = _events._get_running_loop()
    if running is not None and running in legacy and _tasks._c_current_task(running) is None:
        _tasks._c_swap_current_task(running, legacy.pop(running))
    _tasks._py_enter_task = _tasks._c_enter_task
    _tasks._py_leave_task = leave_task
    _tasks._py_swap_current_task = _tasks._c_swap_current_task
    _tasks._py_register_task = _tasks._c_register_task
    _tasks._py_register_eager_task = _tasks._c_register_eager_task
    _tasks._py_unregister_eager_task = _tasks._c_unregister_eager_task
    return True
