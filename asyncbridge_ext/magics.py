"""The ``%run_async`` and ``%%in_new_loop`` magics: thin wrappers over the core.

Both hand a coroutine to :func:`~asyncbridge_ext.run_coroutine_in_new_loop`, which runs
it on a fresh event loop in a worker thread while the cell waits, under a copy of the
cell's context (so output lands in the cell). Options are parsed with IPython's
magic_arguments; the Python code itself reaches Python exactly as typed.
"""

# IPython's magic_arguments has no type hints; its decorators would otherwise be errors.
# mypy: disable-error-code="no-untyped-call, untyped-decorator"

from __future__ import annotations

import argparse
import ast
import inspect
import math
import sys
from types import CodeType
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    cell_magic,
    line_magic,
    magics_class,
    no_var_expand,
    output_can_be_silenced,
)
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ._awaitables import as_coroutine
from .config import AsyncBridge
from .core import run_coroutine_in_new_loop

__all__ = ["AsyncBridgeMagics"]

#: Leading options of ``%run_async`` that take their value as the next word.
_OPTIONS_WITH_VALUE = ("--timeout",)

#: Where the cell's last expression parks its value between the worker and the magic.
_LAST_VALUE = "__asyncbridge_last_value__"


def _seconds(text: str) -> float:
    """argparse type for ``--timeout``: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds, got {text!r}; e.g. --timeout 2.5"
        )
    return value


def split_leading_options(line: str) -> tuple[str, str]:
    """Split ``"--timeout 3 f(x)"`` into ``("--timeout 3", "f(x)")``, the rest verbatim.

    Options are the leading words starting with ``-`` (plus the value word of
    ``--timeout``); a ``--`` word ends them. Everything after is returned untouched, so
    quotes, braces and ``$`` in the expression survive (no shlex, no variable expansion).
    """
    options: list[str] = []
    rest = line.strip()
    takes_value = False
    while rest:
        word = rest.split(None, 1)[0]
        if takes_value:
            takes_value = False
        elif word == "--":
            rest = rest[2:].lstrip()
            break
        elif word[0] == "-" and len(word) > 1 and (word[1].isalpha() or word[1] == "-"):
            takes_value = word in _OPTIONS_WITH_VALUE
        else:
            break
        options.append(word)
        rest = rest[len(word) :].lstrip()
    return " ".join(options), rest


def _top_level_return_or_yield(tree: ast.Module) -> ast.stmt | ast.expr | None:
    """The first ``return`` / ``yield`` outside any function in ``tree``, if any."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, (ast.Return, ast.Yield, ast.YieldFrom)):
            return node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            pending.extend(ast.iter_child_nodes(node))
    return None


def _calling_cell_number(shell: Any) -> int:
    """The n of the In[n] cell that called the magic, so tracebacks label our code with it.

    Found by walking up to the frame of a cell the shell compiled; the shell's own
    execution counter is not reliable here (IPython 9 increments it before the cell
    runs, IPython 8 after).
    """
    numbers = getattr(shell.compile, "_filename_map", {})
    frame = sys._getframe(1)
    while frame is not None:
        number = numbers.get(frame.f_code.co_filename)
        if isinstance(number, int):
            return number
        frame = frame.f_back  # type: ignore[assignment]
    return int(shell.execution_count)


async def _exec_on_this_loop(code: CodeType, namespace: dict[str, Any]) -> None:
    """Run cell code without top-level ``await`` inside the fresh loop (for ``asyncio`` calls)."""
    __tracebackhide__ = True
    exec(code, namespace)


@magics_class
class AsyncBridgeMagics(Magics):
    """``%run_async`` and ``%%in_new_loop``; options come from ``bridge`` (``AsyncBridge``)."""

    def __init__(self, shell: Any, bridge: AsyncBridge) -> None:
        super().__init__(shell)
        self.bridge = bridge
        #: What our magics replaced in the magics table at load, put back on unload.
        self.displaced: dict[tuple[str, str], Any] = {}
        #: The extension's pre_run_cell hook, unregistered on unload.
        self.guard: Any = None

    def _timeout(self, args: argparse.Namespace) -> float | None:
        timeout: float | None = args.timeout
        return timeout if timeout is not None else self.bridge.timeout

    @no_var_expand
    @magic_arguments()
    @argument("--timeout", type=_seconds, metavar="S", help="cancel it after S seconds")
    @argument("expr", nargs="*", metavar="EXPR", help="a Python expression giving an awaitable")
    @line_magic
    @output_can_be_silenced
    def run_async(self, line: str) -> Any:
        """Run an awaitable on a fresh event loop in another thread; return its result.

        EXPR is evaluated in your namespace exactly as typed (quotes, braces and $ are
        left alone). The awaitable it gives runs on a new event loop in a worker thread
        while the cell waits; print() output shows in this cell. On timeout or interrupt
        the coroutine is cancelled and its finally blocks run before the error is shown.
        The default timeout is AsyncBridge.timeout. If EXPR starts with '-', put '--'
        before it.

        Examples::

            data = %run_async fetch("https://example.org", {"retries": 2})
            %run_async --timeout 5 asyncio.sleep(1, result="done")
        """
        __tracebackhide__ = True
        options, expr = split_leading_options(line)
        args = parse_argstring(self.run_async, options)
        source = expr.rstrip().removesuffix(";").rstrip()
        if not source:
            raise UsageError(
                "%run_async needs an expression that gives an awaitable, e.g. "
                "`%run_async fetch()` or `x = %run_async fetch()`."
            )
        shell: Any = self.shell
        filename = shell.compile.cache(source, _calling_cell_number(shell))
        try:
            code = compile(source, filename, "eval", shell.compile.flags, dont_inherit=True)
        except SyntaxError as exc:
            raise UsageError(
                f"%run_async takes one Python expression, and {source!r} is not one "
                f"({exc.msg}). Write e.g. `%run_async fetch()`; to keep the result, "
                f"`x = %run_async fetch()`."
            ) from None
        value = eval(code, shell.user_ns)
        try:
            awaitable = as_coroutine(
                value, caller="%run_async", usage=lambda argument: f"%run_async {argument}"
            )
        except (TypeError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        return run_coroutine_in_new_loop(awaitable, timeout=self._timeout(args))

    @no_var_expand
    @magic_arguments("%in_new_loop")  # the help's usage line then reads %%in_new_loop
    @argument("--timeout", type=_seconds, metavar="S", help="cancel the cell after S seconds")
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
        code, has_value = self._compile_cell(f"%%in_new_loop {line}".rstrip(), cell)
        namespace: dict[str, Any] = self.shell.user_ns  # type: ignore[union-attr]
        if code.co_flags & inspect.CO_COROUTINE:
            awaitable = eval(code, namespace)
        else:
            awaitable = _exec_on_this_loop(code, namespace)
        try:
            run_coroutine_in_new_loop(awaitable, timeout=self._timeout(args))
            return namespace.get(_LAST_VALUE) if has_value else None
        finally:
            namespace.pop(_LAST_VALUE, None)

    def _compile_cell(self, header: str, cell: str) -> tuple[CodeType, bool]:
        """Compile the cell body for top-level await; tell whether it ends in an expression.

        The source is registered with the shell's compiler cache under the cell's
        header line, so tracebacks show the cell's own lines with the cell's numbering.
        The last expression is turned into an assignment to :data:`_LAST_VALUE`, so its
        value survives the trip through the worker thread.
        """
        shell: Any = self.shell
        source = shell.transform_cell(cell)
        filename = shell.compile.cache(
            f"{header}\n{source}", _calling_cell_number(shell), raw_code=f"{header}\n{cell}"
        )
        flags = shell.compile.flags | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        # The leading newline stands for the header line: line numbers match the cell.
        tree = compile("\n" + source, filename, "exec", flags | ast.PyCF_ONLY_AST, True)
        tree = shell.transform_ast(tree)
        if not tree.body:
            raise UsageError(
                "%%in_new_loop needs code in the cell body, e.g.\n"
                "%%in_new_loop\nawait asyncio.sleep(1)"
            )
        bad = _top_level_return_or_yield(tree)
        if bad is not None:
            fix = (
                "To show a value, end the cell with it as an expression."
                if isinstance(bad, ast.Return)
                else "To produce values, define an `async def` generator and use `async for`."
            )
            word = "return" if isinstance(bad, ast.Return) else "yield"
            raise UsageError(
                f"`{word}` on line {bad.lineno} of the cell is outside any function, which "
                f"%%in_new_loop does not allow. {fix}"
            )
        last = tree.body[-1]
        has_value = isinstance(last, ast.Expr)
        if isinstance(last, ast.Expr):
            store = ast.Name(id=_LAST_VALUE, ctx=ast.Store())
            tree.body[-1] = ast.copy_location(ast.Assign(targets=[store], value=last.value), last)
            ast.fix_missing_locations(tree)
        return compile(tree, filename, "exec", flags, True), has_value
