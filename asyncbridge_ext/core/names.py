"""How messages and reports name a function, a handler or whatever else they were handed.

One helper for every module that words an error or a report line (``run_in_thread``'s
refusals, the awaitable checks, the nested-run status, the SIGINT report). Pure, any thread.
"""

from __future__ import annotations

__all__ = ["name_of"]


def name_of(obj: object, *, with_module: bool = False) -> str:
    """``obj``'s qualified name (``module.name`` with ``with_module``).

    Something with no name is ``<its type> object`` (``partial object``), or its ``repr``
    with ``with_module`` (a signal handler such as ``<Handlers.SIG_DFL: 0>``).

    A function defined inside another is named by its own name when the module is given
    (``nest_asyncio.run``, not ``nest_asyncio._patch_asyncio.<locals>.run``).
    """
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if not isinstance(name, str):
        return repr(obj) if with_module else f"{type(obj).__name__} object"
    if not with_module:
        return name
    if "<locals>" in name:
        own = getattr(obj, "__name__", None)
        name = own if isinstance(own, str) else name
    module = getattr(obj, "__module__", None)
    return f"{module}.{name}" if isinstance(module, str) and module else name
