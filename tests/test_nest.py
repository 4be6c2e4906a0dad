"""NestAsyncio and the thread-mode redirect. Each test patches asyncio, so each runs in
its own subprocess and the test process stays unpatched."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def run_python(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_apply_once_makes_the_running_loop_reentrant_once() -> None:
    out = run_python(
        """
        import asyncio, sys
        from asyncbridge_ext import NestAsyncio
        assert "nest_asyncio2" not in sys.modules  # nothing imported before it is asked
        assert NestAsyncio.is_applied is False and NestAsyncio.backend is None

        async def cell():
            print("before", NestAsyncio.is_applied)
            print("backend", NestAsyncio.apply_once())
            print("again", NestAsyncio.apply_once())
            print("after", NestAsyncio.is_applied)
            return asyncio.run(asyncio.sleep(0, result="nested"))

        print(asyncio.run(cell()))
        """
    )
    assert out.split("\n")[:5] == [
        "before False",
        "backend nest_asyncio2",
        "again nest_asyncio2",
        "after True",
        "nested",
    ]


def test_is_applied_is_read_from_the_markers_when_another_library_patched_first() -> None:
    out = run_python(
        """
        import asyncio, logging
        import sys
        logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
        import nest_asyncio
        from asyncbridge_ext import NestAsyncio

        async def cell():
            nest_asyncio.apply()
            print("seen", NestAsyncio.is_applied, NestAsyncio.backend)
            print("kept", NestAsyncio.apply_once(backend="nest_asyncio2"))
            print("no second library", hasattr(asyncio, "_nest_asyncio2"))
            return asyncio.run(asyncio.sleep(0, result="nested"))

        print(asyncio.run(cell()))
        """
    )
    assert "seen True nest_asyncio" in out
    assert "already patched by nest_asyncio; not applying nest_asyncio2" in out
    assert "kept nest_asyncio" in out
    assert "no second library False" in out
    assert out.rstrip().endswith("nested")


def test_a_loop_it_cannot_patch_gets_a_clear_error_suggesting_thread_mode() -> None:
    pytest.importorskip("uvloop")
    out = run_python(
        """
        import uvloop
        from asyncbridge_ext import NestAsyncio

        async def cell():
            try:
                NestAsyncio.apply_once()
            except RuntimeError as exc:
                print(exc)
            print("applied", NestAsyncio.is_applied)

        uvloop.run(cell())
        """
    )
    assert "cannot make a uvloop.Loop loop re-entrant" in out
    assert 'nested_run = "thread"' in out
    assert "applied False" in out


@pytest.mark.parametrize(
    ("backend", "pip"),
    [
        ("nest_asyncio2", "pip install 'nest-asyncio2>=1.7.3'"),
        ("nest_asyncio", "pip install 'asyncbridge-ext[nest-asyncio]'"),
    ],
)
def test_a_missing_backend_names_the_pip_command(backend: str, pip: str) -> None:
    out = run_python(
        f"""
        import sys
        sys.modules[{backend!r}] = None  # as if it were not installed
        from asyncbridge_ext import NestAsyncio
        try:
            NestAsyncio.apply_once(backend={backend!r})
        except ImportError as exc:
            print(exc)
        """
    )
    assert pip in out


def test_an_unknown_backend_is_refused() -> None:
    from asyncbridge_ext import NestAsyncio

    with pytest.raises(ValueError, match="backend must be 'auto', 'nest_asyncio2' or"):
        NestAsyncio.apply_once(backend="nest")  # type: ignore[arg-type]


def test_apply_once_is_thread_safe() -> None:
    out = run_python(
        """
        import asyncio, threading
        from asyncbridge_ext import NestAsyncio

        loops = [asyncio.new_event_loop() for _ in range(8)]
        barrier = threading.Barrier(8)
        results = []
        def apply(loop):
            barrier.wait()
            results.append(NestAsyncio.apply_once(loop))
        threads = [threading.Thread(target=apply, args=(loop,)) for loop in loops]
        for t in threads: t.start()
        for t in threads: t.join(10)
        print(sorted(set(results)), NestAsyncio.is_applied)
        for loop in loops:
            print(loop.run_until_complete(asyncio.sleep(0, result=1)), end="")
            loop.close()
        """
    )
    assert out.split("\n")[:2] == ["['nest_asyncio2'] True", "11111111"]


def test_thread_mode_redirects_only_nested_runs_and_uninstalls_cleanly() -> None:
    out = run_python(
        """
        import asyncio, threading
        from asyncbridge_ext.thread_mode import NestedRunRedirect
        original_run = asyncio.run
        original_ruc = asyncio.BaseEventLoop.run_until_complete

        async def where():
            return threading.current_thread().name

        NestedRunRedirect.install()
        NestedRunRedirect.install()
        print("top level runs here:", asyncio.run(where()) == threading.current_thread().name)

        async def cell():
            nested = asyncio.run(where())
            loop = asyncio.new_event_loop()
            try:
                nested_ruc = loop.run_until_complete(where())
            finally:
                loop.close()
            running = asyncio.get_running_loop().run_until_complete(where())
            return nested, nested_ruc, running

        for kind, name in zip(["run", "new loop ruc", "running loop ruc"], asyncio.run(cell())):
            print(f"nested {kind} on a worker:", name.startswith("asyncbridge-worker-"))
        print("no nest patch:", not hasattr(asyncio, "_nest_patched"))
        NestedRunRedirect.uninstall()
        print("restored:", asyncio.run is original_run,
              asyncio.BaseEventLoop.run_until_complete is original_ruc)

        async def cell_again():
            asyncio.run(where())
        try:
            asyncio.run(cell_again())
        except RuntimeError as exc:
            print("after uninstall:", exc)
        """
    )
    assert "top level runs here: True" in out
    assert "nested run on a worker: True" in out
    assert "nested new loop ruc on a worker: True" in out
    assert "nested running loop ruc on a worker: True" in out
    assert "no nest patch: True" in out
    assert "restored: True True" in out
    assert "after uninstall: asyncio.run() cannot be called from a running event loop" in out
