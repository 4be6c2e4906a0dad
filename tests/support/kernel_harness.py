"""A small harness for running cells in real Jupyter kernels (after ipykernel's tests/utils.py).

The kernel always runs with this interpreter (``sys.executable``) through a kernelspec
written to a temporary directory, whatever kernelspecs the machine has, and with
``IPYTHONDIR`` pointing at an empty temporary directory, so no user or test config
(auto-load of extensions, startup files) leaks in. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

import IPython
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

#: IPython 8+ labels a cell's frames "Cell In[n]" in tracebacks; IPython 7 (Colab) shows the
#: name of the file the compiler gave that code (ipykernel 6: a temp file per code hash).
TRACEBACKS_SAY_CELL_IN = IPython.version_info >= (8,)
KERNEL_NAME = "asyncbridge-test"
STARTUP_TIMEOUT = 60.0
CELL_TIMEOUT = 30.0

# CPython 3.14.10 and 3.15.2 (measured): asyncio.gather() called while a loop runs in the
# thread binds to that loop, so futures of another loop make it raise "ValueError: The future
# belongs to a different loop ...", in a script too (3.11-3.13 took the loop of the first
# future). A cell runs while the kernel's loop runs, so it meets this whatever the mode.
GATHER_BINDS_TO_RUNNING_LOOP = sys.version_info >= (3, 14)

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


@dataclass
class Cell:
    """What one executed cell produced: its reply and its iopub output, in order."""

    code: str
    msg_id: str
    reply: dict[str, Any] | None = None
    outputs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    idle: bool = False
    started: bool = False  # the kernel said it is busy with this cell

    @property
    def done(self) -> bool:
        return self.idle and self.reply is not None

    @property
    def status(self) -> str | None:
        return None if self.reply is None else self.reply["status"]

    @property
    def stdout(self) -> str:
        return self._stream("stdout")

    @property
    def stderr(self) -> str:
        return self._stream("stderr")

    def _stream(self, name: str) -> str:
        return "".join(
            c["text"] for kind, c in self.outputs if kind == "stream" and c["name"] == name
        )

    @property
    def results(self) -> list[str]:
        """text/plain of every execute_result (normally zero or one)."""
        return [c["data"]["text/plain"] for kind, c in self.outputs if kind == "execute_result"]

    @property
    def result(self) -> str | None:
        results = self.results
        return results[-1] if results else None

    @property
    def error(self) -> dict[str, Any] | None:
        errors = [c for kind, c in self.outputs if kind == "error"]
        return errors[-1] if errors else None

    @property
    def traceback(self) -> str:
        error = self.error
        return "" if error is None else strip_ansi("\n".join(error["traceback"]))

    def describe(self) -> str:
        return f"cell {self.code!r}: status={self.status} outputs={self.outputs!r}"


class Kernel:
    """A running kernel plus a blocking client; cells are tracked by message id."""

    def __init__(self, manager: KernelManager, client: BlockingKernelClient) -> None:
        self.manager = manager
        self.client = client
        self._cells: dict[str, Cell] = {}
        #: The last iopub status seen ("busy" / "idle"), and the last messages, for failures.
        self.execution_state = "unknown"
        self._recent: deque[dict[str, Any]] = deque(maxlen=8)

    def submit(
        self, code: str, subshell_id: str | None = None, stop_on_error: bool = False
    ) -> Cell:
        """Send ``code`` for execution without waiting for it (to a subshell if given).

        With ``stop_on_error=False`` (the default) an error in this cell does not abort
        the cells sent after it, which the kernel would otherwise answer with status
        "aborted" without running them. The tests check each cell's own outcome, and
        ipykernel 6.17 (Colab's) sends an error's reply before it starts aborting, so
        even a cell sent only once that reply arrived (an interrupted cell's, say) could
        be aborted unrun.
        """
        if subshell_id is None:
            msg_id = self.client.execute(
                code, store_history=True, allow_stdin=False, stop_on_error=stop_on_error
            )
        else:
            content = {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": stop_on_error,
            }
            msg = self.client.session.msg("execute_request", content)
            msg["header"]["subshell_id"] = subshell_id
            self.client.shell_channel.send(msg)
            msg_id = msg["header"]["msg_id"]
        cell = Cell(code, msg_id)
        self._cells[msg_id] = cell
        return cell

    def run(self, code: str, timeout: float = CELL_TIMEOUT, subshell_id: str | None = None) -> Cell:
        """Execute ``code`` and wait (at most ``timeout`` s) until it has fully finished."""
        cell = self.submit(code, subshell_id)
        self.wait([cell], timeout)
        return cell

    def ok(self, code: str, timeout: float = CELL_TIMEOUT, subshell_id: str | None = None) -> Cell:
        """Like :meth:`run`, but fail the test unless the cell succeeded."""
        cell = self.run(code, timeout, subshell_id)
        assert cell.status == "ok", cell.describe() + "\n" + cell.traceback + "\n" + self.state()
        return cell

    def create_subshell(self, timeout: float = CELL_TIMEOUT) -> str:
        """Ask the kernel for a new subshell (ipykernel 7, JEP 91); return its id."""
        msg = self.client.session.msg("create_subshell_request", {})
        self.client.control_channel.send(msg)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no create_subshell_reply from the kernel")
            try:
                reply = self.client.get_control_msg(timeout=remaining)
            except Empty:
                continue
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                content = reply["content"]
                assert content.get("status") == "ok", content
                return str(content["subshell_id"])

    def confirm_received(self, subshell_id: str, timeout: float = CELL_TIMEOUT) -> None:
        """Return once the kernel has taken in every request sent to it so far.

        Runs a cell in the subshell ``subshell_id`` (ipykernel 7): the kernel's shell
        channel thread forwards requests in the order they arrived, so that cell runs only
        after every earlier request was handed to its shell, whether or not that shell is
        busy. Fails if the subshell cell does not reply.
        """
        self.ok("pass", timeout, subshell_id)

    def wait(self, cells: Sequence[Cell], timeout: float = CELL_TIMEOUT) -> None:
        """Pump messages until every cell replied and went idle, or fail after ``timeout``.

        The failure says which cells did not reply, whether the kernel is still working
        (busy: a cell hangs) or idle (the missing cells were dropped), and its last messages.
        """
        deadline = time.monotonic() + timeout
        try:
            while not all(cell.done for cell in cells):
                self._pump(deadline, [c.describe() for c in cells if not c.done])
        except TimeoutError:
            missing = [cell for cell in cells if not cell.done]
            started = sum(cell.started for cell in missing)
            raise AssertionError(
                f"{len(missing)} of {len(cells)} cells did not reply within {timeout} s: "
                f"{started} started and did not finish (hanging), {len(missing) - started} "
                "never started (still queued, or dropped by the kernel).\nNo reply from: "
                + "; ".join(cell.describe() for cell in missing)
                + "\n"
                + self.state()
            ) from None

    def wait_for_stdout(self, cell: Cell, text: str, timeout: float = CELL_TIMEOUT) -> None:
        """Wait until ``cell`` has printed ``text`` (a marker that proves it is running)."""
        deadline = time.monotonic() + timeout
        while text not in cell.stdout:
            if cell.done:
                raise AssertionError(f"cell finished without printing {text!r}: {cell.describe()}")
            self._pump(deadline, [f"marker {text!r} from {cell.describe()}"])

    def _route(self, msg: dict[str, Any]) -> None:
        self._recent.append(msg)
        if msg["msg_type"] == "status":
            self.execution_state = msg["content"]["execution_state"]
        cell = self._cells.get(msg["parent_header"].get("msg_id", ""))
        if cell is None:
            return
        kind = msg["msg_type"]
        if kind == "execute_reply":
            cell.reply = msg["content"]
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            cell.idle = True
        elif kind == "status" and msg["content"]["execution_state"] == "busy":
            cell.started = True
        elif kind in ("stream", "execute_result", "display_data", "error"):
            cell.outputs.append((kind, msg["content"]))

    def interrupt(self) -> None:
        self.manager.interrupt_kernel()

    def interrupt_once_running(self, cell: Cell, marker: str, timeout: float = 30.0) -> None:
        """Wait for ``marker`` (proof the cell is running), interrupt the kernel, and wait
        for the cell to end with KeyboardInterrupt."""
        self.wait_for_stdout(cell, marker)
        self.interrupt()
        try:
            self.wait([cell], timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(
                f"the interrupted cell did not reply within {timeout} s: the interrupt did "
                f"not stop it\n{exc}"
            ) from None
        assert cell.error is not None and cell.error["ename"] == "KeyboardInterrupt", (
            cell.describe()
        )

    def _pump(self, deadline: float, waiting_for: list[str]) -> None:
        """Route one iopub or shell message to its cell."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                "kernel did not answer in time; waiting for: "
                + "; ".join(waiting_for)
                + "\n"
                + self.state()
            )
        got = False
        # The client's get_*_msg, not its channels' get_msg: with jupyter_client 7 (Colab's
        # 7.4.9) a channel's get_msg is a coroutine even in the blocking client.
        for get_msg in (self.client.get_iopub_msg, self.client.get_shell_msg):
            while True:
                try:
                    msg = get_msg(timeout=0)
                except Empty:
                    break
                got = True
                self._route(msg)
        if not got:
            try:
                self._route(self.client.get_iopub_msg(timeout=min(remaining, 0.05)))
                got = True
            except Empty:
                pass
        if not got and not self.manager.is_alive():
            raise RuntimeError(
                "the kernel died; waiting for: " + "; ".join(waiting_for) + "\n" + self.state()
            )

    def state(self) -> str:
        """What the kernel was doing, for a failure message: alive, busy or idle, and the
        last messages it sent (type, the cell they belong to, a short content)."""
        alive = "alive" if self.manager.is_alive() else "dead"
        lines = [f"kernel state: {alive}, last status {self.execution_state!r}; last messages:"]
        for msg in self._recent:
            parent = msg["parent_header"].get("msg_id", "")
            cell = self._cells.get(parent)
            origin = repr(cell.code[:40]) if cell is not None else "another request"
            lines.append(f"  {msg['msg_type']} for {origin}: {str(msg['content'])[:160]}")
        return "\n".join(lines)


def usage_error(kernel: Kernel, code: str, *fragments: str) -> str:
    """Run ``code``: it must fail with a UsageError whose message names every fragment and
    is shown to the user. Returns the message."""
    cell = kernel.run(code)
    assert cell.reply is not None and cell.reply["status"] == "error", cell.describe()
    assert cell.reply["ename"] == "UsageError", cell.describe()
    message = str(cell.reply["evalue"])
    assert message in cell.stderr, cell.describe()  # what the user sees
    for fragment in fragments:
        assert fragment in message, message
    return message


def _write_kernelspec(directory: Path, ipython_dir: Path, interrupt_mode: str) -> None:
    spec_dir = directory / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "asyncbridge tests",
        "language": "python",
        "env": {"IPYTHONDIR": str(ipython_dir)},
        "interrupt_mode": interrupt_mode,
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


def ipc_transport(directory: str) -> dict[str, str]:
    """KernelManager settings for a kernel on Unix sockets in ``directory``, not TCP ports.

    jupyter_client picks TCP ports by binding port 0 and letting go; the kernel binds them
    a moment later, and another test run on the machine (the matrix runs two at a time) can
    take one in between: "Address already in use", the kernel dies at start. Sockets in a
    directory of the test's own cannot collide. ``directory`` must be short (a socket path
    has at most 107 bytes).
    """
    return {"transport": "ipc", "ip": os.path.join(directory, "kernel")}


@contextmanager
def start_kernel(
    extra_arguments: Sequence[str] = (),
    kernel_config: str | None = None,
    interrupt_mode: str = "signal",
) -> Iterator[Kernel]:
    """Start a kernel with ``sys.executable`` and a fresh IPYTHONDIR; shut it down after.

    ``extra_arguments`` go to the kernel's command line (e.g. ``["--ext", "asyncbridge_ext"]``);
    ``kernel_config`` becomes the profile's ``ipython_kernel_config.py``; ``interrupt_mode``
    is the kernelspec's: ``"signal"`` (the client sends SIGINT) or ``"message"`` (an
    ``interrupt_request`` on the control channel, and the kernel signals itself).
    """
    with tempfile.TemporaryDirectory(prefix="asyncbridge-kernel-") as tmp:
        kernels_dir = Path(tmp) / "kernels"
        ipython_dir = Path(tmp) / "ipython"
        profile_dir = ipython_dir / "profile_default"
        profile_dir.mkdir(parents=True)
        if kernel_config is not None:
            (profile_dir / "ipython_kernel_config.py").write_text(kernel_config)
        _write_kernelspec(kernels_dir, ipython_dir, interrupt_mode)
        manager = KernelManager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels_dir)]),
            **ipc_transport(tmp),
        )
        env = {**os.environ, "IPYTHONDIR": str(ipython_dir), "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
        manager.start_kernel(extra_arguments=list(extra_arguments), env=env)
        client = None
        try:
            client = manager.client()
            client.start_channels()
            client.wait_for_ready(timeout=STARTUP_TIMEOUT)
            yield Kernel(manager, client)
        finally:
            if client is not None:
                client.stop_channels()
            manager.shutdown_kernel(now=True)
