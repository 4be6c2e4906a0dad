"""Show the package's log records (logger ``asyncbridge_ext``) in the notebook cell.

``%asyncbridge --log debug`` calls :meth:`NotebookLog.set_level` (the Magics owns the
one :class:`NotebookLog` of a load and removes its handler at unload). The records go through
standard logging to a :class:`CellStderrHandler`, which writes each one to whatever
``sys.stderr`` is *when the record is emitted*. In a kernel that is ipykernel's stream,
which sends the text to the cell whose context the emitting code runs in: the cell's own
thread, or a worker running the cell's coroutine under the cell's copied context. No
IPython import here.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["LEVELS", "CellStderrHandler", "NotebookLog", "level_notice"]

LOGGER_NAME = "asyncbridge_ext"

#: ``--log`` choices and the logging level each sets (``off`` removes the handler).
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "off": None}


class CellStderrHandler(logging.Handler):
    """Write each record to the ``sys.stderr`` current at emit time (not the one at setup)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("asyncbridge_ext %(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stderr
        if stream is None:  # pythonw, or a stream closed at shutdown
            return
        try:
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


class NotebookLog:
    """The one handler this extension adds to the ``asyncbridge_ext`` logger, and its level."""

    def __init__(self) -> None:
        self.logger = logging.getLogger(LOGGER_NAME)
        self.handler: CellStderrHandler | None = None
        self.level_name = "off"
        self._level_before = self.logger.level

    def set_level(self, name: str) -> None:
        """``debug`` / ``info`` / ``warning``: show records from that level on; ``off``: stop.

        Off means the logger is as it was before: warnings still reach stderr through
        Python's last-resort handler unless the application configured logging.
        """
        level = LEVELS[name]
        if level is None:
            self.remove()
            return
        if self.handler is None:
            self._level_before = self.logger.level
            self.handler = CellStderrHandler()
            self.logger.addHandler(self.handler)
        self.logger.setLevel(level)
        self.level_name = name

    def remove(self) -> None:
        """Take our handler off and restore the logger's level. Harmless if not added."""
        if self.handler is not None:
            self.logger.removeHandler(self.handler)
            self.logger.setLevel(self._level_before)
            self.handler = None
        self.level_name = "off"


def level_notice(name: str) -> str:
    """What ``%asyncbridge --log NAME`` prints: what is shown from now on, and how to stop."""
    if name == "off":
        return "asyncbridge_ext log: off (the notebook log handler is removed)"
    return (
        f"asyncbridge_ext log: {name}; records from this level on show in the cell "
        "that produced them. `%asyncbridge --log off` stops it."
    )
