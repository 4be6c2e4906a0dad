"""Load and unload the asyncbridge_ext IPython extension: create, register, unregister.

``%load_ext asyncbridge_ext`` (or ``c.InteractiveShellApp.extensions = ["asyncbridge_ext"]``
in a config file) calls :func:`load`; ``%unload_ext`` calls :func:`unload`;
``%reload_ext`` is unload then load. What a load puts in force (the ``AsyncBridge``
options, the nested-run mode and its ``pre_run_cell`` guard, the per-cell hooks, the
SIGINT forwarding for subshells, the notebook log) is built and undone by
:class:`~asyncbridge_ext.ipython.magics.AsyncBridgeMagics` itself, as IPython's autoreload
Magics builds its reloader; this module only creates it and registers it, its magics
(``%run_async``, ``%%in_new_loop``, ``%%in_thread``/``%in_thread``, ``%asyncbridge``) and
its configurable. Options set by config files or ``%config`` live in the shell's config,
so a reload reads them again. The nest patch, once applied, stays until the kernel
restarts.
"""

from __future__ import annotations

from typing import Any

from .magics import AsyncBridgeMagics

__all__ = ["load", "unload"]


def load(shell: Any) -> None:
    """Create the Magics, start it, register it and its options. Runs on the shell's thread.

    Loading twice without unloading changes nothing. If the nested-run mode cannot be set
    up (e.g. a loop the nest libraries cannot patch), the error is raised and nothing is
    registered.
    """
    if _loaded_magics(shell) is not None:
        return
    magics = AsyncBridgeMagics(shell)
    magics.start()
    manager = shell.magics_manager
    for kind, names in magics.magics.items():
        for name in names:
            magics.displaced[kind, name] = manager.magics[kind].get(name)
    shell.register_magics(magics)
    shell.configurables.append(magics.bridge)


def unload(shell: Any) -> None:
    """Undo :func:`load`: magics, configurable, then what the Magics started.

    Unloading twice is harmless. Magics that ours displaced are put back.
    """
    magics = _loaded_magics(shell)
    if magics is None:
        return
    _put_back_displaced(shell.magics_manager, magics)
    shell.magics_manager.registry.pop(type(magics).__name__, None)
    while magics.bridge in shell.configurables:
        shell.configurables.remove(magics.bridge)
    magics.stop()


def _loaded_magics(shell: Any) -> AsyncBridgeMagics | None:
    magics = shell.magics_manager.registry.get(AsyncBridgeMagics.__name__)
    return magics if isinstance(magics, AsyncBridgeMagics) else None


def _put_back_displaced(manager: Any, magics: AsyncBridgeMagics) -> None:
    """Put back in the magics table what our magics replaced at load."""
    for (kind, name), previous in magics.displaced.items():
        current = manager.magics[kind].get(name)
        if getattr(current, "__self__", None) is not magics:
            continue  # someone replaced our magic since; leave theirs alone
        if previous is None:
            del manager.magics[kind][name]
        else:
            manager.magics[kind][name] = previous
