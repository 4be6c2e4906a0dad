"""%run_async and %%in_new_loop in one real kernel (default nest mode), shared by the module."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from support.kernel_harness import TRACEBACKS_SAY_CELL_IN, Kernel, start_kernel, usage_error

pytestmark = pytest.mark.kernel

SETUP = """
import asyncio, threading
%load_ext asyncbridge_ext
MAIN = threading.get_ident()

async def echo(value, delay=0.0):
    await asyncio.sleep(delay)
    return value

async def where():
    return threading.get_ident(), asyncio.get_running_loop()

async def fail(exc):
    await asyncio.sleep(0)
    raise exc

sentinel = "untouched"
"""


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with start_kernel() as kernel:
        kernel.ok(SETUP)
        yield kernel


def assert_usage_error(kernel: Kernel, code: str, *fragments: str) -> None:
    """``code`` fails with a UsageError naming ``fragments``, and the kernel is fine after."""
    usage_error(kernel, code, *fragments)
    assert kernel.ok("sentinel").result == "'untouched'"


# %run_async ---------------------------------------------------------------------------


def test_run_async_assigns_and_runs_on_another_thread(kernel: Kernel) -> None:
    kernel.ok("ident, loop = %run_async where()")
    cell = kernel.ok("ident != MAIN, loop.is_closed(), loop is not asyncio.get_running_loop()")
    assert cell.result == "(True, True, True)"


def test_run_async_shows_out_and_updates_underscore(kernel: Kernel) -> None:
    cell = kernel.ok("%run_async echo(41)")
    assert cell.result == "41"
    assert cell.reply is not None
    number = cell.reply["execution_count"]
    (shown,) = [content for kind, content in cell.outputs if kind == "execute_result"]
    assert shown["execution_count"] == number  # shown as this cell's Out[n]
    assert kernel.ok("_ + 1").result == "42"
    assert kernel.ok(f"Out[{number}]").result == "41"


def test_trailing_semicolon_silences_run_async(kernel: Kernel) -> None:
    cell = kernel.ok("%run_async echo('quiet');")
    assert cell.results == []
    assert kernel.ok("_").result != "'quiet'"


@pytest.mark.parametrize(
    "expr",
    [
        "echo({'a': {1, 2}, 'b': []})",
        'echo("it\'s $HOME and {braces}")',
        "echo(f'{1 + 1}-{sentinel!r}')",
        "echo('a  b', delay=0)  # a comment",
        "echo('''tri\"ple''')",
    ],
)
def test_run_async_expression_reaches_python_verbatim(kernel: Kernel, expr: str) -> None:
    expected = kernel.ok(f"import asyncio as _a\n_a.run(\n{expr}\n)").result
    assert expected is not None
    assert kernel.ok(f"%run_async {expr}").result == expected


def test_run_async_line_is_not_var_expanded_even_when_the_names_exist(kernel: Kernel) -> None:
    # IPython expands $name and {name} in magic lines from the user namespace, and leaves
    # names that do not exist as typed: only a defined name shows the expansion is off.
    kernel.ok("abx_word = 'EXPANDED'")
    cell = kernel.ok("%run_async echo('$abx_word and {abx_word}')")
    assert cell.result == "'$abx_word and {abx_word}'"


def test_run_async_timeout_option_and_expression_split(kernel: Kernel) -> None:
    assert kernel.ok("%run_async --timeout 5 echo('-x --timeout 1')").result == "'-x --timeout 1'"
    assert kernel.ok("%run_async --timeout=5 echo(3)").result == "3"
    assert kernel.ok("%run_async -- echo(-1)").result == "-1"
    cell = kernel.run("%run_async --timeout 0.2 echo(1, delay=30)")
    assert cell.error is not None and cell.error["ename"] == "TimeoutError", cell.describe()


# Each takes 10 s unless stopped: without the default timeout the cell replies (late) with
# no error, instead of the test waiting out the harness's own timeout.
SLOW_IN_EVERY_MAGIC = {
    "%run_async": "%run_async echo(1, delay=10)",
    "%%in_new_loop": "%%in_new_loop\nawait asyncio.sleep(10)",
    "%in_thread": "%in_thread asyncio.run(asyncio.sleep(10))",
    "%%in_thread": "%%in_thread\nasyncio.run(asyncio.sleep(10))",
}


def test_config_timeout_is_the_default_of_every_magic(kernel: Kernel) -> None:
    kernel.ok("%config AsyncBridge.timeout = 0.2")
    try:
        for magic, code in SLOW_IN_EVERY_MAGIC.items():
            cell = kernel.run(code, timeout=25)
            assert cell.error is not None and cell.error["ename"] == "TimeoutError", (
                magic,
                cell.describe(),
            )
            assert "did not finish within 0.2 s" in cell.error["evalue"], (magic, cell.describe())
        assert kernel.ok("%run_async --timeout 30 echo(2, delay=0.3)").result == "2"
    finally:
        kernel.ok("%config AsyncBridge.timeout = None")


def help_text(kernel: Kernel, query: str) -> str:
    cell = kernel.ok(query)
    payload = cell.reply["payload"] if cell.reply else []
    return "".join(p.get("data", {}).get("text/plain", "") for p in payload) + cell.stdout


def test_magic_help_shows_usage_and_docstring(kernel: Kernel) -> None:
    text = help_text(kernel, "%run_async?")
    assert "%run_async [--timeout S] [EXPR ...]" in text
    assert "data = %run_async fetch(" in text
    text = help_text(kernel, "%%in_new_loop?")
    assert "%%in_new_loop [--timeout S]" in text
    assert "top-level await" in text and "Out[n]" in text


def test_user_exception_passes_through_unchanged(kernel: Kernel) -> None:
    cell = kernel.run("%run_async fail(KeyError('missing key'))")
    assert cell.error is not None
    assert (cell.error["ename"], cell.error["evalue"]) == ("KeyError", "'missing key'")
    assert "raise exc" in cell.traceback
    cell = kernel.run("%run_async fail(asyncio.CancelledError('why'))")
    assert cell.error is not None
    assert (cell.error["ename"], cell.error["evalue"]) == ("CancelledError", "why")


@pytest.mark.parametrize(
    ("code", "fragments"),
    [
        ("%run_async", ["needs an expression", "%run_async fetch()"]),
        ("%run_async   ;", ["needs an expression"]),
        ("%run_async 42", ["expects a coroutine or another awaitable", "int 42"]),
        ("%run_async echo", ["coroutine function echo", "%run_async echo(...)"]),
        ("%run_async await echo(1)", ["cannot contain `await`", "`%run_async fetch()`"]),
        ("%run_async echo(1", ["not one", "x = %run_async"]),
        ("%run_async y = echo(1)", ["not one", "x = %run_async"]),
        ("%run_async --timeout 0 echo(1)", ["--timeout", "positive number", "'0'"]),
        ("%run_async --timeout abc echo(1)", ["positive number", "'abc'"]),
        ("%run_async --timeout -1 echo(1)", ["positive number", "'-1'"]),
        ("%run_async --timeout", ["--timeout", "expected one argument"]),
        ("%run_async --fast echo(1)", ["unrecognized arguments: --fast"]),
        ("%run_async -h", ["unrecognized arguments: -h"]),
    ],
)
def test_run_async_bad_input_is_a_usage_error(
    kernel: Kernel, code: str, fragments: list[str]
) -> None:
    assert_usage_error(kernel, code, *fragments)


def test_run_async_undefined_name_is_the_users_name_error(kernel: Kernel) -> None:
    cell = kernel.run("%run_async no_such_name()")
    assert cell.error is not None and cell.error["ename"] == "NameError", cell.describe()
    assert kernel.ok("sentinel").result == "'untouched'"


# %%in_new_loop --------------------------------------------------------------------------


def test_cell_top_level_await_assigns_and_shows_last_value(kernel: Kernel) -> None:
    cell = kernel.ok(
        "%%in_new_loop\n"
        "import contextlib\n"
        "print('first')\n"
        "inner_ident, inner_loop = await where()\n"
        "async def agen():\n"
        "    for i in range(3):\n"
        "        yield i\n"
        "@contextlib.asynccontextmanager\n"
        "async def ctx():\n"
        "    yield 'entered'\n"
        "async with ctx() as entered:\n"
        "    collected = [i async for i in agen()]\n"
        "async for item in agen():\n"
        "    print('item', item)\n"
        "await echo(len(collected))\n"
    )
    assert cell.stdout == "first\nitem 0\nitem 1\nitem 2\n"
    assert cell.result == "3"
    kinds = [kind for kind, _ in cell.outputs]
    assert kinds.index("execute_result") > max(i for i, k in enumerate(kinds) if k == "stream")
    after = kernel.ok("inner_ident != MAIN, inner_loop.is_closed(), entered, collected, _")
    assert after.result == "(True, True, 'entered', [0, 1, 2], 3)"
    assert kernel.ok("'__asyncbridge_last_value__' in globals()").result == "False"


def test_cell_without_await_runs_on_the_fresh_loop(kernel: Kernel) -> None:
    cell = kernel.ok(
        "%%in_new_loop\nplain_loop = asyncio.get_running_loop()\nthreading.get_ident() != MAIN"
    )
    assert cell.result == "True"
    assert kernel.ok("plain_loop.is_closed()").result == "True"


def test_cell_trailing_semicolon_and_statement_end_show_nothing(kernel: Kernel) -> None:
    assert kernel.ok("%%in_new_loop\nawait echo('hidden');").results == []
    assert kernel.ok("%%in_new_loop\nhidden = await echo('x')").results == []
    assert kernel.ok("%%in_new_loop\nawait echo(None)").results == []


def test_cell_timeout_option(kernel: Kernel) -> None:
    cell = kernel.run(
        "%%in_new_loop --timeout 0.2\ntry:\n    await asyncio.sleep(30)\n"
        "finally:\n    cleaned = 'yes'"
    )
    assert cell.error is not None and cell.error["ename"] == "TimeoutError", cell.describe()
    assert kernel.ok("cleaned").result == "'yes'"


def test_cell_exception_is_unchanged_and_points_at_the_cell(kernel: Kernel) -> None:
    cell = kernel.run(
        "%%in_new_loop\nx1 = 1\nawait asyncio.sleep(0)\nraise ValueError('bad value ' + str(x1))"
    )
    assert cell.error is not None
    assert (cell.error["ename"], cell.error["evalue"]) == ("ValueError", "bad value 1")
    assert "----> 4 raise ValueError('bad value ' + str(x1))" in cell.traceback, cell.traceback
    assert "run_coroutine_in_new_loop" not in cell.traceback
    if TRACEBACKS_SAY_CELL_IN:
        # the magic's line and the body's lines carry the same In[n] label
        labels = set(re.findall(r"Cell In\[(\d+)\]", cell.traceback))
        assert len(labels) == 1, cell.traceback
    else:  # IPython 7: each frame is labelled by the file ipykernel named after its code
        body_frame = r"ipykernel_\d+/\d+\.py in <module>\n      2 x1 = 1\n"
        assert re.search(body_frame, cell.traceback), cell.traceback
    assert kernel.ok("x1").result == "1"


def test_cell_syntax_error_points_at_the_cell_line(kernel: Kernel) -> None:
    cell = kernel.run("%%in_new_loop\nok_line = 1\ndef broken(:\n")
    assert cell.error is not None and cell.error["ename"] == "SyntaxError", cell.describe()
    assert "def broken(:" in cell.traceback, cell.traceback
    assert "line 3" in cell.traceback, cell.traceback
    assert kernel.ok("sentinel").result == "'untouched'"


def test_cell_nested_run_coroutine_in_new_loop(kernel: Kernel) -> None:
    cell = kernel.ok(
        "%%in_new_loop\n"
        "from asyncbridge_ext import run_coroutine_in_new_loop\n"
        "outer = threading.get_ident()\n"
        "inner = run_coroutine_in_new_loop(where())[0]\n"
        "print('nested', inner != outer)\n"
        "await echo('done')"
    )
    assert (cell.stdout, cell.result) == ("nested True\n", "'done'")


def test_cell_uses_ipython_syntax_and_line_magic_inside(kernel: Kernel) -> None:
    cell = kernel.ok("%%in_new_loop\nvalue = %run_async echo(5)\nvalue * 2")
    assert cell.result == "10"


def test_cell_display_output_lands_in_the_cell(kernel: Kernel) -> None:
    cell = kernel.ok(
        "%%in_new_loop\nfrom IPython.display import display\ndisplay('shown')\nawait echo(1)"
    )
    kinds = [kind for kind, _ in cell.outputs]
    assert kinds == ["display_data", "execute_result"], cell.outputs


@pytest.mark.parametrize("option", ["$abx_seconds", "{abx_seconds}"])
def test_cell_magic_line_is_not_var_expanded_even_when_the_names_exist(
    kernel: Kernel, option: str
) -> None:
    # Expanded, the line would read `--timeout 5` and the cell would run.
    kernel.ok("abx_seconds = 5")
    assert_usage_error(kernel, f"%%in_new_loop --timeout {option}\npass", f"got '{option}'")


@pytest.mark.parametrize(
    ("code", "fragments"),
    [
        ("%%in_new_loop\n", ["cell body is empty"]),
        ("%%in_new_loop\n   \n# only a comment\n", ["needs code in the cell body"]),
        ("%%in_new_loop\nx = 1\nreturn x", ["`return` on line 3", "end the cell with it"]),
        ("%%in_new_loop\nfor i in range(2):\n    yield i", ["`yield` on line 3", "async for"]),
        ("%%in_new_loop --timeout nan\npass", ["positive number", "'nan'"]),
        ("%%in_new_loop --timeout\npass", ["expected one argument"]),
        ("%%in_new_loop --fast\npass", ["unrecognized arguments: --fast"]),
        ("%%in_new_loop stray words\npass", ["unrecognized arguments: stray words"]),
    ],
)
def test_cell_bad_input_is_a_usage_error(kernel: Kernel, code: str, fragments: list[str]) -> None:
    assert_usage_error(kernel, code, *fragments)
