"""The ``AsyncBridge`` configurable: every option of the IPython extension, in one place.

Set the options in a config file (``ipython_config.py`` or ``ipython_kernel_config.py``)::

    c.AsyncBridge.nested_run = "thread"
    c.AsyncBridge.timeout = 30

or at runtime with ``%config AsyncBridge.timeout = 30``; ``%config AsyncBridge`` lists them.
This module only declares and validates the options; the extension's Magics
(:mod:`asyncbridge_ext.ipython.magics`) reads them, and
:mod:`asyncbridge_ext.ipython.nested_setup` follows ``nested_run`` as it changes.
"""

from __future__ import annotations

import math
from inspect import cleandoc
from typing import Any

from traitlets import Enum, Float, TraitError, validate
from traitlets.config import Config, Configurable

__all__ = ["AsyncBridge", "bridge_for_shell"]


class AsyncBridge(Configurable):
    """Options of the asyncbridge_ext IPython extension (``%load_ext asyncbridge_ext``).

    Each help text goes through ``cleandoc``: traitlets 5.9+ strips the indentation of a
    help string's later lines itself, 5.7 (Colab's) does not and then shows ``%config
    AsyncBridge`` unwrapped, with the source's indentation.
    """

    nested_run = Enum(
        ["nest", "thread", "auto", "off"],
        default_value="nest",
        help=cleandoc(
            """How `asyncio.run(...)`, `asyncio.Runner`, `loop.run_until_complete(...)`
        and `loop.run_forever()` behave when called while the kernel's event loop is
        running (as it is in a Jupyter cell).
        "nest": make the loop re-entrant with a nest library when the extension loads
        (loaded from a config file: before the first cell; cannot be undone before a
        kernel restart; plain asyncio runs slower afterwards);
        asyncio.Runner, which no nest library serves, runs on a fresh loop.
        "thread": patch nothing of the nest kind; a nested call never runs on the kernel's
        loop: it runs on a fresh event loop, on the calling thread while the kernel's
        loop is paused. Waiting for a task of the kernel's own loop is refused with an error.
        "auto": as "thread", until a call waits for a task of the kernel's own loop;
        then nest-asyncio2 is applied to that loop, once, with a notice, and the call
        goes on.
        "off": change nothing; only the magics (%run_async, %%in_new_loop, %%in_thread,
        %asyncbridge) are added."""
        ),
    ).tag(config=True)

    timeout = Float(
        None,
        allow_none=True,
        help=cleandoc(
            """Default timeout in seconds for %run_async, %%in_new_loop and
        %in_thread / %%in_thread (None: no timeout). When it expires the work is stopped
        (a coroutine is cancelled and its finally blocks run; see the README for what
        %%in_thread can stop), then TimeoutError is raised. A magic's own --timeout
        option overrides it."""
        ),
    ).tag(config=True)

    nest_backend = Enum(
        ["auto", "nest_asyncio2", "nest_asyncio"],
        default_value="auto",
        help=cleandoc(
            """The library that makes the loop re-entrant when nested_run = "nest".
        "auto" uses nest_asyncio2 (the maintained fork, a dependency), unless asyncio
        was already patched by one of them; "nest_asyncio" needs
        `pip install 'asyncbridge-ext[nest-asyncio]'`. Takes effect when the extension
        loads; a patch already applied stays until the kernel restarts."""
        ),
    ).tag(config=True)

    @validate("timeout")
    def _check_timeout(self, proposal: Any) -> float | None:
        value = proposal["value"]
        if value is not None and (math.isnan(value) or value <= 0):
            raise TraitError(
                f"AsyncBridge.timeout must be a positive number of seconds or None, got "
                f"{value!r}. Set e.g. `%config AsyncBridge.timeout = 30`, or "
                f"`%config AsyncBridge.timeout = None` for no timeout."
            )
        return value  # type: ignore[no-any-return]


def bridge_for_shell(shell: Any) -> tuple[AsyncBridge, str | None]:
    """Make the ``AsyncBridge`` for ``shell``, reading the shell's config.

    Returns the configurable and, if the config holds an invalid value, the reason it
    was ignored. A value that ``%config`` rejected still ends up in ``shell.config``
    (IPython merges it there before our validator refuses it); it must not stop the
    extension from loading, so the defaults are used instead and the caller says why.
    """
    try:
        return AsyncBridge(parent=shell), None
    except TraitError as exc:
        return AsyncBridge(parent=shell, config=Config()), str(exc)
