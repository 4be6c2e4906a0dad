"""The IPython-free parts behind %asyncbridge: warnings, the thread-mode check, the log handler."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from asyncbridge_ext.ipython.diagnostics import _findings
from asyncbridge_ext.ipython.notebook_log import NotebookLog
from asyncbridge_ext.nested.in_force import thread_mode_wrappers
from asyncbridge_ext.nested.redirect import NestedRunRedirect


def facts_for(mode: str, loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    return {
        "mode": mode,
        "nest_patch": "none",
        "kernel_loop": f"{type(loop).__module__}.{type(loop).__qualname__}",
        "kernel_loop_reentrant": bool(getattr(type(loop), "_nest_patched", False)),
        "thread_wrappers": "not installed",
        "abandoned_running": [],
    }


def test_nest_mode_on_a_uvloop_loop_warns_and_points_to_thread_mode() -> None:
    uvloop = pytest.importorskip("uvloop")
    loop = uvloop.new_event_loop()
    try:
        in_nest = [f for f in _findings(facts_for("nest", loop), loop) if "uvloop" in f.problem]
        in_thread = [f for f in _findings(facts_for("thread", loop), loop) if "uvloop" in f.problem]
    finally:
        loop.close()
    (finding,) = in_nest
    assert "kernel's loop is uvloop.Loop, which the nest libraries cannot patch" in finding.problem
    assert 'nested_run = "thread"' in finding.fix
    assert in_thread == []


@pytest.fixture
def thread_mode() -> Iterator[None]:
    original = asyncio.run
    NestedRunRedirect.install()
    try:
        yield
    finally:
        asyncio.run = original
        NestedRunRedirect.uninstall()
        asyncio.run = original


def replacement_run(main: Any, **kwargs: Any) -> Any:
    raise AssertionError("not called")


def test_thread_wrappers_intact_then_replaced_by_whom(thread_mode: None) -> None:
    assert thread_mode_wrappers("thread", None) == "intact"
    asyncio.run = replacement_run
    assert thread_mode_wrappers("thread", None) == (
        f"replaced: asyncio.run by {replacement_run.__module__}.replacement_run"
    )


class PatchedLoop(asyncio.SelectorEventLoop):
    """A loop class patched the way the nest libraries patch the kernel's loop class."""

    def run_until_complete(self, future: Any) -> Any:
        raise AssertionError("not called")


def test_a_patch_on_the_kernel_loop_class_counts_as_replaced_in_thread_mode(
    thread_mode: None,
) -> None:
    loop = PatchedLoop()
    try:
        assert thread_mode_wrappers("thread", loop) == (
            f"replaced: PatchedLoop.run_until_complete by {__name__}"
        )
        plain = asyncio.new_event_loop()
        try:
            assert thread_mode_wrappers("thread", plain) == "intact"
        finally:
            plain.close()
    finally:
        loop.close()


def test_thread_wrappers_outside_thread_mode_are_not_installed() -> None:
    assert thread_mode_wrappers("nest", None) == "not installed"


def test_the_log_handler_writes_to_the_stderr_current_when_the_record_is_emitted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = NotebookLog()
    logger = logging.getLogger("asyncbridge_ext")
    level_before = logger.level
    log.set_level("debug")
    try:
        first, second = io.StringIO(), io.StringIO()
        monkeypatch.setattr(sys, "stderr", first)
        logger.debug("one")
        monkeypatch.setattr(sys, "stderr", second)
        logger.info("two")
        log.set_level("info")
        assert log.level_name == "info"  # what %asyncbridge reports as "log"
        logger.debug("hidden")
    finally:
        log.set_level("off")
    assert first.getvalue() == "asyncbridge_ext DEBUG: one\n"
    assert second.getvalue() == "asyncbridge_ext INFO: two\n"
    assert log.handler is None and log.handler not in logger.handlers
    assert logger.level == level_before
