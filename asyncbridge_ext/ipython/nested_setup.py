"""Put the nested-run mode ``AsyncBridge.nested_run`` in force, at load and on ``%config``.

:class:`NestedRunSetup` is built by :class:`~asyncbridge_ext.ipython.magics.AsyncBridgeMagics`
with the options and the guard it built. :meth:`~NestedRunSetup.start` (at ``%load_ext``)
starts the guard, installs the mode's redirect of ``asyncio.run`` and friends and, in nest
mode with a loop running, applies the nest patch; it then follows the option, so
``%config AsyncBridge.nested_run = ...`` takes effect at once.
:meth:`~NestedRunSetup.stop` (at ``%unload_ext``) stops the guard, stops following the
option and uninstalls the redirect; a nest patch, once applied, stays until the
kernel restarts. What must be checked again before every cell (a patch of the archived
nest_asyncio, wrappers another library replaced) is the job of
:class:`~asyncbridge_ext.ipython.guard.NestedRunGuard`.

Everything here runs on the shell's thread (the one that loads the extension or runs
``%config``). No IPython import: the options object is used through traitlets' observe.
"""

from __future__ import annotations

from typing import Any, cast

from ..core.asyncio_internals import get_running_loop_or_none
from ..core.nest import NestAsyncio, NestBackend
from ..nested.redirect import NestedRunRedirect
from .guard import NestedRunGuard, tell_user
from .options import AsyncBridge

__all__ = ["NestedRunSetup"]


class NestedRunSetup:
    """The nested-run mode of one load of the extension, as ``bridge.nested_run`` says.

    ``guard`` is the load's :class:`~asyncbridge_ext.ipython.guard.NestedRunGuard`; it is
    started first, since an archived nest_asyncio patch already in force must be
    replaced before the mode is set up, and stopped again if the setup fails.
    """

    def __init__(self, bridge: AsyncBridge, guard: NestedRunGuard) -> None:
        self.bridge = bridge
        self.guard = guard

    def start(self, events: Any) -> None:
        """Start the guard (its hook goes to ``events``), put the configured mode in force,
        then follow the option's changes.

        If the mode cannot be set up (a loop the nest libraries cannot patch, a nest
        library that is missing), the error is raised and nothing stays behind.
        """
        self.guard.start(events)
        try:
            self.apply(old=None)
        except BaseException:
            self.guard.stop(events)
            raise
        self.bridge.observe(self._nested_run_changed, names="nested_run")

    def stop(self, events: Any) -> None:
        """Undo :meth:`start`: the guard, the observer, the redirect. Harmless when repeated."""
        self.guard.stop(events)
        self.bridge.unobserve(self._nested_run_changed, names="nested_run")
        NestedRunRedirect.uninstall()

    def _nested_run_changed(self, change: Any) -> None:
        """Observer: ``%config AsyncBridge.nested_run = ...`` takes effect at once.

        If the new mode cannot be set up (say, its nest library is missing), the option goes
        back to the mode still in effect and the error reaches the user.
        """
        try:
            self.apply(old=change.old)
        except Exception:
            self.bridge.nested_run = change.old
            raise

    def apply(self, old: str | None) -> None:
        """Make the nested-run mode ``bridge.nested_run`` (was ``old``) the active one."""
        mode = self.bridge.nested_run
        backend = cast(NestBackend, self.bridge.nest_backend)
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
            tell_user(
                f"asyncbridge_ext: AsyncBridge.nested_run is now {mode!r}, but the "
                f"{NestAsyncio.backend} patch applied earlier cannot be undone: the loop stays "
                f"re-entrant until the kernel restarts. To start without it, set "
                f"c.AsyncBridge.nested_run = {mode!r} in a config file and restart the kernel."
            )
