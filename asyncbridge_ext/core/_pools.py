"""The worker threads of the core: one pool shape, one idle policy, one :meth:`status`.

Two pools of this shape exist per process (see :func:`thread_pool` and
:func:`fresh_loop_pool`): the loop-free workers of
:func:`~asyncbridge_ext.run_in_thread`, daemon threads named ``asyncbridge-thread-N``,
and the workers of :func:`~asyncbridge_ext.run_coroutine_in_new_loop`, named
``asyncbridge-worker-N``, that each run one fresh loop at a time.

A call takes the first free worker in creation order, so consecutive calls land on the
same thread while it is free (for ``run_in_thread`` thread-local state, such as a
library's default event loop, persists between them). A call made while every worker is
busy (a nested call, another thread, a subshell) starts a new worker instead of waiting,
so it never deadlocks. A worker idle for ``idle_seconds`` exits, except the first one of
a pool made with ``keep_first``. A worker whose job was abandoned (its caller stopped
waiting) is never given work again and exits when its job finally returns.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from typing import Any

from ._call import Call, release_caller
from ._per_process import PerProcess

__all__ = ["IDLE_SECONDS", "MAX_THREADS", "Job", "WorkerPool", "fresh_loop_pool", "thread_pool"]

logger = logging.getLogger(__name__)

#: A worker with nothing to do for this long exits (the first one of ``run_in_thread``
#: stays). The one idle timeout of both pools.
IDLE_SECONDS = 10.0

#: At most this many ``run_in_thread`` workers (busy, idle or abandoned and running) at once.
MAX_THREADS = 64


class Job:
    """One piece of work handed to a worker, and where it stands (guarded by the pool lock).

    Subclasses define :meth:`run`, called once on the worker; its outcome goes into
    ``call``. The pool settles ``call`` and wakes its caller after :meth:`run` returns.
    """

    __slots__ = ("abandoned", "call", "finished", "queued")

    def __init__(self, call: Call[Any]) -> None:
        self.call = call
        self.queued = False
        self.finished = False
        self.abandoned = False

    def run(self) -> None:
        """Do the work, on the worker thread; must not raise."""
        raise NotImplementedError


class Worker:
    """One worker thread and its job queue. Its state is guarded by the pool's lock."""

    __slots__ = ("busy", "jobs", "started", "thread")

    def __init__(self, name: str, pool: WorkerPool) -> None:
        self.thread = threading.Thread(target=pool._serve, args=(self,), name=name, daemon=True)
        self.jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()  # None: exit
        self.busy = True
        self.started = False


class WorkerPool:
    """Worker threads named ``{prefix}N`` that run one job at a time, reused between calls.

    ``keep_first``: the first worker never exits for being idle. ``max_threads``
    (``None``: no limit) bounds the workers alive at once, abandoned ones included;
    ``owner`` names the function that refuses a call past that limit.
    """

    def __init__(
        self,
        prefix: str,
        *,
        keep_first: bool = False,
        idle_seconds: float = IDLE_SECONDS,
        max_threads: int | None = None,
        owner: str = "the pool",
    ) -> None:
        self.prefix = prefix
        self.keep_first = keep_first
        self.idle_seconds = idle_seconds
        self.max_threads = max_threads
        self.owner = owner
        self._lock = threading.Lock()
        self._workers: list[Worker] = []  # workers that may get work, oldest first
        self._abandoned: list[Worker] = []  # given up on, their job still running
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
            if self.max_threads is not None:
                self._abandoned = [w for w in self._abandoned if w.thread.is_alive()]
                if len(self._workers) + len(self._abandoned) >= self.max_threads:
                    raise RuntimeError(
                        f"{self.owner} has {self.max_threads} worker threads busy "
                        f"({len(self._abandoned)} of them abandoned, stuck in blocking calls); "
                        "it starts no more. Let some calls finish first, or restart the kernel "
                        "(or process) to get rid of stuck ones."
                    )
            worker = Worker(f"{self.prefix}{next(self._names)}", self)
            self._workers.append(worker)
            return worker

    def submit(self, worker: Worker, job: Job) -> None:
        """Hand ``job`` to the reserved ``worker``, starting its thread the first time.

        Only the caller that reserved ``worker`` touches it until the job ends, so
        ``started`` needs no lock. The job is queued before the thread starts: a Ctrl-C
        that cuts the start short leaves a job that still runs.
        """
        job.queued = True  # before put: a Ctrl-C in between abandons a job that never ran
        worker.jobs.put(job)
        if not worker.started:
            worker.started = True
            worker.thread.start()
            logger.debug("started worker thread %s", worker.thread.name)

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
                        if worker.busy or (self.keep_first and worker is self._workers[0]):
                            continue  # a job is on its way, or this is the kept first worker
                        self._workers.remove(worker)
                        return
                if job is None:
                    return  # retired by retire_idle()
                job.run()
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


_thread_pools: PerProcess[WorkerPool] = PerProcess(
    lambda: WorkerPool(
        "asyncbridge-thread-", keep_first=True, max_threads=MAX_THREADS, owner="run_in_thread()"
    )
)
_fresh_loop_pools: PerProcess[WorkerPool] = PerProcess(lambda: WorkerPool("asyncbridge-worker-"))


def thread_pool() -> WorkerPool:
    """The ``run_in_thread`` pool of this process, created on first use.

    Nothing starts at import. A child made by ``os.fork`` (``multiprocessing``'s
    default on Linux before 3.14) inherits the pool but none of its threads: it gets a
    pool of its own (see :class:`PerProcess`), instead of queueing work for workers that
    do not exist there. The same holds for :func:`fresh_loop_pool`.
    """
    return _thread_pools.get()


def fresh_loop_pool() -> WorkerPool:
    """The ``run_coroutine_in_new_loop`` pool of this process, created on first use."""
    return _fresh_loop_pools.get()


def pool_status() -> dict[str, dict[str, int]]:
    """Both pools' :meth:`WorkerPool.status`, without creating a pool not used yet."""
    empty = {"busy": 0, "idle": 0, "abandoned": 0}
    return {
        name: pool.status() if pool is not None else dict(empty)
        for name, pool in (
            ("run_coroutine_in_new_loop", _fresh_loop_pools.peek()),
            ("run_in_thread", _thread_pools.peek()),
        )
    }
