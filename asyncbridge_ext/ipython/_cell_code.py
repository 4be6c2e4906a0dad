"""Turn a magic's line or cell into code the way the shell would, for every magic we add.

Shared by ``%run_async``, ``%%in_new_loop``, ``%in_thread`` and ``%%in_thread``: split a
line magic's leading options from the verbatim Python after them, compile an expression
or a cell body with the shell's own transforms and flags, register the source with the
shell's compiler cache (so tracebacks show the cell's lines, labelled ``In[n]``), and
carry a cell's last expression back as ``Out[n]``. Runs on the calling thread; nothing
here runs the code.
"""

# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import argparse
import ast
import inspect
import math
import sys
from collections.abc import Callable
from types import CodeType
from typing import Any, TypeVar

from IPython.core.error import UsageError

__all__ = [
    "LAST_VALUE",
    "compile_cell",
    "compile_expression",
    "compile_line_expression",
    "is_coroutine_code",
    "plain_help",
    "seconds",
    "split_leading_options",
    "take_last_value",
]

#: Leading options of the line magics that take their value as the next word.
_OPTIONS_WITH_VALUE = ("--timeout",)

#: Where the cell's last expression parks its value between the worker and the magic.
LAST_VALUE = "__asyncbridge_last_value__"


F = TypeVar("F", bound=Callable[..., Any])


def plain_help(magic: F) -> F:
    """Put above ``@magic_arguments()``: the magic's help without terminal colours.

    Python 3.14's argparse colours the help it formats when stdout looks like a terminal
    (as a kernel's can), and ``magic_arguments`` makes that text the docstring, so
    ``%run_async?`` and usage errors showed escape codes. Earlier Pythons never colour.
    """
    parser = magic.parser  # type: ignore[attr-defined]
    if getattr(parser, "color", False):
        parser.color = False
        magic.__doc__ = parser.format_help()
    return magic


def seconds(text: str) -> float:
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


def is_coroutine_code(code: CodeType) -> bool:
    """True if ``code`` was compiled from source with a top-level ``await``."""
    return bool(code.co_flags & inspect.CO_COROUTINE)


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


def compile_expression(shell: Any, magic: str, source: str, example: str) -> CodeType:
    """Compile the line magic ``magic``'s expression ``source`` for ``eval``.

    Top-level ``await`` is allowed by the flags (the caller decides whether it accepts
    coroutine code); anything that is not one expression is a ``UsageError`` that shows
    ``example`` (e.g. ``"fetch()"``) as the right way.
    """
    filename = shell.compile.cache(source, _calling_cell_number(shell))
    flags = shell.compile.flags | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    try:
        code: CodeType = compile(source, filename, "eval", flags, dont_inherit=True)
    except SyntaxError as exc:
        raise UsageError(
            f"{magic} takes one Python expression, and {source!r} is not one "
            f"({exc.msg}). Write e.g. `{magic} {example}`; to keep the result, "
            f"`x = {magic} {example}`."
        ) from None
    return code


#: Per line magic: an example expression, what the expression must give, and why (and
#: instead of what) it cannot contain a top-level ``await``. Used in its usage errors.
_LINE_MAGICS = {
    "%run_async": (
        "fetch()",
        "gives an awaitable",
        "%run_async awaits EXPR itself, so EXPR cannot contain `await`: write "
        "`%run_async fetch()` rather than `%run_async await fetch()`. For code with "
        "several awaits, use a %%in_new_loop cell.",
    ),
    "%in_thread": (
        "client.execute(query)",
        "gives a value",
        "%in_thread runs EXPR as sync code on a worker thread, so EXPR cannot contain "
        "`await`. For async code use %run_async, e.g. `%run_async fetch()`.",
    ),
}


def compile_line_expression(shell: Any, magic: str, expr: str) -> tuple[str, CodeType]:
    """Compile ``expr``, the verbatim expression after the line magic ``magic``'s options.

    Returns its source (a trailing ``;`` dropped) and its code. A missing expression,
    one that is not an expression, or one with a top-level ``await`` is a ``UsageError``
    that shows the right way.
    """
    example, gives, no_await = _LINE_MAGICS[magic]
    source = expr.rstrip().removesuffix(";").rstrip()
    if not source:
        raise UsageError(
            f"{magic} needs an expression that {gives}, e.g. `{magic} {example}` or "
            f"`x = {magic} {example}`."
        )
    code = compile_expression(shell, magic, source, example)
    if is_coroutine_code(code):
        raise UsageError(f"{no_await} Got {source!r}.")
    return source, code


def _first_outside_functions(
    tree: ast.Module, kinds: tuple[type[ast.AST], ...]
) -> ast.stmt | ast.expr | None:
    """The first node of one of ``kinds`` outside any function in ``tree``, if any."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, kinds) and isinstance(node, (ast.stmt, ast.expr)):
            return node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            pending.extend(ast.iter_child_nodes(node))
    return None


def compile_cell(
    shell: Any, magic: str, line: str, cell: str, example: str, await_fix: str | None = None
) -> tuple[CodeType, bool]:
    """Compile the cell magic ``magic``'s body; tell whether it ends in an expression.

    The source goes through the shell's transforms (so ``%magics`` and ``!cmd`` work
    inside) and is registered with the shell's compiler cache under the cell's header
    line, so tracebacks show the cell's own lines with the cell's numbering. Top-level
    ``await`` is allowed by the flags (the code is then a coroutine's, see
    :func:`is_coroutine_code`). The last expression is turned into an assignment to
    :data:`LAST_VALUE`, so its value survives the trip through a worker thread.
    ``example`` is a line of body shown when the body is empty. With ``await_fix``,
    top-level ``await`` / ``async for`` / ``async with`` is refused instead, with a
    ``UsageError`` that names the line and ends with ``await_fix``.
    """
    header = f"%%{magic} {line}".rstrip()
    source = shell.transform_cell(cell)
    filename = shell.compile.cache(
        f"{header}\n{source}", _calling_cell_number(shell), raw_code=f"{header}\n{cell}"
    )
    flags = shell.compile.flags | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    # The leading newline stands for the header line: line numbers match the cell.
    tree = compile("\n" + source, filename, "exec", flags | ast.PyCF_ONLY_AST, True)
    tree = shell.transform_ast(tree)
    if not tree.body:
        raise UsageError(f"%%{magic} needs code in the cell body, e.g.\n%%{magic}\n{example}")
    bad = _first_outside_functions(tree, (ast.Return, ast.Yield, ast.YieldFrom))
    if bad is not None:
        generator = "a generator" if await_fix else "an `async def` generator and use `async for`"
        fix = (
            "To show a value, end the cell with it as an expression."
            if isinstance(bad, ast.Return)
            else f"To produce values, define {generator}."
        )
        word = "return" if isinstance(bad, ast.Return) else "yield"
        raise UsageError(
            f"`{word}` on line {bad.lineno} of the cell is outside any function, which "
            f"%%{magic} does not allow. {fix}"
        )
    if await_fix is not None:
        bad = _first_outside_functions(tree, (ast.Await, ast.AsyncFor, ast.AsyncWith))
        if bad is not None:
            word = {ast.Await: "await", ast.AsyncFor: "async for"}.get(type(bad), "async with")
            raise UsageError(
                f"`{word}` on line {bad.lineno} of the cell is outside any `async def`, which "
                f"%%{magic} does not allow: it runs the cell as sync code. {await_fix}"
            )
    last = tree.body[-1]
    has_value = isinstance(last, ast.Expr)
    if isinstance(last, ast.Expr):
        store = ast.Name(id=LAST_VALUE, ctx=ast.Store())
        tree.body[-1] = ast.copy_location(ast.Assign(targets=[store], value=last.value), last)
        ast.fix_missing_locations(tree)
    return compile(tree, filename, "exec", flags, True), has_value


def take_last_value(
    namespace: dict[str, Any],
    has_value: bool,
    run: Callable[..., object],
    /,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """Call ``run(*args, **kwargs)`` (which executes the cell code), return the last value.

    The parked value is removed from ``namespace`` on every path, errors included.
    """
    __tracebackhide__ = True
    try:
        run(*args, **kwargs)
        return namespace.get(LAST_VALUE) if has_value else None
    finally:
        namespace.pop(LAST_VALUE, None)
