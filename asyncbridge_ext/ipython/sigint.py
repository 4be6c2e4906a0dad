"""Let "Interrupt kernel" reach bridged work in ipykernel 7 subshells.

How ipykernel handles SIGINT (read from ipykernel 6.29 and 7.4, ``kernelapp.py``,
``kernelbase.py``, ``ipkernel.py``):

- ``IPKernelApp.init_signal`` sets SIGINT to ``SIG_IGN``: while the main shell has no
  request to handle, the kernel ignores interrupts;
- around every main-shell request, ``Kernel.pre_handler_hook`` saves the current handler
  in ``kernel.saved_sigint_handler`` and installs ``signal.default_int_handler``;
  ``Kernel.post_handler_hook`` puts the saved one back;
- "Interrupt kernel" is a SIGINT to the kernel process: sent by the client
  (``interrupt_mode: "signal"``) or by the kernel to itself when the control channel
  gets an ``interrupt_request`` (``"message"``). Python runs signal handlers on the
  main thread only, so a subshell's thread never hears of it;
- a main-shell cell that awaits at top level gets its own SIGINT handler for as long as
  it runs (``IPythonKernel._cancel_on_sigint``, which cancels the cell's task and puts the
  previous handler back afterwards).

:class:`SigintForwarding` wraps the handler of each state in a :class:`ForwardingHandler`
that first calls :meth:`~asyncbridge_ext.core.interrupts.Interrupts.interrupt_off_main` (the
bridged calls waiting off the main thread raise ``KeyboardInterrupt`` there) and then
behaves exactly as the handler it wraps: ignore while idle, raise ``KeyboardInterrupt``
in the main thread while busy, cancel the async cell. The busy handler is wrapped right
after ``pre_handler_hook`` installs it; an async cell's handler is wrapped by a
``pre_execute`` callback (IPython's events), which runs inside the cell once ipykernel
has installed it. ipykernel's save/restore stays consistent: what it saves is already
wrapped, and what it restores replaces our wrapper of its own handler.
:meth:`SigintForwarding.uninstall` puts the original handlers and the hook back. The
extension's Magics installs it at load, only in kernels that have subshells
(:meth:`SigintForwarding.for_shell`), and uninstalls it at unload.

A side effect while installed: code that asks whether SIGINT is still Python's default
(``signal.getsignal(SIGINT) is signal.default_int_handler``, as ``asyncio.Runner`` and
trio do before installing their own) is told no, and leaves SIGINT to us: a Ctrl-C then
raises ``KeyboardInterrupt`` where the main thread is, as the default handler does.

No IPython import here: the kernel is used through the attributes named above.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from ..core.interrupts import INTERRUPTS
from ..core.names import name_of

__all__ = ["ForwardingHandler", "SigintForwarding"]

logger = logging.getLogger(__name__)


class ForwardingHandler:
    """A SIGINT handler: tell bridged work off the main thread, then act as ``previous``.

    Runs on the main thread (Python runs signal handlers there only). ``previous`` is
    ``signal.SIG_IGN`` (then the signal is ignored, as before) or a callable handler
    (then it is called, e.g. ``default_int_handler`` raises ``KeyboardInterrupt``).
    """

    def __init__(self, previous: Any) -> None:
        self.previous = previous

    def __call__(self, signum: int, frame: FrameType | None) -> Any:
        INTERRUPTS.interrupt_off_main()
        if callable(self.previous):
            return self.previous(signum, frame)
        return None

    def __repr__(self) -> str:
        return f"<asyncbridge_ext ForwardingHandler, then {self.previous!r}>"


def _wrappable(handler: Any) -> bool:
    """True for handlers we can wrap faithfully: ignore, or a Python callable of ours-or-not.

    ``SIG_DFL`` (terminate) and ``None`` (set from C) are left alone.
    """
    if isinstance(handler, ForwardingHandler):
        return False
    return handler is signal.SIG_IGN or callable(handler)


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class SigintForwarding:
    """Install / uninstall SIGINT forwarding on one ipykernel ``kernel`` object.

    Both methods may be called from any thread: off the main thread (a subshell's
    ``%load_ext``) the work is scheduled on the kernel's main loop, where it runs as
    soon as the main shell is free.
    """

    def __init__(self, kernel: Any, events: Any = None) -> None:
        self.kernel = kernel
        self.events = events  # the shell's EventManager, for pre_execute
        self.active = False
        self._original_pre_handler_hook: Any = None

    @classmethod
    def for_shell(cls, shell: Any) -> SigintForwarding | None:
        """The forwarding for ``shell``'s kernel, or ``None`` where none is needed.

        Only kernels with subshells (ipykernel 7: a shell channel thread) run cells off
        the main thread; elsewhere ipykernel's own handlers are left exactly as they are.
        """
        kernel = getattr(shell, "kernel", None)
        if getattr(kernel, "shell_channel_thread", None) is None:
            return None
        if not hasattr(kernel, "pre_handler_hook"):
            return None
        return cls(kernel, getattr(shell, "events", None))

    def install(self) -> None:
        """Wrap the SIGINT handler now in force, the one ipykernel saved, and future ones."""
        if not _on_main_thread():
            self._on_main_loop(self.install)
            return
        if self.active:
            return
        self.active = True
        self._wrap_current()
        saved = self.kernel.__dict__.get("saved_sigint_handler")
        if saved is not None and _wrappable(saved):
            # Loaded during a main-shell request: this is what post_handler_hook restores.
            self.kernel.saved_sigint_handler = ForwardingHandler(saved)
        self._original_pre_handler_hook = self.kernel.pre_handler_hook
        self.kernel.pre_handler_hook = self._pre_handler_hook
        if self.events is not None:
            self.events.register("pre_execute", self._pre_execute)
        logger.debug("SIGINT forwarding to bridged work off the main thread installed")

    def uninstall(self) -> None:
        """Put back the handlers and the hook that :meth:`install` wrapped."""
        if not _on_main_thread():
            self._on_main_loop(self.uninstall)
            return
        if not self.active:
            return
        self.active = False
        if self.kernel.__dict__.get("pre_handler_hook") == self._pre_handler_hook:
            del self.kernel.pre_handler_hook  # the class's own hook is back
        if self.events is not None:
            try:
                self.events.unregister("pre_execute", self._pre_execute)
            except ValueError:
                pass  # already gone
        current = signal.getsignal(signal.SIGINT)
        if isinstance(current, ForwardingHandler):
            signal.signal(signal.SIGINT, current.previous)
        saved = self.kernel.__dict__.get("saved_sigint_handler")
        if isinstance(saved, ForwardingHandler):
            self.kernel.saved_sigint_handler = saved.previous
        logger.debug("SIGINT forwarding uninstalled")

    def state(self) -> str:
        """What is in force now, in a few words, for ``%asyncbridge``."""
        if not self.active:
            return "not installed"
        current = signal.getsignal(signal.SIGINT)
        if isinstance(current, ForwardingHandler):
            return "installed"
        return f"installed, but SIGINT is handled by {name_of(current, with_module=True)} right now"

    def _pre_handler_hook(self) -> None:
        """ipykernel's hook, then wrap the busy handler it installed (main thread only)."""
        self._original_pre_handler_hook()
        if self.active and _on_main_thread():
            self._wrap_current()

    def _pre_execute(self) -> None:
        """IPython event, inside the cell: wrap an async cell's own handler (main thread)."""
        if self.active and _on_main_thread():
            self._wrap_current()

    def _wrap_current(self) -> None:
        current = signal.getsignal(signal.SIGINT)
        if _wrappable(current):
            signal.signal(signal.SIGINT, ForwardingHandler(current))

    def _on_main_loop(self, step: Any) -> None:
        io_loop = getattr(self.kernel, "io_loop", None)
        if io_loop is None:
            logger.debug("no kernel loop to reach the main thread; SIGINT left alone")
            return
        io_loop.add_callback(step)
