"""After every cell: the kernel's loop is the running loop again, and refusals get a pointer.

:class:`CellWatch` is built and registered by the Magics (:class:`~.magics.AsyncBridgeMagics`)
as three IPython event hooks, all public since IPython 7 (``pre_execute``, ``post_execute``,
``post_run_cell`` with ``result.error_in_exec``), and runs on the thread that runs the cell
(the kernel's main thread, or a subshell's):

- ``pre_execute`` notes asyncio's running-loop marker of this thread: the kernel's loop
  (``None`` in terminal IPython, where a plain cell runs with no loop).
- ``post_execute`` compares. A library that left another loop there (Playwright's sync
  API, used from the wrong thread, makes the loop of its worker thread the running loop
  of the thread that called it) would wedge the kernel: its next await binds to the
  wrong loop, and no cell, not even an interrupt, gets a reply again. The kernel's loop
  is put back at once, and the cell gets one line saying what happened and what to do.
  ``post_execute`` is triggered in a ``finally`` right after the cell's code, before
  ipykernel (6 and 7) awaits anything again, for sync and async cells alike; our hook
  goes first among its callbacks. That is in time for a sync cell only: ipykernel runs
  a cell that awaits at top level as a task of its own and fires ``post_execute`` after
  awaiting it, and by then (from Python 3.14, and sometimes on 3.11) the kernel is
  wedged. So such a cell is rewritten (:mod:`asyncbridge_ext.ipython.cell_rewrite`) to do the
  same check after each of its top-level statements, inside its own task, also when the
  statement raised; ``post_execute`` then finds nothing left to do. Only with IPython's
  default ``ast_node_interactivity = "last_expr"``: with another setting the cell is left
  alone (rewritten statements would not display as that setting asks), and only
  ``post_execute`` repairs it, too late for an async cell.
- ``post_run_cell`` prints one line after the traceback when the cell failed with one of
  the known refusals (:mod:`asyncbridge_ext.ipython.refusals`). The exception is not touched.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

from ..core.asyncio_internals import get_running_loop_or_none, loop_thread_id, set_running_loop
from .cell_rewrite import AwaitingCellRewrite
from .refusals import refusal_hint

__all__ = ["CellWatch"]

_HOOKS = ("pre_execute", "post_execute", "post_run_cell")


class CellWatch:
    """The three hooks of one load of the extension; ``bridge`` gives the mode."""

    def __init__(self, bridge: Any) -> None:
        self.bridge = bridge
        self._local = threading.local()  # per thread: main shell and each subshell
        self._callbacks = {
            "pre_execute": self.before_cell,
            "post_execute": self.after_cell,
            "post_run_cell": self.after_run_cell,
        }
        self._shell: Any = None
        self._rewrite = AwaitingCellRewrite(id(self), self._rewrite_this_tree)

    def register(self, events_manager: Any) -> None:
        """Register the hooks; the repair goes first among the ``post_execute`` callbacks.

        Also installs the rewrite of cells that await at top level in the events
        manager's shell (``events_manager.shell``).
        """
        for name in _HOOKS:
            events_manager.register(name, self._callbacks[name])
        callbacks = getattr(events_manager, "callbacks", {}).get("post_execute")
        if isinstance(callbacks, list) and self.after_cell in callbacks:
            callbacks.remove(self.after_cell)
            callbacks.insert(0, self.after_cell)
        self._shell = getattr(events_manager, "shell", None)
        self._rewrite.install(self._shell, self.during_cell)

    def unregister(self, events_manager: Any) -> None:
        self._rewrite.uninstall(getattr(events_manager, "shell", None))
        for name in _HOOKS:
            try:
                events_manager.unregister(name, self._callbacks[name])
            except ValueError:
                pass  # someone removed it already

    def _expected(self) -> list[asyncio.AbstractEventLoop | None]:
        stack: list[asyncio.AbstractEventLoop | None] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def before_cell(self) -> None:
        """``pre_execute``: note this thread's running loop (a stack: cells can nest)."""
        self._expected().append(get_running_loop_or_none())
        self._local.tree_pending = True  # the next AST transform is this cell's own

    def _rewrite_this_tree(self) -> bool:
        """Asked by the AST transformer: is this the tree of the cell that just began?

        Once per cell: trees that a magic transforms later in the cell (the body of a
        ``%%in_thread`` or ``%%time`` cell) are not the cell's own and are left alone.
        """
        pending = bool(getattr(self._local, "tree_pending", False))
        self._local.tree_pending = False
        interactivity = getattr(self._shell, "ast_node_interactivity", None)
        return pending and interactivity == "last_expr"

    def during_cell(self) -> None:
        """After each top-level statement of a rewritten cell, inside the cell's own task:
        put the loop noted before the cell back if it was replaced."""
        stack = self._expected()
        if stack:
            _put_back(stack[-1])

    def after_cell(self) -> None:
        """``post_execute``: put the loop noted before the cell back if it was replaced."""
        self._local.tree_pending = False
        stack = self._expected()
        if not stack:
            return  # the extension was loaded during this cell
        _put_back(stack.pop())

    def after_run_cell(self, result: Any = None) -> None:
        """``post_run_cell``: one line after the traceback of a known refusal."""
        error = getattr(result, "error_in_exec", None)
        if error is None:
            return
        hint = refusal_hint(error, str(self.bridge.nested_run))
        if hint is None:
            return
        source = getattr(getattr(result, "info", None), "raw_cell", None)
        if isinstance(source, str) and source.lstrip().startswith("%%in_thread"):
            return  # refused there too: a loop the thread kept (the hint would go in circles)
        print(hint, file=sys.stderr)


def _put_back(expected: asyncio.AbstractEventLoop | None) -> None:
    """Make ``expected`` this thread's running loop again, with one line, if it is not.

    Not a loop that has stopped since: IPython without a kernel (an ``InteractiveShell``
    of its own) runs a cell that awaits at top level in a loop started after
    ``pre_execute`` and stopped before ``post_execute``.
    """
    found = get_running_loop_or_none()
    if found is expected or (expected is not None and not expected.is_running()):
        return
    set_running_loop(expected)
    print(_hijack_message(found, expected), file=sys.stderr)


def _hijack_message(
    found: asyncio.AbstractEventLoop | None, expected: asyncio.AbstractEventLoop | None
) -> str:
    if found is None:
        what = "cleared the running event loop of the kernel's thread"
    elif expected is None:
        what = f"left {_describe_loop(found)} as the running loop of this thread"
    else:
        what = f"left {_describe_loop(found)} as the running loop of the kernel's thread"
    return (
        f"asyncbridge_ext: this cell {what}, which stops the kernel from answering; put "
        "the kernel's loop back. A library object made in a %%in_thread cell (a "
        "Playwright browser or page, say) belongs to that %%in_thread worker thread and "
        "its loop: use it there, with `%in_thread EXPR` (e.g. `title = %in_thread "
        "page.title()`) or in a `%%in_thread` cell."
    )


def _describe_loop(loop: asyncio.AbstractEventLoop) -> str:
    """``the event loop <...> of thread 'name'``, as far as the thread can be told."""
    ident = loop_thread_id(loop, 0) or None  # asyncio's own loops, while they run
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    where = f" of thread {names[ident]!r}" if ident in names else ""
    return f"the event loop {loop!r}{where}"
