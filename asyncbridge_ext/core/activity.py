"""What the bridge has done in this process: cheap counters that ``%asyncbridge`` reports.

Every part of the package that routes, runs or gives up on work tells :data:`ACTIVITY`
with one call: :meth:`Activity.count` for an event (a dict increment, cheap enough for
the hot path), :meth:`Activity.abandon` for work that was given up on while it may still
be running. Nothing here starts threads or imports IPython. The extension takes a
:meth:`Activity.snapshot` at load, so the report can say what happened *since load*.

Event names (dotted, grouped by their first word):

- ``nested_run.same_thread``: a nested run served on the calling thread itself with a
  fresh loop (or the library's own loop), while the kernel's loop was paused;
- ``nested_run.reentrant``: a nested run served by the re-entrant (nest-patched) loop;
- ``nested_run.auto_fallback``: "auto" mode applied the nest patch for a call;
- ``nested_run.refused``: a nested run refused with an error that says which setting
  serves it;
- ``magic.<name>``: a call of the magic ``%<name>``;
- ``timeout`` and ``interrupt``: a bridged call stopped by its timeout or by Ctrl-C;
- ``abandoned``: work that did not stop within its grace period (see :meth:`abandon`).

Counts are plain integers bumped without a lock: two threads counting the same event at
the same instant may, very rarely, lose one increment. That is the price of keeping the
counting off the hot path's critical section; the numbers are for a person reading a
report, not for accounting.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

__all__ = ["ACTIVITY", "Activity"]


class Activity:
    """Counters of bridge events and a list of abandoned work (use :data:`ACTIVITY`)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._abandoned: list[tuple[str, Callable[[], bool]]] = []
        self._lock = threading.Lock()

    def count(self, event: str) -> None:
        """Add one to ``event``'s counter. Callable from any thread."""
        self.counts[event] += 1

    def snapshot(self) -> dict[str, int]:
        """A copy of the counters now (to subtract later, for "since load")."""
        return dict(self.counts)

    def since(self, snapshot: dict[str, int]) -> dict[str, int]:
        """The counters minus ``snapshot``, keeping only events that happened since."""
        now = dict(self.counts)
        return {
            name: value - snapshot.get(name, 0)
            for name, value in sorted(now.items())
            if value - snapshot.get(name, 0)
        }

    def abandon(self, what: str, still_running: Callable[[], bool]) -> None:
        """Record work given up on: ``what`` describes it, ``still_running()`` tells if it is.

        ``still_running`` is called later, from whichever thread asks for a report; it
        must be cheap and thread-safe (e.g. ``lambda: not call.settled`` or
        ``thread.is_alive``). Also counts the event ``abandoned``.
        """
        self.count("abandoned")
        with self._lock:
            # Forget the ones that finished since, so the list stays short.
            self._abandoned = [(w, alive) for w, alive in self._abandoned if alive()]
            self._abandoned.append((what, still_running))

    def abandoned_running(self) -> list[str]:
        """Descriptions of abandoned work that is still running now."""
        with self._lock:
            self._abandoned = [(w, alive) for w, alive in self._abandoned if alive()]
            return [what for what, _ in self._abandoned]


#: The process-wide record. Shared by the core and the extension.
ACTIVITY = Activity()
