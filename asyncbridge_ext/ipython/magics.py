"""The magics ``%run_async``, ``%%in_new_loop``, ``%in_thread``/``%%in_thread``, ``%asyncbridge``.

Thin: each parses its options with IPython's magic_arguments, compiles the Python code
exactly as typed (:mod:`asyncbridge_ext.ipython._cell_code`), and hands it to the one
function of :mod:`asyncbridge_ext.ipython._evaluate` that decides where it runs: a fresh
event loop in a worker thread (``%run_async``, ``%%in_new_loop``), the re-entrant
kernel loop (``%run_async`` of a kernel task, nest mode), or a worker thread where no
event loop runs (``%in_thread``). The cell waits meanwhile; output lands in the cell.

:class:`AsyncBridgeMagics` also owns what one load of the extension puts in force, as
IPython's autoreload Magics owns its module reloader: it builds the options, the
nested-run setup and guard, the per-cell hooks, the SIGINT forwarding, the notebook log
and the report, and its :meth:`~AsyncBridgeMagics.start` / :meth:`~AsyncBridgeMagics.stop`
register and unregister their hooks.
"""

# IPython's magic_arguments has no type hints; its decorators would otherwise be errors.
# mypy: disable-error-code="no-untyped-call, untyped-decorator"

from __future__ import annotations

import argparse
from collections.abc import Callable
from types import CodeType
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    cell_magic,
    line_cell_magic,
    line_magic,
    magics_class,
    no_var_expand,
)
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..core.activity import ACTIVITY
from ._cell_code import (
    compile_cell,
    compile_line_expression,
    plain_help,
    seconds,
    split_leading_options,
    take_last_value,
)
from ._compat import output_can_be_silenced
from ._evaluate import (
    ExpressionRejected,
    evaluate_in_thread,
    run_async_expression,
    run_cell_in_thread,
    run_cell_on_fresh_loop,
)
from .cell_watch import CellWatch
from .diagnostics import Diagnostics
from .guard import NestedRunGuard, tell_user
from .nested_setup import NestedRunSetup
from .notebook_log import NotebookLog, level_notice
from .options import bridge_for_shell
from .sigint import SigintForwarding

__all__ = ["AsyncBridgeMagics"]


@magics_class
class AsyncBridgeMagics(Magics):
    """The extension's magics, and everything one load of it owns.

    Built on the shell's thread by ``%load_ext``, which then calls :meth:`start` and
    registers the magics; ``%unload_ext`` unregisters them and calls :meth:`stop`.
    Building puts nothing in force yet; options come from ``self.bridge``
    (``AsyncBridge``, read from the shell's config).
    """

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.bridge, self._config_problem = bridge_for_shell(shell)
        self.guard = NestedRunGuard(self.bridge)
        self.nested_setup = NestedRunSetup(self.bridge, self.guard)
        self.cell_watch = CellWatch(self.bridge)
        self.sigint = SigintForwarding.for_shell(shell)
        self.notebook_log = NotebookLog()
        self.diagnostics = Diagnostics(shell, self.bridge, self.sigint, self.notebook_log)
        #: What our magics replaced in the magics table at load, put back on unload.
        self.displaced: dict[tuple[str, str], Any] = {}

    def start(self) -> None:
        """Put the nested-run mode in force and register the hooks, on the shell's thread.

        If the mode cannot be set up (e.g. a loop the nest libraries cannot patch), the
        error is raised and nothing stays behind.
        """
        if self._config_problem is not None:
            tell_user(
                "asyncbridge_ext: ignoring the AsyncBridge config and using the defaults: "
                f"{self._config_problem}"
            )
        events = self.shell.events  # type: ignore[union-attr]
        self.nested_setup.start(events)  # first: the one step that can fail
        self.cell_watch.register(events)
        if self.sigint is not None:
            self.sigint.install()

    def stop(self) -> None:
        """Undo :meth:`start` and remove the notebook log handler; a nest patch stays."""
        events = self.shell.events  # type: ignore[union-attr]
        self.notebook_log.remove()
        if self.sigint is not None:
            self.sigint.uninstall()
        self.cell_watch.unregister(events)
        self.nested_setup.stop(events)

    def _line_expression(
        self,
        name: str,
        magic: Callable[..., Any],
        line: str,
        evaluate: Callable[[CodeType, dict[str, Any], str, float | None], Any],
    ) -> Any:
        """``%name [--timeout S] EXPR`` on the cell's thread; a refusal is a UsageError."""
        __tracebackhide__ = True
        options, expr = split_leading_options(line)
        args = parse_argstring(magic, options)
        source, code = compile_line_expression(self.shell, f"%{name}", expr)
        ACTIVITY.count(f"magic.{name}")
        namespace: dict[str, Any] = self.shell.user_ns  # type: ignore[union-attr]
        try:
            return evaluate(code, namespace, source, self._timeout(args))
        except ExpressionRejected as exc:
            message = str(exc)
        raise UsageError(message)  # outside the except block: no chained traceback

    def _timeout(self, args: argparse.Namespace) -> float | None:
        timeout: float | None = args.timeout
        return timeout if timeout is not None else self.bridge.timeout

    @no_var_expand
    @plain_help
    @magic_arguments()
    @argument("--timeout", type=seconds, metavar="S", help="cancel it after S seconds")
    @argument("expr", nargs="*", metavar="EXPR", help="a Python expression giving an awaitable")
    @line_magic
    @output_can_be_silenced
    def run_async(self, line: str) -> Any:
        """Evaluate EXPR on a fresh event loop in another thread, await it, return the result.

        EXPR is evaluated in your namespace exactly as typed (quotes, braces and $ are
        left alone), inside the coroutine that runs on a new event loop in a worker
        thread, as if a %%in_new_loop cell held `await (EXPR)`. So futures and tasks
        that EXPR makes (asyncio.gather, create_task, shield, run_in_executor) belong
        to that loop and just work. The cell waits; print() output shows in this cell.
        On timeout or interrupt the coroutine is cancelled and its finally blocks run
        before the error is shown. The default timeout is AsyncBridge.timeout. A task
        made earlier on the notebook's own loop cannot move to the fresh loop: in nest
        mode %run_async waits for it on the notebook's loop, else `await` it in a
        normal cell. If EXPR starts with '-', put '--' before it.

        Examples::

            data = %run_async fetch("https://example.org", {"retries": 2})
            pages = %run_async asyncio.gather(*(fetch(u) for u in urls))
            %run_async --timeout 5 asyncio.sleep(1, result="done")
        """
        __tracebackhide__ = True
        return self._line_expression("run_async", self.run_async, line, run_async_expression)

    @no_var_expand
    @plain_help
    @magic_arguments("%in_new_loop")  # the help's usage line then reads %%in_new_loop
    @argument("--timeout", type=seconds, metavar="S", help="cancel the cell after S seconds")
    @cell_magic
    @output_can_be_silenced
    def in_new_loop(self, line: str, cell: str) -> Any:
        """Run the cell on a fresh event loop in another thread, with top-level await.

        The cell may use await, async with and async for at top level; names it assigns
        land in your namespace; its last expression is shown as Out[n] (a trailing ';'
        hides it); print() output appears in this cell. The cell waits for it; on
        timeout or interrupt the code is cancelled and its finally blocks run first.
        The default timeout is AsyncBridge.timeout.

        Example::

            %%in_new_loop --timeout 10
            pages = await asyncio.gather(fetch("a"), fetch("b"))
            async for event in subscribe():
                print(event)
            len(pages)
        """
        __tracebackhide__ = True
        args = parse_argstring(self.in_new_loop, line)
        code, has_value = compile_cell(
            self.shell, "in_new_loop", line, cell, "await asyncio.sleep(1)"
        )
        ACTIVITY.count("magic.in_new_loop")
        namespace: dict[str, Any] = self.shell.user_ns  # type: ignore[union-attr]
        timeout = self._timeout(args)
        return take_last_value(
            namespace, has_value, run_cell_on_fresh_loop, code, namespace, timeout
        )

    @no_var_expand
    @plain_help
    @magic_arguments()
    @argument("--timeout", type=seconds, metavar="S", help="stop it after S seconds")
    @argument("expr", nargs="*", metavar="EXPR", help="(line form) a Python expression")
    @line_cell_magic
    @output_can_be_silenced
    def in_thread(self, line: str, cell: str | None = None) -> Any:
        """Run sync code on a worker thread where no event loop runs; the cell waits.

        For libraries that refuse to run while an event loop runs in their thread, as
        one always does in a notebook cell: anyio.run, asgiref's async_to_sync, gql's
        sync Client.execute, openai-agents' Runner.run_sync. `%in_thread EXPR`
        evaluates EXPR there (exactly as typed: quotes, braces and $ are left alone)
        and returns its value; `%%in_thread` runs the whole cell there: names it
        assigns land in your namespace, its last expression is shown as Out[n] (a
        trailing ';' hides it), print() output appears in this cell. Consecutive calls
        use the same thread while it is free, so thread-local state persists.
        Interrupt and timeout stop the call, not the library: what the call started
        on an event loop there is cancelled (its finally blocks run) while a
        library's older tasks on that loop (a connection) stay alive; plain Python
        code gets the exception at its next step; code stuck in one blocking C call
        is abandoned after a grace period. A library that refuses a running loop
        (anyio.run, gql, Playwright's sync API) gets a pointer here after its
        traceback in a normal cell; objects it makes here stay bound to this thread.
        The default timeout is AsyncBridge.timeout. For async code use %run_async or
        %%in_new_loop.

        Examples::

            result = %in_thread client.execute(query)

            %%in_thread --timeout 30
            data = anyio.run(fetch_all)
            len(data)
        """
        __tracebackhide__ = True
        if cell is None:
            return self._evaluate_in_thread(line)
        return self._run_cell_in_thread(line, cell)

    def _evaluate_in_thread(self, line: str) -> Any:
        """``%in_thread [--timeout S] EXPR``: EXPR's value, evaluated on a loop-free worker."""
        __tracebackhide__ = True
        return self._line_expression("in_thread", self.in_thread, line, evaluate_in_thread)

    def _run_cell_in_thread(self, line: str, cell: str) -> Any:
        """``%%in_thread [--timeout S]``: run the cell on a loop-free worker; its last value."""
        __tracebackhide__ = True
        options, rest = split_leading_options(line)
        if rest:
            raise UsageError(
                f"%%in_thread takes only options on its first line (--timeout S), got "
                f"{rest!r}; put the code in the cell body."
            )
        args = parse_argstring(self.in_thread, options)
        code, has_value = compile_cell(
            self.shell,
            "in_thread",
            line,
            cell,
            "print(1)",
            await_fix="For async code use %%in_new_loop (the same cell semantics, on a "
            "fresh event loop), or call asyncio.run(main()) in this cell.",
        )
        ACTIVITY.count("magic.in_thread")
        namespace: dict[str, Any] = self.shell.user_ns  # type: ignore[union-attr]
        timeout = self._timeout(args)
        return take_last_value(namespace, has_value, run_cell_in_thread, code, namespace, timeout)

    @plain_help
    @magic_arguments()
    @argument("--json", action="store_true", help="print the report as JSON")
    @argument(
        "--log",
        choices=["debug", "info", "warning", "off"],
        help="show asyncbridge_ext log records from this level on in the cell that "
        "produced them, for the rest of the session (off: stop)",
    )
    @line_magic
    def asyncbridge(self, line: str) -> None:
        """Report what asyncbridge_ext has in force, what it did since load, and known problems.

        One `key: value` line per fact, in a fixed order (versions, mode, nest patch,
        kernel loop, shell, counts since load, live threads), then one `warning:` line
        per known-bad combination found, each with its fix. Paste it into a bug report.

        Examples::

            %asyncbridge
            %asyncbridge --json
            %asyncbridge --log debug
        """
        args = parse_argstring(self.asyncbridge, line)
        if args.log is not None:
            self.notebook_log.set_level(args.log)
            if not args.json:  # with --json the report's "log" fact says it: pure JSON
                print(level_notice(args.log))
                return
        print(self.diagnostics.render(as_json=args.json))
