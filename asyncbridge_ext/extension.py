"""Load and unload the asyncbridge_ext IPython extension.

``%load_ext asyncbridge_ext`` (or ``c.InteractiveShellApp.extensions = ["asyncbridge_ext"]``
in a config file) calls :func:`load`: it reads the ``AsyncBridge`` options, sets up nested
runs as ``AsyncBridge.nested_run`` says, registers ``%run_async``, ``%%in_new_loop`` and
``%asyncbridge``, and (in a kernel) lets "Interrupt kernel" reach bridged work in
subshells. ``%unload_ext`` calls :func:`unload`, which removes the magics, the
configurable, the SIGINT forwarding and the notebook log handler, and uninstalls thread
mode; the nest patch, once applied, stays until the kernel restarts.
``%reload_ext`` is unload then load: options set by config files or ``%config`` live in
the shell's config, so they are read again and survive a reload.
"""

from __future__ import annotations

import sys
from typing import Any, cast

from .config import AsyncBridge, bridge_for_shell
from .diagnostics import Diagnostics
from .magics import AsyncBridgeMagics
from .nest import NestAsyncio, NestBackend
from .thread_mode import NestedRunRedirect

__all__ = ["load", "unload"]


def load(shell: Any) -> None:
    """Set up nested runs per ``AsyncBridge.nested_run`` and register the magics.

    Runs on the shell's thread. Loading twice without unloading changes nothing. If
    setting up the nested-run mode fails (e.g. a loop the nest libraries cannot patch),
    the error is raised and nothing is registered.
    """
    if _loaded_magics(shell) is not None:
        return
    bridge, problem = bridge_for_shell(shell)
    if problem is not None:
        _tell_user(
            f"asyncbridge_ext: ignoring the AsyncBridge config and using the defaults: {problem}"
        )
    _apply_nested_run(bridge, old=None)
    bridge.observe(_nested_run_changed, names="nested_run")
    magics = AsyncBridgeMagics(shell, bridge)
    manager = shell.magics_manager
    for kind, names in magics.magics.items():
        for name in names:
            magics.displaced[kind, name] = manager.magics[kind].get(name)
    shell.register_magics(magics)
    shell.configurables.append(bridge)
    magics.diagnostics = Diagnostics(shell, bridge)
    magics.diagnostics.start()


def unload(shell: Any) -> None:
    """Undo :func:`load`: magics, configurable, thread mode. Unloading twice is harmless.

    Magics that ours displaced are put back. The nest patch cannot be undone in a
    running process and stays until the kernel restarts.
    """
    magics = _loaded_magics(shell)
    if magics is None:
        return
    bridge = magics.bridge
    if magics.diagnostics is not None:
        magics.diagnostics.stop()
        magics.diagnostics = None
    manager = shell.magics_manager
    for (kind, name), previous in magics.displaced.items():
        current = manager.magics[kind].get(name)
        if getattr(current, "__self__", None) is not magics:
            continue  # someone replaced our magic since; leave theirs alone
        if previous is None:
            del manager.magics[kind][name]
        else:
            manager.magics[kind][name] = previous
    manager.registry.pop(type(magics).__name__, None)
    bridge.unobserve(_nested_run_changed, names="nested_run")
    while bridge in shell.configurables:
        shell.configurables.remove(bridge)
    NestedRunRedirect.uninstall()


def _loaded_magics(shell: Any) -> AsyncBridgeMagics | None:
    magics = shell.magics_manager.registry.get(AsyncBridgeMagics.__name__)
    return magics if isinstance(magics, AsyncBridgeMagics) else None


def _nested_run_changed(change: Any) -> None:
    """Observer: ``%config AsyncBridge.nested_run = ...`` takes effect at once.

    If the new mode cannot be set up (say, its nest library is missing), the option goes
    back to the mode still in effect and the error reaches the user.
    """
    try:
        _apply_nested_run(change.owner, old=change.old)
    except Exception:
        change.owner.nested_run = change.old
        raise


def _apply_nested_run(bridge: AsyncBridge, old: str | None) -> None:
    """Make the nested-run mode ``bridge.nested_run`` (was ``old``) the active one."""
    mode = bridge.nested_run
    if mode == "thread":
        NestedRunRedirect.install()
    else:
        NestedRunRedirect.uninstall()
    if mode == "nest":
        NestAsyncio.apply_once(backend=cast(NestBackend, bridge.nest_backend))
    elif old == "nest" and NestAsyncio.backend is not None:
        _tell_user(
            f"asyncbridge_ext: AsyncBridge.nested_run is now {mode!r}, but the "
            f"{NestAsyncio.backend} patch applied earlier cannot be undone: the loop stays "
            f"re-entrant until the kernel restarts. To start without it, set "
            f"c.AsyncBridge.nested_run = {mode!r} in a config file and restart the kernel."
        )


def _tell_user(message: str) -> None:
    # Printed, not warnings.warn: the warnings filter would show it only once per process.
    print(message, file=sys.stderr)
