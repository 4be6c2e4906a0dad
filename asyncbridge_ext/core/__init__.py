"""The plain core: the standard library only, never IPython, traitlets or a nest library.

Public here (and re-exported by :mod:`asyncbridge_ext`):

- :func:`~.new_loop.run_coroutine_in_new_loop`: a coroutine on a fresh loop in a worker thread;
- :class:`~.loop_thread.LoopThread`: one persistent loop on one daemon thread;
- :func:`~.in_thread.run_in_thread`: sync code on a worker thread where no loop runs;
- :data:`~.nest.NestAsyncio`: a re-entrant event loop, applied once, through nest-asyncio2
  (imported only when applied).

The other public modules serve the rest of the package: :mod:`.activity` (counters for
``%asyncbridge``), :mod:`.workers` (how many worker threads both pools run now),
:mod:`.waiting` (the one bounded wait, its defaults, and the coercion of awaitables),
:mod:`.interrupts` (interrupting bridged work off the main thread),
:mod:`.loops` (finding running loops and cancelling their tasks), :mod:`.environment`
(installed versions and known-bad ones) and :mod:`.asyncio_internals` (every private name
of asyncio the package reads). The ``_x`` modules are private to this subpackage.
"""

from __future__ import annotations

from .in_thread import run_in_thread
from .loop_thread import LoopThread
from .nest import NestAsyncio
from .new_loop import run_coroutine_in_new_loop

__all__ = ["LoopThread", "NestAsyncio", "run_coroutine_in_new_loop", "run_in_thread"]
