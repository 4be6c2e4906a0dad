"""The core's one bounded wait and its defaults, public for the rest of the package.

:func:`wait_bounded` is the timeout / Ctrl-C / abandon logic that every bridged call
of the core waits with (``run_coroutine_in_new_loop``, ``LoopThread.run``,
``run_in_thread``); the extension waits with it too, e.g. for a future served on a
re-entrant loop. :func:`as_coroutine` turns what a caller passed into the coroutine a
loop runs, refusing what cannot run there with an error that says what to pass.
Standard library only.
"""

from __future__ import annotations

from ._awaitables import as_coroutine
from ._call import DEFAULT_CANCEL_GRACE, CallTimeoutError, wait_bounded

__all__ = ["DEFAULT_CANCEL_GRACE", "CallTimeoutError", "as_coroutine", "wait_bounded"]
