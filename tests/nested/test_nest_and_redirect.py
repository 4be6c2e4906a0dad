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
        # 3.14+: refused before the import (it would not work), so no pip command.
        (
            "nest_asyncio",
            "the archived nest_asyncio does not work on Python 3.14"
            if sys.version_info >= (3, 14)
            else "pip install 'asyncbridge-ext[nest-asyncio]'",
        ),
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
        except (ImportError, RuntimeError) as exc:
            print(type(exc).__name__, exc)
        """
    )
    assert pip in out
    refused = backend == "nest_asyncio" and sys.version_info >= (3, 14)
    assert out.startswith("RuntimeError" if refused else "ImportError"), out


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


def test_thread_mode_serves_nested_runs_on_this_thread_and_uninstalls_cleanly() -> None:
    out = run_python(
        """
        import asyncio, threading
        from asyncbridge_ext.nested.redirect import NestedRunRedirect
        def entry_points():
            return (asyncio.run, getattr(asyncio, "Runner", asyncio).run,  # Runner: 3.11+
                    asyncio.BaseEventLoop.run_until_complete, asyncio.BaseEventLoop.run_forever)
        originals = entry_points()

        async def where():
            return threading.get_ident(), asyncio.get_running_loop()

        NestedRunRedirect.install("thread")
        NestedRunRedirect.install("thread")
        print("installed:", NestedRunRedirect.installed, NestedRunRedirect.replaced())
        print("top level runs here:", asyncio.run(where())[0] == threading.get_ident())

        async def cell():
            kernel_loop = asyncio.get_running_loop()
            nested = asyncio.run(where())
            loop = asyncio.new_event_loop()
            try:
                own = loop.run_until_complete(where())
            finally:
                loop.close()
            running = kernel_loop.run_until_complete(where())
            still = asyncio.get_running_loop() is kernel_loop
            results = (nested, own, running)
            return [r[0] for r in results], [r[1] for r in results], still, kernel_loop

        idents, loops, still, kernel_loop = asyncio.run(cell())
        print("on the calling thread:", set(idents) == {threading.get_ident()})
        print("never on the running loop:", all(l is not kernel_loop for l in loops))
        print("running loop put back:", still)
        print("no nest patch:", not hasattr(asyncio, "_nest_patched"))
        NestedRunRedirect.uninstall()
        restored = all(a is b for a, b in zip(entry_points(), originals))
        print("restored:", restored, NestedRunRedirect.installed)

        async def cell_again():
            asyncio.run(where())
        try:
            asyncio.run(cell_again())
        except RuntimeError as exc:
            print("after uninstall:", exc)
        """
    )
    assert "installed: True {}" in out
    assert "top level runs here: True" in out
    assert "on the calling thread: True" in out
    assert "never on the running loop: True" in out
    assert "running loop put back: True" in out
    assert "no nest patch: True" in out
    assert "restored: True False" in out
    assert "after uninstall: asyncio.run() cannot be called from a running event loop" in out


def test_replaced_wrappers_are_reported_and_restored() -> None:
    out = run_python(
        """
        import asyncio
        import nest_asyncio
        from asyncbridge_ext.nested.redirect import NestedRunRedirect

        NestedRunRedirect.install("auto")
        nest_asyncio.apply(asyncio.new_event_loop())  # replaces asyncio.run with its own
        print("installed:", NestedRunRedirect.installed)
        print("replaced:", NestedRunRedirect.replaced())
        restored, failed = NestedRunRedirect.restore()
        print("restored:", restored, failed, NestedRunRedirect.installed)
        print("status:", NestedRunRedirect.status())
        NestedRunRedirect.uninstall()
        print("status:", NestedRunRedirect.status())
        """
    )
    assert "installed: False" in out
    assert "replaced: {'asyncio.run': 'nest_asyncio.run'}" in out
    assert "restored: {'asyncio.run': 'nest_asyncio.run'} {} True" in out
    assert "status: {'mode': 'auto', 'installed': True, 'replaced': {}}" in out
    assert "status: {'mode': None, 'installed': False, 'replaced': {}}" in out


def test_auto_cannot_patch_uvloop_and_refuses_with_the_thread_mode_error() -> None:
    pytest.importorskip("uvloop")
    out = run_python(
        """
        import asyncio, uvloop
        from asyncbridge_ext import NestAsyncio
        from asyncbridge_ext.nested.redirect import NestedRunRedirect

        async def work():
            return 1

        async def cell():
            task = asyncio.ensure_future(work())  # a task of the running uvloop loop
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(task)
            except RuntimeError as exc:
                print(exc)
            finally:
                loop.close()
            await asyncio.sleep(0)  # let the cancellation land
            print("cancelled:", task.cancelled())
            print("applied:", NestAsyncio.is_applied)
            return asyncio.run(work())

        NestedRunRedirect.install("auto")
        print("served:", uvloop.run(cell()))
        """
    )
    assert "asyncbridge_ext (nested_run = 'auto'): loop.run_until_complete() was called" in out
    assert "cannot make a uvloop.Loop loop re-entrant" in out
    assert 'Set `%config AsyncBridge.nested_run = "auto"`' in out
    assert "cancelled: True" in out
    assert "applied: False" in out
    assert "served: 1" in out


def test_replace_archived_puts_nest_asyncio2_in_charge() -> None:
    out = run_python(
        """
        import asyncio
        import nest_asyncio
        from asyncbridge_ext import NestAsyncio

        async def cell():
            print("none yet:", NestAsyncio.replace_archived())
            nest_asyncio.apply()
            print("archived:", NestAsyncio.archived_in_force, NestAsyncio.backend)
            found = NestAsyncio.replace_archived()
            print("found:", found.split()[0], NestAsyncio.backend, NestAsyncio.is_applied)
            print("again:", NestAsyncio.replace_archived())
            return asyncio.run(asyncio.sleep(0, result="nested"))

        print(asyncio.run(cell()))
        """
    )
    assert "none yet: None" in out
    assert "archived: True nest_asyncio" in out
    assert "found: nest_asyncio nest_asyncio2 True" in out
    assert "again: None" in out
    assert out.rstrip().endswith("nested")


def test_a_nested_run_off_the_main_thread_is_interrupted_through_the_registry() -> None:
    """A subshell's cell (a thread with a running loop) gets no SIGINT: the registry stands in."""
    out = run_python(
        """
        import asyncio, threading
        from asyncbridge_ext.core.interrupts import INTERRUPTS
        from asyncbridge_ext.nested.redirect import NestedRunRedirect

        NestedRunRedirect.install("thread")
        started, state = threading.Event(), {}

        async def slow():
            try:
                started.set()
                await asyncio.sleep(60)
            finally:
                state["finally ran"] = True

        async def subshell_cell():
            try:
                asyncio.run(slow())
            except KeyboardInterrupt:
                state["raised"] = "KeyboardInterrupt"
            state["loop back"] = asyncio.get_running_loop() is not None

        thread = threading.Thread(target=asyncio.run, args=(subshell_cell(),))
        thread.start()
        assert started.wait(30)
        print("targets:", INTERRUPTS.interrupt_off_main())
        thread.join(30)
        print(sorted(state.items()), thread.is_alive(), INTERRUPTS.waiting_threads())
        """
    )
    assert "targets: 1" in out
    expected = "[('finally ran', True), ('loop back', True), ('raised', 'KeyboardInterrupt')]"
    assert f"{expected} False 0" in out


def test_wrappers_keep_asyncios_signatures_and_arguments_per_python_version() -> None:
    out = run_python(
        """
        import asyncio, inspect, sys
        from asyncbridge_ext.nested.redirect import NestedRunRedirect

        before = inspect.signature(asyncio.run)
        NestedRunRedirect.install("thread")
        print("same signature:", inspect.signature(asyncio.run) == before)

        class MyLoop(asyncio.SelectorEventLoop):
            pass

        async def kind():
            return type(asyncio.get_running_loop()).__name__

        async def cell():
            try:
                return asyncio.run(kind(), loop_factory=MyLoop)
            except TypeError as exc:
                return f"TypeError: {exc}"

        print("loop_factory:", asyncio.run(cell()), sys.version_info >= (3, 12))
        """
    )
    assert "same signature: True" in out
    if sys.version_info >= (3, 12):
        assert "loop_factory: MyLoop True" in out
    else:
        refused = "TypeError: run() got an unexpected keyword argument 'loop_factory'"
        assert f"loop_factory: {refused}" in out


def test_after_autos_fallback_uninstall_leaves_the_nest_librarys_asyncio_run() -> None:
    out = run_python(
        """
        import asyncio, io, contextlib
        import nest_asyncio2
        from asyncbridge_ext.nested.redirect import NestedRunRedirect

        async def work():
            return 7

        async def cell():
            loop = asyncio.get_running_loop()
            with contextlib.redirect_stderr(io.StringIO()) as told:
                result = loop.run_until_complete(loop.create_task(work()))
            print("fallback:", result, "re-entrant" in told.getvalue())
            print("ours again:", NestedRunRedirect.installed)
            NestedRunRedirect.uninstall()
            print("nest's run:", asyncio.run is nest_asyncio2.run)
            return asyncio.run(work())

        NestedRunRedirect.install("auto")
        print("nested after uninstall:", asyncio.run(cell()))
        """
    )
    assert "fallback: 7 True" in out
    assert "ours again: True" in out
    assert "nest's run: True" in out
    assert "nested after uninstall: 7" in out


def test_the_archived_library_is_refused_on_python_3_14_and_newer() -> None:
    out = run_python(
        """
        import asyncio, sys
        from asyncbridge_ext import NestAsyncio

        loop = asyncio.new_event_loop()
        try:
            print("applied", NestAsyncio.apply_once(loop, backend="nest_asyncio"))
        except RuntimeError as exc:
            print("refused", exc)
        print("patched", NestAsyncio.backend)
        loop.close()
        """
    )
    if sys.version_info >= (3, 14):
        assert "refused the archived nest_asyncio does not work on Python 3.14 and newer" in out
        assert '`%config AsyncBridge.nest_backend = "auto"`' in out
        assert "patched None" in out  # nothing was patched
    else:
        assert "applied nest_asyncio" in out and "patched nest_asyncio" in out
