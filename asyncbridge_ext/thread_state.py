"""Are thread mode's wrappers the ones in force? Read from asyncio itself, for ``%asyncbridge``.

Thread mode (:mod:`asyncbridge_ext.thread_mode`) wraps ``asyncio.run`` and
``BaseEventLoop.run_until_complete``. Another library can put its own functions in their
place afterwards (a nest library does, and its loop-class patch shadows ours for that
loop class). This module tells, from the functions in force now, whether ours are there
and, if not, whose are. No IPython here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from . import thread_mode

__all__ = ["thread_mode_wrappers"]


def _is_ours(function: Any) -> bool:
    code = getattr(function, "__code__", None)
    return bool(getattr(function, "__asyncbridge_redirect__", False)) and (
        code is not None and code.co_filename == thread_mode.__file__
    )


def _owner(function: Any) -> str:
    """Who defined ``function``: its module (or its source file, if it claims to be ours)."""
    module = getattr(function, "__module__", None) or "an unknown module"
    if module.startswith("asyncbridge_ext"):  # functools.wraps copied our __module__
        code = getattr(function, "__code__", None)
        return code.co_filename if code is not None else repr(function)
    return str(module)


def thread_mode_wrappers(mode: str, loop: asyncio.AbstractEventLoop | None) -> str:
    """``intact``, ``not installed``, or ``replaced: <entry point> by <owner>; ...``.

    ``run_until_complete`` is looked up on the class of ``loop`` (the kernel's loop), so
    a patch on that class (which shadows ours on ``BaseEventLoop``) counts as a
    replacement.
    """
    loop_class = type(loop) if isinstance(loop, asyncio.BaseEventLoop) else asyncio.BaseEventLoop
    entry_points = {
        "asyncio.run": asyncio.run,
        f"{loop_class.__name__}.run_until_complete": loop_class.run_until_complete,
    }
    ours = {name: _is_ours(function) for name, function in entry_points.items()}
    if mode != "thread":
        return "installed (left over)" if any(ours.values()) else "not installed"
    if all(ours.values()):
        return "intact"
    replaced = [
        f"{name} by {_owner(function)}"
        for name, function in entry_points.items()
        if not ours[name]
    ]
    return "replaced: " + "; ".join(replaced)
