"""asyncbridge_ext: run asyncio code from sync code inside Jupyter.

The helpers are plain Python and import no IPython::

    from asyncbridge_ext import run_coroutine_in_new_loop, run_in_thread, LoopThread, NestAsyncio

As an IPython extension (``%load_ext asyncbridge_ext``) it makes the kernel's loop
re-entrant (per ``AsyncBridge.nested_run``) and adds the ``%run_async`` and
``%%in_new_loop`` magics. The IPython-facing modules are imported only inside the two
extension hooks below, so ``import asyncbridge_ext`` stays IPython-free.
"""

from __future__ import annotations

from typing import Any

from .core import LoopThread, NestAsyncio, run_coroutine_in_new_loop, run_in_thread

__all__ = [
    "LoopThread",
    "NestAsyncio",
    "__version__",
    "load_ipython_extension",
    "run_coroutine_in_new_loop",
    "run_in_thread",
    "unload_ipython_extension",
]

__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext asyncbridge_ext``, on the kernel's main thread."""
    from .ipython.extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext asyncbridge_ext``: undo what loading did."""
    from .ipython.extension import unload

    unload(ipython)
