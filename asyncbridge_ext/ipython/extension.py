"""Load and unload the asyncbridge_ext IPython extension.

``%load_ext asyncbridge_ext`` (or ``c.InteractiveShellApp.extensions = ["asyncbridge_ext"]``
in a config file) calls :func:`load`: it reads the ``AsyncBridge`` options, sets up nested
runs as ``AsyncBridge.nested_run`` says, registers ``%run_async``, ``%%in_new_loop``,
``%%in_thread``/``%in_thread`` and ``%asyncbridge``, the cell hooks of
:class:`~asyncbridge_ext.ipython.cell_watch.CellWatch` (the kernel's running loop put back after
a cell that replaced it, a pointer to the fix after a known refusal), a ``pre_run_cell`` guard
(:class:`_NestedRunGuard`: before every cell, a patch of the archived nest_asyncio is
replaced by nest-asyncio2, and the nested-run wrappers are put back if another library
replaced them), and (in a kernel with subshells) lets "Interrupt kernel" reach bridged
work in subshells. ``%unload_ext`` calls :func:`unload`, which removes the magics, the
guard, the configurable, the SIGINT forwarding and the notebook log handler, and
uninstalls the wrappers; the nest patch, once applied, stays until the kernel restarts.
``%reload_ext`` is unload then load: options set by config files or ``%config`` live in
the shell's config, so they are read again and survive a reload.
"""

from __future__ import annotations

import sys
from typing import Any, cast

from ..core.asyncio_internals import get_running_loop_or_none
from ..core.nest import NestAsyncio, NestBackend
from ..nested.redirect import NestedRunRedirect
from .cell_watch import CellWatch
from .diagnostics import Diagnostics
from .magics import AsyncBridgeMagics
from .options import AsyncBridge, bridge_for_shell

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
    guard = _NestedRunGuard(bridge)
    guard.check()
    guard.intercept()
    try:
        _apply_nested_run(bridge, old=None)
    except BaseException:
        guard.release()  # nothing stays behind when loading fails
        raise
    bridge.observe(_nested_run_changed, names="nested_run")
    magics = AsyncBridgeMagics(shell, bridge)
    manager = shell.magics_manager
    for kind, names in magics.magics.items():
        for name in names:
            magics.displaced[kind, name] = manager.magics[kind].get(name)
    shell.register_magics(magics)
    shell.configurables.append(bridge)
    magics.guard = guard
    shell.events.register("pre_run_cell", guard)
    magics.cell_watch = CellWatch(bridge)
    magics.cell_watch.register(shell.events)
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
    bridge, guard, cell_watch = magics.bridge, magics.guard, magics.cell_watch
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
    if guard is not None:
        guard.release()
        try:
            shell.events.unregister("pre_run_cell", guard)
        except ValueError:
            pass  # someone removed it already
    if cell_watch is not None:
        cell_watch.unregister(shell.events)
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
    backend = cast(NestBackend, bridge.nest_backend)
    if mode == "nest" and get_running_loop_or_none() is not None:
        # With no loop running yet (loaded from a config file, before the kernel's loop
        # starts), the guard applies it before the first cell (see apply_nest_patch).
        NestAsyncio.apply_once(backend=backend)
    if mode == "off":
        NestedRunRedirect.uninstall()
    else:
        NestedRunRedirect.install(mode, nest_backend=backend)
    if mode == "nest" or NestAsyncio.backend is None:
        return
    if old in ("nest", "auto"):
        _tell_user(
            f"asyncbridge_ext: AsyncBridge.nested_run is now {mode!r}, but the "
            f"{NestAsyncio.backend} patch applied earlier cannot be undone: the loop stays "
            f"re-entrant until the kernel restarts. To start without it, set "
            f"c.AsyncBridge.nested_run = {mode!r} in a config file and restart the kernel."
        )


class _NestedRunGuard:
    """Keeps nested runs safe between cells; one per load, called as ``pre_run_cell`` hook.

    Runs on the shell's thread (at load and before each cell), where the kernel's loop
    runs. It replaces a patch of the archived nest_asyncio by nest-asyncio2 (unless the
    user chose that library as ``nest_backend``) and puts our nested-run wrappers back if
    another library replaced them, telling the user once about each.
    """

    def __init__(self, bridge: AsyncBridge) -> None:
        self.bridge = bridge
        self.told: set[str] = set()

    def __call__(self, info: Any = None) -> None:
        """The hook: a few attribute reads and identity checks when all is well."""
        if self.bridge.nested_run == "nest" and NestAsyncio.backend is None:
            self.apply_nest_patch()
        if NestAsyncio.archived_in_force or (
            self.bridge.nested_run != "off" and not NestedRunRedirect.installed
        ):
            self.check()

    def apply_nest_patch(self) -> None:
        """Nest mode: make the loop running in this thread re-entrant, if one runs.

        Loading from a config file happens before the kernel's loop starts; patching then
        would patch asyncio's loop *policy*, which makes every later ``get_event_loop()``
        raise for a loop the nest libraries cannot patch (a uvloop policy killed the
        kernel at start). So the patch waits for the first cell, which runs in the
        kernel's loop. A loop that cannot be patched is said once, with the fix; the
        kernel goes on.
        """
        if get_running_loop_or_none() is None:
            return
        backend = cast(NestBackend, self.bridge.nest_backend)
        try:
            NestAsyncio.apply_once(backend=backend)
        except (RuntimeError, ImportError) as exc:
            message = f"asyncbridge_ext: nested_run = 'nest' is not in force: {exc}"
            self._tell_once("nest failed", message)
            return
        # The nest library put its asyncio.run in place of our wrapper; ours goes back in
        # front of it, as when the patch is applied at load (see _apply_nested_run).
        NestedRunRedirect.uninstall()
        NestedRunRedirect.install("nest", nest_backend=backend)

    def intercept(self) -> None:
        """At load: a later ``nest_asyncio.apply()`` applies nest-asyncio2 instead."""
        if self.bridge.nest_backend != "nest_asyncio":
            NestAsyncio.intercept_archived_apply(on_call=self._tell_intercepted)

    def release(self) -> None:
        """At unload: undo :meth:`intercept`."""
        NestAsyncio.release_archived_apply()

    def _tell_intercepted(self) -> None:
        where = NestAsyncio.applied_for or "an unknown place"
        self._tell_once(
            "intercepted",
            f"asyncbridge_ext: a library called nest_asyncio.apply() (at {where}; the "
            "archived nest_asyncio, which loses the cells queued behind a nested run on "
            "ipykernel 7); applied nest-asyncio2 instead. The loop stays re-entrant until "
            "the kernel restarts.",
        )
        if self.bridge.nested_run in ("thread", "auto"):
            NestedRunRedirect.restore()  # nest-asyncio2 replaced asyncio.run

    def check(self) -> None:
        bridge = self.bridge
        # What replaced our wrappers, read before nest-asyncio2 replaces it in turn.
        replaced = NestedRunRedirect.replaced()
        if bridge.nest_backend != "nest_asyncio":
            found = NestAsyncio.replace_archived()
            if found is not None:
                self._tell_once(
                    "archived",
                    f"asyncbridge_ext: asyncio was patched by the archived {found} (a "
                    "library you use may have called nest_asyncio.apply()); on ipykernel 7 "
                    "it loses the cells queued behind a nested asyncio.run. Replaced it with "
                    "nest-asyncio2, which keeps them; the loop stays re-entrant until the "
                    "kernel restarts.",
                )
        if bridge.nested_run == "off" or NestedRunRedirect.mode != bridge.nested_run:
            return
        restored, failed = NestedRunRedirect.restore()
        for name in restored:
            what = replaced.get(name, restored[name])
            self._tell_once(
                name,
                f"asyncbridge_ext: {name} had been replaced by {what}; put the "
                f"nested_run = {bridge.nested_run!r} wrapper back.",
            )
        for name in failed:
            what = replaced.get(name, failed[name])
            _tell_user(
                f"asyncbridge_ext: {name} was replaced by {what} and could not be put back: "
                f"nested runs through it no longer follow nested_run = {bridge.nested_run!r}."
            )

    def _tell_once(self, key: str, message: str) -> None:
        if key not in self.told:
            self.told.add(key)
            _tell_user(message)


def _tell_user(message: str) -> None:
    # Printed, not warnings.warn: the warnings filter would show it only once per process.
    print(message, file=sys.stderr)
