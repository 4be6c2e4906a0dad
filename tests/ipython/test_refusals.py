"""The table of known refusals: each entry matches its library's exact error, nothing else does.

The messages are copied from the libraries' sources (gql ``client.py``, openai-agents
``run.py``, anyio ``_core/_eventloop.py``, asgiref ``sync.py``, Playwright
``sync_api/_context_manager.py``, CPython ``asyncio/runners.py`` and ``base_events.py``).
"""

from __future__ import annotations

import pytest

from asyncbridge_ext.ipython.refusals import KNOWN_REFUSALS, refusal_hint


def playwright_error(message: str, module: str = "playwright._impl._errors") -> Exception:
    """An exception of a class named as Playwright's ``Error`` (Playwright is not a test dep)."""
    error_class = type("Error", (Exception,), {"__module__": module})
    return error_class(message)


class TargetClosedError(Exception):
    pass


REFUSED = {
    "gql": AssertionError(
        "Cannot run client.execute(query) if an asyncio loop is running. "
        "Use 'await client.execute_async(query)' instead."
    ),
    "openai-agents": RuntimeError(
        "AgentRunner.run_sync() cannot be called when an event loop is already running."
    ),
    "openai-agents before 0.2": RuntimeError(
        "Runner.run_sync() cannot be called when an event loop is already running."
    ),
    "anyio": RuntimeError("Already running asyncio in this thread"),
    "asgiref": RuntimeError(
        "You cannot use AsyncToSync in the same thread as an async event loop - "
        "just await the async function directly."
    ),
    "playwright": playwright_error(
        "It looks like you are using Playwright Sync API inside the asyncio loop.\n"
        "Please use the Async API instead."
    ),
    "playwright before 1.41": playwright_error(
        "It looks like you are using Playwright Sync API inside the asyncio loop.\n"
        "Please use the Async API instead.",
        module="playwright._impl._api_types",
    ),
}


@pytest.mark.parametrize("mode", ["nest", "thread", "auto", "off"])
@pytest.mark.parametrize("library", sorted(REFUSED))
def test_each_refusal_gets_the_in_thread_hint_in_every_mode(library: str, mode: str) -> None:
    error = REFUSED[library]
    before = (type(error), str(error), error.args)
    hint = refusal_hint(error, mode)
    assert hint is not None
    assert "`%in_thread EXPR`" in hint and "`%%in_thread` cell" in hint
    assert "\n" not in hint  # one line
    assert (type(error), str(error), error.args) == before  # never changed


ASYNCIO_IN_OFF_MODE = [
    RuntimeError("asyncio.run() cannot be called from a running event loop"),
    RuntimeError("This event loop is already running"),
]


@pytest.mark.parametrize("error", ASYNCIO_IN_OFF_MODE, ids=str)
def test_asyncio_refusals_name_the_modes_only_in_off_mode(error: Exception) -> None:
    hint = refusal_hint(error, "off")
    assert hint is not None
    for mode in ("thread", "auto", "nest"):
        assert f'"{mode}"' in hint
    assert "%config AsyncBridge.nested_run" in hint
    for mode in ("nest", "thread", "auto"):
        assert refusal_hint(error, mode) is None


UNRELATED = [
    RuntimeError("boom"),
    AssertionError(),
    ValueError("Already running asyncio in this thread"),  # right message, wrong type
    RuntimeError("Already running asyncio in this thread, twice"),
    TargetClosedError("It looks like you are using Playwright Sync API inside the asyncio loop"),
    playwright_error("Target page, context or browser has been closed"),
    KeyboardInterrupt(),
]


@pytest.mark.parametrize("error", UNRELATED, ids=repr)
def test_an_unrelated_error_gets_no_hint(error: BaseException) -> None:
    for mode in ("nest", "thread", "auto", "off"):
        assert refusal_hint(error, mode) is None


def test_an_error_whose_str_fails_gets_no_hint() -> None:
    class Unprintable(RuntimeError):
        def __str__(self) -> str:
            raise ValueError("no")

    assert refusal_hint(Unprintable(), "off") is None


def test_every_entry_is_tested_here() -> None:
    matched = {
        refusal
        for error in [*REFUSED.values(), *ASYNCIO_IN_OFF_MODE]
        for refusal in KNOWN_REFUSALS
        if refusal_hint(error, "off", (refusal,)) is not None
    }
    assert matched == set(KNOWN_REFUSALS)
