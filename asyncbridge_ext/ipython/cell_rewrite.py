"""A cell that awaits at top level ends each statement by calling back (see ``CellWatch``).

ipykernel runs such a cell as an asyncio task of its own and fires ``post_execute`` only
after awaiting that task, so a running loop a library left behind in the cell is seen
too late: from Python 3.14 the awaiting task is never stepped again while another loop
is marked running, and the kernel wedges. :class:`AwaitingCellRewrite`, an IPython AST
transformer (``shell.ast_transformers``, public since IPython 1), makes the cell's own
code call back instead, inside that task, on the thread that runs the cell:

- every top-level statement ``s`` becomes ``try: s`` / ``finally: <call back>``, so the
  call back runs after each statement, also when it raises (the exception goes on as it
  was: same type, same traceback, same line numbers; every statement is still its own
  top-level node, so IPython compiles and names it as before);
- a last expression ``e`` becomes ``try: <keep>(e)`` / ``finally: <call back>`` followed
  by the expression ``<take>()``, which gives IPython ``e``'s value to display: ``Out[n]``,
  ``_`` and a trailing ``;`` behave as before;
- a leading docstring and ``from __future__`` imports stay as they are.

The calls reach this module through ``__import__``: no name is added to the user's
namespace, and ``%reset`` cannot break them. Cells that do not await at top level (and
magics' own bodies) are left alone: ``post_execute`` repairs those in time.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["AwaitingCellRewrite", "awaits_at_top_level", "rewrite"]

#: What the rewritten cells call back, by key (one per CellWatch).
_CALLBACKS: dict[int, Callable[[], None]] = {}
_AWAITS = (ast.Await, ast.AsyncFor, ast.AsyncWith)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)  # their awaits are their own
_Node = TypeVar("_Node", bound=ast.AST)
_values = threading.local()  # the last expression's value, between keep and take


def statement_done(key: int) -> None:
    """Called by a rewritten cell after each of its statements (on the cell's thread)."""
    callback = _CALLBACKS.get(key)
    if callback is not None:  # None: the extension was unloaded during the cell
        callback()


def keep(value: object) -> None:
    """Called by a rewritten cell with its last expression's value."""
    _values.value = value


def take() -> object:
    """The value :func:`keep` got, for IPython to display (the reference is dropped)."""
    value = getattr(_values, "value", None)
    _values.value = None
    return value


def awaits_at_top_level(tree: ast.Module) -> bool:
    """True if ``tree`` awaits outside any function: ``await``, ``async for``, ``async with``
    or an async comprehension, the code IPython and ipykernel run as a coroutine.

    Read from the tree, not by compiling it (a second compile would repeat the cell's
    ``SyntaxWarning`` lines). An async generator expression alone counts too, though
    Python 3.14 no longer runs that as a coroutine; rewriting such a cell is harmless.
    """
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, _AWAITS) or (isinstance(node, ast.comprehension) and node.is_async):
            return True
        if not isinstance(node, _SCOPES):
            pending.extend(ast.iter_child_nodes(node))
    return False


def rewrite(tree: ast.Module, key: int) -> ast.Module:
    """``tree`` with each top-level statement followed by ``statement_done(key)``."""
    body = tree.body
    start = 0
    if body and _is_docstring(body[0]):
        start = 1
    while start < len(body) and _is_future_import(body[start]):
        start += 1
    new: list[ast.stmt] = list(body[:start])
    last = len(body) - 1
    for index in range(start, len(body)):
        node = body[index]
        if index == last and isinstance(node, ast.Expr):
            kept = _located(ast.Expr(_call("keep", [node.value])), node)
            new.append(_guarded(kept, key, node))
            new.append(_located(ast.Expr(_call("take", [])), node))
        else:
            new.append(_guarded(node, key, node))
    tree.body = new
    return tree


class AwaitingCellRewrite:
    """The AST transformer: rewrites a cell's tree when ``wanted()`` says it is one to do.

    ``wanted`` is asked once per tree, on the thread that runs the cell, before anything
    else is checked; ``key`` picks the callback registered with :meth:`install`.
    """

    def __init__(self, key: int, wanted: Callable[[], bool]) -> None:
        self.key = key
        self.wanted = wanted

    def install(self, shell: Any, callback: Callable[[], None]) -> None:
        _CALLBACKS[self.key] = callback
        transformers = getattr(shell, "ast_transformers", None)
        if isinstance(transformers, list) and self not in transformers:
            transformers.append(self)

    def uninstall(self, shell: Any) -> None:
        _CALLBACKS.pop(self.key, None)
        transformers = getattr(shell, "ast_transformers", None)
        while isinstance(transformers, list) and self in transformers:
            transformers.remove(self)

    def visit(self, node: ast.AST) -> ast.AST:
        """IPython's entry point (``shell.transform_ast``), called on the cell's thread."""
        if self.wanted() and isinstance(node, ast.Module) and awaits_at_top_level(node):
            return rewrite(node, self.key)
        return node


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _is_future_import(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


def _call(name: str, args: list[ast.expr]) -> ast.Call:
    """``__import__(<this module>, fromlist=[name]).name(*args)``."""
    module = ast.Call(
        func=ast.Name(id="__import__", ctx=ast.Load()),
        args=[ast.Constant(__name__)],
        keywords=[ast.keyword(arg="fromlist", value=ast.List([ast.Constant(name)], ast.Load()))],
    )
    return ast.Call(func=ast.Attribute(module, name, ast.Load()), args=args, keywords=[])


def _guarded(node: ast.stmt, key: int, where: ast.stmt) -> ast.Try:
    done = _located(ast.Expr(_call("statement_done", [ast.Constant(key)])), where)
    guarded = ast.Try(body=[node], handlers=[], orelse=[], finalbody=[done])
    return _located(guarded, where)


def _located(node: _Node, where: ast.stmt) -> _Node:
    """``node`` with ``where``'s position, and so every new node inside it."""
    return ast.fix_missing_locations(ast.copy_location(node, where))
