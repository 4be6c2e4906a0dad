"""The magics ``%run_async``, ``%%in_new_loop`` and ``%in_thread`` / ``%%in_thread``.

Thin wrappers over the core. The first two hand a coroutine to
:func:`~asyncbridge_ext.run_coroutine_in_new_loop`, which runs it on a fresh event loop
in a worker thread while the cell waits, under a copy of the cell's context (so output
lands in the cell). ``%run_async`` evaluates its expression inside that coroutine, on
the fresh loop, so the futures it makes belong to the loop that awaits them.
``%in_thread`` hands the code to :func:`~asyncbridge_ext.run_in_thread`, which runs it
on a worker thread where no event loop runs. Options are parsed with IPython's
magic_arguments; the Python code itself reaches Python exactly as typed (see
:mod:`asyncbridge_ext.ipython._cell_code`).
"""

# IPython's magic_arguments has no type hints; its decorators would otherwise be errors.
# mypy: disable-error-code="no-untyped-call, untyped-decorator"

from __future__ import annotations

import argparse
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
from ..core.in_thread import run_in_thread
from ..core.nest import NestAsyncio
from ..core.new_loop import run_coroutine_in_new_loop
from ..core.waiting import DEFAULT_CANCEL_GRACE
from ._cell_code import (
    compile_cell,
    compile_expression,
    is_coroutine_code,
    plain_help,
    seconds,
    split_leading_options,
    take_last_value,
)
from ._compat import output_can_be_silenced
from ._evaluate import (
    ExpressionRejected,
    LoopTasks,
    await_on_reentrant_loop,
    evaluate_expression,
    evaluate_then_await,
    execute_on_this_loop,
    foreign_future_message,
    run_cell_code,
)
from .diagnostics import Diagnostics
from .options import AsyncBridge

__all__ = ["AsyncBridgeMagics"]


def _run_async_usage(argument: str) -> str:
    return f"%run_async {argument}"


@magics_class
class AsyncBridgeMagics(Magics):
    """The extension's magics; options come from ``bridge`` (``AsyncBridge``)."""

    def __init__(self, shell: Any, bridge: AsyncBridge) -> None:
        super().__init__(shell)
        self.bridge = bridge
        #: What our magics replaced in the magics table at load, put back on unload.
        self.displaced: dict[tuple[str, str], Any] = {}
        #: The extension's pre_run_cell hook, unregistered on unload.
        self.guard: Any = None
        #: The extension's per-cell hooks (CellWatch), unregistered on unload.
        self.cell_watch: Any = None

    def _timeout(self, args: argparse.Namespace) -> float | None:
        timeout: float | None = args.timeout
        return timeout if timeout is not None else self.bridge.timeout

    def _expression_line(
        self, magic_function: Any, magic: str, line: str, example: str, gives: str
    ) -> tuple[argparse.Namespace, str, CodeType]:
        """Parse a line magic's options; compile the verbatim expression after them.

        Shared by the line magics: returns the parsed options, the expression's source
        and its code, or raises a ``UsageError`` that shows ``example`` as the right way.
        """
        options, expr = split_leading_options(line)
        args = parse_argstring(magic_function, options)
        source = expr.rstrip().removesuffix(";").rstrip()
        if not source:
            raise UsageError(
                f"{magic} needs an expression that {gives}, e.g. `{magic} {example}` or "
                f"`x = {magic} {example}`."
            )
        return args, source, compile_expression(self.shell, magic, source, example)

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
        args, source, code = self._expression_line(
            self.run_async, "%run_async", line, "fetch()", "gives an awaitable"
        )
        if is_coroutine_code(code):
            raise UsageError(
                f"%run_async awaits EXPR itself, so EXPR cannot contain `await`: write "
                f"`%run_async fetch()` rather than `%run_async await fetch()`. For code "
                f"with several awaits, use a %%in_new_loop cell. Got {source!r}."
            )
        ACTIVITY.count("magic.run_async")
        timeout = self._timeout(args)
        caller_tasks = LoopTasks()  # before EXPR can schedule anything on this cell's loop
        namespace: dict[str, Any] = self.shell.user_ns  # type: ignore[union-attr]
        coro = evaluate_then_await(code, namespace, "%run_async", _run_async_usage)
        try:
            try:
                return run_coroutine_in_new_loop(coro, timeout=timeout)
            finally:
                caller_tasks.stop()  # before this loop runs again, served or not
        except ExpressionRejected as exc:
            rejected = exc
        except BaseException:
            caller_tasks.cancel_new(None)
            raise
        # Outside the except block, so a served future's own error is not chained to ours.
        future = rejected.future
        if future is None:
            caller_tasks.cancel_new(None)
            raise UsageError(str(rejected)) from None
        if future.get_loop() is caller_tasks.loop and NestAsyncio.is_applied:
            return await_on_reentrant_loop(future, timeout, DEFAULT_CANCEL_GRACE)
        what = f"{type(future).__name__} {future!r}"  # before cancel_new adds a callback
        cancelled = caller_tasks.cancel_new(future)
        raise UsageError(
            foreign_future_message(what, future.get_loop(), caller_tasks.loop, source, cancelled)
        )

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
        if is_coroutine_code(code):
            awaitable = eval(code, namespace)
        else:
            awaitable = execute_on_this_loop(code, namespace)
        timeout = self._timeout(args)
        return take_last_value(
            namespace, has_value, run_coroutine_in_new_loop, awaitable, timeout=timeout
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
        args, source, code = self._expression_line(
            self.in_thread, "%in_thread", line, "client.execute(query)", "gives a value"
        )
        if is_coroutine_code(code):
            raise UsageError(
                f"%in_thread runs EXPR as sync code on a worker thread, so EXPR cannot "
                f"contain `await`. For async code use %run_async, e.g. "
                f"`%run_async fetch()`. Got {source!r}."
            )
        ACTIVITY.count("magic.in_thread")
        try:
            return run_in_thread(
                evaluate_expression,
                code,
                self.shell.user_ns,  # type: ignore[union-attr]
                "%in_thread",
                f"Await it with `%run_async {source}` instead.",
                timeout=self._timeout(args),
            )
        except ExpressionRejected as exc:
            message = str(exc)
        raise UsageError(message)  # outside the except block: no chained traceback

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
        return take_last_value(
            namespace,
            has_value,
            run_in_thread,
            run_cell_code,
            code,
            namespace,
            timeout=self._timeout(args),
        )

    #: Set by the extension at load: the state ``%asyncbridge`` reports from.
    diagnostics: Diagnostics | None = None

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
        if self.diagnostics is None:
            raise UsageError("asyncbridge_ext is not loaded; run `%load_ext asyncbridge_ext`.")
        self.diagnostics.run_magic(as_json=args.json, log=args.log)
