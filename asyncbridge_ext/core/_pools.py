"""The worker threads of :func:`~asyncbridge_ext.run_in_thread`: loop-free, reused, named.

Each worker is a plain daemon thread named ``asyncbridge-thread-N`` that runs one
function at a time and never sets or runs an event loop itself. A call takes the first
free worker in creation order, so consecutive calls land on the same thread (the
*first* worker) while it is free, and thread-local state (a library's default event
loop, an HTTP session) persists between them. A call made while every worker is busy
(a nested call, another thread, a subshell) starts a new worker instead of waiting, so
it never deadlocks. Extra workers that stay idle for ``idle_seconds`` exit; the first
one stays. A worker whose call was abandoned (stuck in a C call past the grace period)
is never given work again and exits when its function finally returns.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from ._call import Call, release_caller
from ._per_process import PerProcess
from ._stop import Stopper, StopRequested

__all__ = ["MAX_THREADS", "ThreadPool", "thread_pool"]

logger = logging.getLogger("asyncbridge_ext")

#: An extra worker with nothing to do for this long exits.
IDLE_SECONDS = 10.0

#: At most this many workers (busy, idle or abandoned and still running) at once.
MAX_THREADS = 64


class Job:
    """One function call handed to a worker, and where it stands (guarded by the pool lock)."""

    __slots__ = ("abandoned", "args", "call", "finished", "func", "kwargs", "queued", "stopper")

    def __init__(self, func: Callable[..., Any], args: Any, kwargs: Any) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.call: Call[Any] = Call()  # copies the caller's contextvars context
        self.stopper = Stopper()
        self.queued = False
        self.finished = False
        self.abandoned = False

    def stop(self) -> None:
        """On the caller's thread, after a timeout or Ctrl-C: stop the function.

        A job never handed over (a Ctrl-C landed in the hand-over) has nothing to stop
        and nothing to wait for: it is settled at once, so the caller does not wait out
        the grace period for a function that will never run.
        """
        if self.queued:
            self.stopper.stop()
        else:
            self.call.settled = True
            release_caller(self.call)


class Worker:
    """One worker thread and its job queue. Its state is guarded by the pool's lock."""

    __slots__ = ("busy", "jobs", "started", "thread")

    def __init__(self, name: str, serve: Callable[[Worker], None]) -> None:
        self.thread = threading.Thread(target=serve, args=(self,), name=name, daemon=True)
        self.jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()  # None: exit
        self.busy = True
        self.started = False


class ThreadPool:
    """Loop-free worker threads for ``run_in_thread`` (use :func:`thread_pool`)."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS, max_threads: int = MAX_THREADS):
        self.idle_seconds = idle_seconds
        self.max_threads = max_threads
        self._lock = threading.Lock()
        self._workers: list[Worker] = []  # workers that may get work, oldest first
        self._abandoned: list[Worker] = []  # given up on, their function still running
        self._names = itertools.count(1)

    def reserve(self) -> Worker:
        """Mark the first free worker busy and return it, or make a new one (not started).

        Runs on the caller's thread. Raises ``RuntimeError`` when ``max_threads``
        workers exist and all are busy.
        """
        with self._lock:
            for worker in self._workers:
                if not worker.busy:
                    worker.busy = True
                    return worker
            self._abandoned = [w for w in self._abandoned if w.thread.is_alive()]
            if len(self._workers) + len(self._abandoned) >= self.max_threads:
                raise RuntimeError(
                    f"run_in_thread() has {self.max_threads} worker threads busy "
                    f"({len(self._abandoned)} of them abandoned, stuck in blocking calls); "
                    "it starts no more. Let some calls finish first, or restart the kernel "
                    "(or process) to get rid of stuck ones."
                )
            worker = Worker(f"asyncbridge-thread-{next(self._names)}", self._serve)
            self._workers.append(worker)
            return worker

    def submit(self, worker: Worker, job: Job) -> None:
        """Hand ``job`` to the reserved ``worker``, starting its thread the first time."""
        with self._lock:
            start = not worker.started
            worker.started = True
        if start:
            worker.thread.start()
            logger.debug("started worker thread %s", worker.thread.name)
        job.queued = True  # before put: a Ctrl-C in between abandons a job that never ran
        worker.jobs.put(job)

    def after_call(self, worker: Worker, job: Job) -> None:
        """On the caller's thread, when the wait ended: give up on a job still running."""
        with self._lock:
            if job.finished:
                return
            if not job.queued:  # a Ctrl-C came before the hand-over: nothing ran
                job.call.settled = True
                if worker.thread.is_alive():
                    worker.busy = False
                elif worker in self._workers:  # its start may have been cut short
                    self._workers.remove(worker)
                return
            job.abandoned = True
            if worker in self._workers:
                self._workers.remove(worker)
            if worker.thread.is_alive():
                self._abandoned.append(worker)

    def retire_idle(self) -> list[threading.Thread]:
        """Tell every idle worker, the first one included, to exit; return their threads.

        Busy workers are left alone. The caller may join the returned threads; a later
        call starts a new first worker (thread-local state of the old one is gone).
        """
        with self._lock:
            idle = [w for w in self._workers if not w.busy]
            for worker in idle:
                self._workers.remove(worker)
                worker.jobs.put(None)
        return [w.thread for w in idle if w.started]

    def status(self) -> dict[str, int]:
        """How many workers are busy, idle, and abandoned but still running (for reports)."""
        with self._lock:
            busy = sum(1 for w in self._workers if w.busy and w.thread.is_alive())
            idle = sum(1 for w in self._workers if not w.busy and w.thread.is_alive())
            abandoned = sum(1 for w in self._abandoned if w.thread.is_alive())
        return {"busy": busy, "idle": idle, "abandoned": abandoned}

    def _serve(self, worker: Worker) -> None:
        """Body of a worker thread: run jobs one after another until idle too long."""
        try:
            while True:
                try:
                    job = worker.jobs.get(timeout=self.idle_seconds)
                except queue.Empty:
                    with self._lock:
                        if worker not in self._workers:
                            return  # abandoned while its job was on the way
                        if worker.busy or worker is self._workers[0]:
                            continue  # a job is on its way, or this is the first worker
                        self._workers.remove(worker)
                        return
                if job is None:
                    return  # retired by retire_idle()
                _run_job(job)
                with self._lock:
                    job.finished = True
                    job.call.settled = True
                    if not job.abandoned:
                        worker.busy = False
                # Released only now, so the caller's next call finds this worker free.
                release_caller(job.call)
                if job.abandoned:
                    return
        finally:
            logger.debug("worker thread %s exits", worker.thread.name)


def _run_job(job: Job) -> None:
    """Call the job's function under the caller's context; store its outcome in the call.

    Runs on the worker. A :class:`StopRequested` that lands after the function ended
    (before :meth:`Stopper.end` took it back) is caught here; at most one is ever sent
    per call, so the second :meth:`Stopper.end` returns at once.
    """
    __tracebackhide__ = True
    call = job.call
    try:
        try:
            if job.stopper.begin():
                call.result = call.context.run(job.func, *job.args, **job.kwargs)
            else:
                call.error = StopRequested()
        except BaseException as exc:
            call.error = exc
        job.stopper.end()
    except StopRequested:
        job.stopper.end(landed=True)


_pools: PerProcess[ThreadPool] = PerProcess(ThreadPool)


def thread_pool() -> ThreadPool:
    """The pool of this process, created on first use (nothing starts at import).

    A child made by ``os.fork`` (``multiprocessing``'s default on Linux before 3.14)
    inherits the pool but none of its threads: it gets a pool of its own, instead of
    queueing work for workers that do not exist there.
    """
    return _pools.get()
