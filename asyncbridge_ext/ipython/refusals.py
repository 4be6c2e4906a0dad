"""The known refusals: errors libraries raise when an event loop runs in the calling thread.

One table, :data:`KNOWN_REFUSALS`, of small records (the exception's type, a pattern its
message matches, the one line to print after the traceback), and :func:`refusal_hint`,
which finds the line for an exception. The extension prints that line after a cell's
traceback (see :mod:`asyncbridge_ext.ipython.cell_watch`); the exception itself is never
changed. Standard library only, no IPython. To add a library, add one record and a test
with the library's exact message (tests/ipython/test_refusals.py).

Types are named, not imported (``"builtins.RuntimeError"``,
``"playwright._impl._errors.Error"``), so no library is imported to recognise its error;
an exception matches if its class or one of its bases has that name.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["KNOWN_REFUSALS", "Refusal", "refusal_hint"]

_IN_THREAD = (
    "asyncbridge_ext: {what} refuses to run while an event loop runs in the calling thread "
    "(a notebook cell always has one); it works on a thread with none: run the call as "
    "`%in_thread EXPR` (e.g. `result = %in_thread {example}`) or put the code in a "
    "`%%in_thread` cell."
)

_MODES = (
    "asyncbridge_ext: AsyncBridge.nested_run is 'off', so {what} refuses inside a cell. "
    'Choose a mode: `%config AsyncBridge.nested_run = "thread"` runs it as a script '
    'would (a loop of its own, the kernel\'s loop paused), "auto" does that and makes the '
    'kernel\'s loop re-entrant when a call needs it, "nest" makes it re-entrant at once.'
)


class Refusal(NamedTuple):
    """One known refusal: which error, how its message reads, what to print after it."""

    #: Qualified names of the exception class (or a base of it), ``module.QualName``.
    types: tuple[str, ...]
    #: Searched for in ``str(exception)``.
    pattern: re.Pattern[str]
    #: The line printed after the traceback.
    hint: str
    #: Only in these ``AsyncBridge.nested_run`` modes (empty: in every mode).
    modes: tuple[str, ...] = ()


KNOWN_REFUSALS: tuple[Refusal, ...] = (
    Refusal(  # gql: sync Client.execute over an async transport (an assert)
        ("builtins.AssertionError",),
        re.compile(r"Cannot run client\.execute\(query\) if an asyncio loop is running"),
        _IN_THREAD.format(what="gql's Client.execute", example="client.execute(query)"),
    ),
    Refusal(  # openai-agents: Runner.run_sync (named AgentRunner.run_sync since 0.2)
        ("builtins.RuntimeError",),
        re.compile(r"\b(?:Agent)?Runner\.run_sync\(\) cannot be called when an event loop"),
        _IN_THREAD.format(
            what="openai-agents' Runner.run_sync", example="Runner.run_sync(agent, prompt)"
        ),
    ),
    Refusal(  # anyio.run (and so mcp's examples)
        ("builtins.RuntimeError",),
        re.compile(r"^Already running \w+ in this thread$"),
        _IN_THREAD.format(what="anyio.run", example="anyio.run(main)"),
    ),
    Refusal(  # asgiref: async_to_sync
        ("builtins.RuntimeError",),
        re.compile(r"You cannot use AsyncToSync in the same thread as an async event loop"),
        _IN_THREAD.format(what="asgiref's async_to_sync", example="async_to_sync(fetch)()"),
    ),
    Refusal(  # Playwright's sync API (its Error class moved from _api_types to _errors)
        ("playwright._impl._errors.Error", "playwright._impl._api_types.Error"),
        re.compile(r"using Playwright Sync API inside the asyncio loop"),
        _IN_THREAD.format(what="Playwright's sync API", example="page.title()")
        + " Its objects (browser, page) then belong to that worker thread: use them "
        "only there.",
    ),
    Refusal(
        ("builtins.RuntimeError",),
        re.compile(r"^asyncio\.run\(\) cannot be called from a running event loop$"),
        _MODES.format(what="asyncio.run"),
        modes=("off",),
    ),
    Refusal(
        ("builtins.RuntimeError",),
        re.compile(r"^This event loop is already running$"),
        _MODES.format(what="loop.run_until_complete"),
        modes=("off",),
    ),
)


def refusal_hint(
    error: BaseException, mode: str, table: tuple[Refusal, ...] = KNOWN_REFUSALS
) -> str | None:
    """The line to print after ``error``'s traceback, or ``None`` for an unknown error.

    ``mode`` is ``AsyncBridge.nested_run``. Reads the exception's class names and
    message only; never changes the exception.
    """
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in type(error).__mro__}
    try:
        message = str(error)
    except Exception:  # a broken __str__ is the user's; it only means no hint
        return None
    for refusal in table:
        if refusal.modes and mode not in refusal.modes:
            continue
        if names.intersection(refusal.types) and refusal.pattern.search(message):
            return refusal.hint
    return None
