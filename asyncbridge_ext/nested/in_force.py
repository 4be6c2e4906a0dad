"""Are the nested-run wrappers the ones in force? Read from asyncio itself, for ``%asyncbridge``.

:mod:`asyncbridge_ext.nested.redirect` wraps asyncio's entry points (``asyncio.run``,
``asyncio.Runner.run``, ``BaseEventLoop.run_until_complete`` / ``run_forever``) and tells,
through :meth:`NestedRunRedirect.status`, which of them something else replaced since.
One more replacement is invisible there: a nest library patches ``run_until_complete``
on the *class* of the kernel's loop, which shadows our wrapper on ``BaseEventLoop`` for
that class. This module adds that check and words the answer. No IPython here.
"""

from __future__ import annotations

import asyncio

from .redirect import NestedRunRedirect

__all__ = ["thread_mode_wrappers"]


def thread_mode_wrappers(mode: str, loop: asyncio.AbstractEventLoop | None) -> str:
    """``intact``, ``not installed``, or ``replaced: <entry point> by <owner>; ...``.

    In "thread" mode (and "auto" before its fallback), a nest patch on the kernel loop's
    class counts as a replacement of ``run_until_complete``: calls on that loop class no
    longer reach our routing. In "nest" mode and after auto's fallback that patch is the
    point, so it is not reported.
    """
    status = NestedRunRedirect.status()
    if status["mode"] is None:
        return "not installed"
    replaced = dict(status["replaced"])
    loop_class = type(loop)
    shadowed = isinstance(loop, asyncio.BaseEventLoop) and (
        "run_until_complete" in vars(loop_class)
        and vars(loop_class)["run_until_complete"] is not asyncio.BaseEventLoop.run_until_complete
    )
    if mode == "thread" and shadowed:
        patched = vars(loop_class)["run_until_complete"]
        replaced[f"{loop_class.__name__}.run_until_complete"] = str(
            getattr(patched, "__module__", None) or "an unknown module"
        )
    if not replaced:
        return "intact"
    return "replaced: " + "; ".join(f"{name} by {owner}" for name, owner in replaced.items())
