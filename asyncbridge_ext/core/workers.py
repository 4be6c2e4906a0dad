"""How many worker threads the core runs now: one read of both pools, for reports.

Standard library only. The pools themselves are private (:mod:`._pools`); this is what
the rest of the package (``%asyncbridge``) may read of them.
"""

from __future__ import annotations

from ._pools import IDLE_SECONDS, pool_status

__all__ = ["IDLE_SECONDS", "worker_status"]


def worker_status() -> dict[str, dict[str, int]]:
    """Busy, idle and abandoned-but-running workers of each pool, keyed by its function.

    ``{"run_coroutine_in_new_loop": {"busy": 0, "idle": 1, "abandoned": 0},
    "run_in_thread": {...}}``. Callable from any thread; it starts no pool (a pool not
    used yet in this process, a forked child included, reports zeros).
    """
    return pool_status()
