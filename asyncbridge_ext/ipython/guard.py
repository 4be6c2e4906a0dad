"""Before every cell: keep nested runs as ``AsyncBridge.nested_run`` says.

:class:`NestedRunGuard` is built by
:class:`~asyncbridge_ext.ipython.magics.AsyncBridgeMagics` and started by the nested-run
setup (:mod:`asyncbridge_ext.ipython.nested_setup`). At load, :meth:`~NestedRunGuard.start`
replaces a patch of the archived nest_asyncio already in force, makes a later
``nest_asyncio.apply()`` apply nest-asyncio2 instead, and registers the guard as a
``pre_run_cell`` hook. Before each cell the hook applies a nest patch that had to wait
for the kernel's loop, replaces an archived patch a library applied meanwhile, and puts
our nested-run wrappers back if another library replaced them, telling the user once
about each. :meth:`~NestedRunGuard.stop` (at unload) unregisters it and gives
``nest_asyncio.apply()`` back; a patch already applied stays until the kernel restarts.

Runs on the shell's thread, where the kernel's loop runs. No IPython import.
"""

from __future__ import annotations

import sys
from typing import Any, cast

from ..core.asyncio_internals import get_running_loop_or_none
from ..core.nest import NestAsyncio, NestBackend
from ..nested.redirect import NestedRunRedirect
from .options import AsyncBridge

__all__ = ["NestedRunGuard", "tell_user"]


class NestedRunGuard:
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
        # front of it, as when the patch is applied at load (see NestedRunSetup.apply).
        NestedRunRedirect.uninstall()
        NestedRunRedirect.install("nest", nest_backend=backend)

    def start(self, events: Any) -> None:
        """At load, before the mode is set up: replace an archived patch already in force,
        make a later ``nest_asyncio.apply()`` apply nest-asyncio2 instead, and register
        the hook with ``events`` (the shell's EventManager)."""
        self.check()
        if self.bridge.nest_backend != "nest_asyncio":
            NestAsyncio.intercept_archived_apply(on_call=self._tell_intercepted)
        events.register("pre_run_cell", self)

    def stop(self, events: Any) -> None:
        """At unload (or a load that failed): unregister the hook; ``nest_asyncio.apply()``
        is its own again."""
        NestAsyncio.release_archived_apply()
        try:
            events.unregister("pre_run_cell", self)
        except ValueError:
            pass  # someone removed it already

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
            tell_user(
                f"asyncbridge_ext: {name} was replaced by {what} and could not be put back: "
                f"nested runs through it no longer follow nested_run = {bridge.nested_run!r}."
            )

    def _tell_once(self, key: str, message: str) -> None:
        if key not in self.told:
            self.told.add(key)
            tell_user(message)


def tell_user(message: str) -> None:
    """Print one of the extension's notices to the cell's stderr."""
    # Printed, not warnings.warn: the warnings filter would show it only once per process.
    print(message, file=sys.stderr)
