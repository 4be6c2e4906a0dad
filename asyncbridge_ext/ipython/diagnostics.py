"""``%asyncbridge``: what is in force, what happened since load, and what is known to be bad.

:class:`Diagnostics` is built by the extension's Magics when it loads and only reports:
it holds the activity snapshot taken then, and reads the state of the notebook log
handler (``%asyncbridge --log``) and of the SIGINT forwarding (which lets "Interrupt
kernel" reach bridged work in ipykernel 7 subshells) that the Magics owns and installs.
:meth:`Diagnostics.report` reads the live objects (asyncio's functions, the loop's class,
the threads alive) each time it is called, so the report says what *is*, not what we
meant to do. The text form is one
``key: value`` line per fact in a fixed order, then one ``warning:`` line per problem
found, each ending with its fix; ``--json`` gives the same facts as JSON.

Everything here runs on the thread of the cell that calls ``%asyncbridge`` (the main
shell's, or a subshell's). The shell and kernel are used through a few attributes, so
nothing here imports IPython.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from typing import Any

from .. import __version__
from ..core.activity import ACTIVITY
from ..core.environment import Finding, installed_version, nest_library_findings, python_version
from ..core.nest import NestAsyncio
from ..core.workers import worker_status
from ..nested.in_force import thread_mode_wrappers
from .notebook_log import NotebookLog
from .sigint import SigintForwarding

__all__ = ["Diagnostics", "render_text"]

_NESTED_RUN_ROUTES = ("same_thread", "reentrant", "auto_fallback", "refused")


class Diagnostics:
    """The state ``%asyncbridge`` needs for one load of the extension in ``shell``.

    ``sigint`` is the load's SIGINT forwarding (``None`` where none is needed), ``log``
    its notebook log; both are read, never installed or removed, here.
    """

    def __init__(
        self, shell: Any, bridge: Any, sigint: SigintForwarding | None, log: NotebookLog
    ) -> None:
        self.shell = shell
        self.bridge = bridge
        self.at_load = ACTIVITY.snapshot()
        self.log = log
        self.sigint = sigint
        kernel = getattr(shell, "kernel", None)
        self.no_forwarding = "not in a kernel" if kernel is None else "not needed (no subshells)"

    def render(self, *, as_json: bool) -> str:
        """The report as ``%asyncbridge`` prints it: text lines, or JSON with ``--json``."""
        facts = self.report()
        return json.dumps(facts, indent=2) if as_json else render_text(facts)

    def report(self) -> dict[str, Any]:
        """Every fact of the report, in display order; ``warnings`` last."""
        mode = str(self.bridge.nested_run)
        loop = _kernel_loop(self.shell)
        nest_patch = NestAsyncio.backend
        since = ACTIVITY.since(self.at_load)
        threads = [thread.name for thread in threading.enumerate()]
        pools = worker_status()
        fresh = pools["run_coroutine_in_new_loop"]
        wrappers = thread_mode_wrappers(mode, loop)
        facts: dict[str, Any] = {
            "python": python_version(),
            "python_executable": sys.executable,
            "ipython": _version("ipython"),
            "ipykernel": _version("ipykernel"),
            "jupyter_client": _version("jupyter-client"),
            "asyncbridge_ext": __version__,
            "nest_asyncio2": _version("nest-asyncio2"),
            "nest_asyncio": _nest_asyncio_version(),
            "mode": mode,
            "nest_patch": nest_patch or "none",
            "nest_patch_cause": _nest_patch_cause(),
            "kernel_loop": _class_name(loop) if loop is not None else "none running",
            "kernel_loop_reentrant": bool(getattr(type(loop), "_nest_patched", False)),
            "thread_wrappers": wrappers,
            "shell": _which_shell(self.shell),
            "interrupt_forwarding": self.sigint.state() if self.sigint else self.no_forwarding,
            "log": self.log.level_name,
            "nested_runs": {
                route: since.get(f"nested_run.{route}", 0) for route in _NESTED_RUN_ROUTES
            },
            "magic_calls": {
                name.removeprefix("magic."): count
                for name, count in since.items()
                if name.startswith("magic.")
            },
            "timeouts": since.get("timeout", 0),
            "interrupts": since.get("interrupt", 0),
            "abandoned": since.get("abandoned", 0),
            "abandoned_running": ACTIVITY.abandoned_running(),
            "worker_threads": {"busy": fresh["busy"] + fresh["abandoned"], "idle": fresh["idle"]},
            "loop_threads": _count_named(threads, "asyncbridge-loop-"),
            "run_in_thread_threads": pools["run_in_thread"],
        }
        findings = _findings(facts, loop)
        facts["warnings"] = [{"problem": f.problem, "fix": f.fix} for f in findings]
        return facts


def render_text(facts: dict[str, Any]) -> str:
    """The report as plain ``key: value`` lines, warnings last (the same facts as the JSON)."""
    lines = [f"{key}: {_as_text(value)}" for key, value in facts.items() if key != "warnings"]
    lines += [Finding(**warning).as_line() for warning in facts["warnings"]]
    return "\n".join(lines)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return " ".join(f"{key}={count}" for key, count in value.items()) or "none"
    if isinstance(value, list):
        return f"{len(value)}" + "".join(f"; {item}" for item in value)
    return str(value)


def _findings(facts: dict[str, Any], loop: asyncio.AbstractEventLoop | None) -> list[Finding]:
    """A warning, with its fix, for every known-bad combination in ``facts``."""
    findings = [
        finding
        for finding in nest_library_findings()
        if not finding.problem.startswith("the archived")  # installed only: not a problem
        and (facts["mode"] != "thread" or "not installed" not in finding.problem)
    ]
    if facts["nest_patch"] == "nest_asyncio":
        findings.append(
            Finding(
                "asyncio is patched by the archived nest_asyncio (something called "
                "nest_asyncio.apply(); llama-index and ib_async do). On ipykernel 7 the cells "
                "queued behind a nested run can then be lost.",
                "restart the kernel and have asyncbridge_ext loaded before that library runs "
                "(python -m asyncbridge_ext enable; nested_run = 'nest'): asyncio is then "
                "patched by nest-asyncio2 and nest_asyncio.apply() changes nothing.",
            )
        )
    if facts["mode"] in ("thread", "auto") and NestAsyncio.applied_for is not None:
        findings.append(
            Finding(
                f"a library called nest_asyncio.apply() at {NestAsyncio.applied_for}, so "
                "asyncbridge_ext nest-patched the kernel's loop (with nest-asyncio2) although "
                f"nested_run is {facts['mode']!r}; the patch lasts until the kernel restarts, "
                "and asyncio in the kernel runs at nest mode's speed until then.",
                "restart the kernel for an unpatched loop; if that library always needs it, "
                "nested_run = 'nest' says so from the start.",
            )
        )
    if facts["mode"] == "nest" and loop is not None and not facts["kernel_loop_reentrant"]:
        if isinstance(loop, asyncio.BaseEventLoop):
            findings.append(
                Finding(
                    f"nested_run is 'nest' but the kernel's loop ({facts['kernel_loop']}) is "
                    "not re-entrant, so a nested asyncio.run fails.",
                    "`%reload_ext asyncbridge_ext` patches the running loop.",
                )
            )
        else:
            findings.append(
                Finding(
                    f"nested_run is 'nest' but the kernel's loop is {facts['kernel_loop']}, "
                    "which the nest libraries cannot patch, so a nested asyncio.run fails.",
                    '`%config AsyncBridge.nested_run = "thread"` (nested runs then get a '
                    "fresh loop of their own while the kernel's loop waits).",
                )
            )
    if facts["thread_wrappers"].startswith("replaced"):
        findings.append(
            Finding(
                f"nested_run = {facts['mode']!r} is on but its wrappers are "
                f"{facts['thread_wrappers']}, so nested runs through them no longer follow it.",
                "the next cell puts them back (the extension checks before every cell); if a "
                "nest library keeps replacing them, `%config AsyncBridge.nested_run = "
                '"nest"` fits better.',
            )
        )
    if facts["abandoned_running"]:
        findings.append(
            Finding(
                f"{len(facts['abandoned_running'])} abandoned coroutine(s) or thread(s) still "
                "running: they ignored cancellation past their grace period and still hold "
                "whatever they opened.",
                "let cancelled code re-raise asyncio.CancelledError (and avoid blocking sync "
                "calls in coroutines); restart the kernel to stop what is still running.",
            )
        )
    return findings


def _nest_patch_cause() -> str:
    """Who made asyncbridge_ext patch asyncio, when a library's nest_asyncio.apply() did."""
    if NestAsyncio.applied_for is None:
        return "none"
    return f"nest_asyncio.apply() at {NestAsyncio.applied_for} (lasts until restart)"


def _count_named(names: list[str], prefix: str) -> int:
    return sum(name.startswith(prefix) for name in names)


def _version(distribution: str) -> str:
    return installed_version(distribution) or "not installed"


def _nest_asyncio_version() -> str:
    installed = installed_version("nest-asyncio")
    if "nest_asyncio" in sys.modules:
        return f"{installed or 'unknown version'} (imported)"
    return f"not imported ({installed} installed)" if installed else "not installed"


def _class_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _kernel_loop(shell: Any) -> asyncio.AbstractEventLoop | None:
    """The kernel's main loop (also when asked from a subshell), else this thread's."""
    io_loop = getattr(getattr(shell, "kernel", None), "io_loop", None)
    loop = getattr(io_loop, "asyncio_loop", None)
    if isinstance(loop, asyncio.AbstractEventLoop):
        return loop
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _which_shell(shell: Any) -> str:
    """``main`` on the main thread; ``subshell <id>`` in an ipykernel 7 subshell."""
    if threading.current_thread() is threading.main_thread():
        return "main"
    kernel = getattr(shell, "kernel", None)
    manager: Any = getattr(getattr(kernel, "shell_channel_thread", None), "manager", None)
    try:
        subshell_id = manager.subshell_id_from_thread_id(threading.get_ident())
    except (AttributeError, RuntimeError):
        subshell_id = None
    if subshell_id:
        return f"subshell {subshell_id}"
    return f"thread {threading.current_thread().name}"
