"""Test-session set-up shared by every test file."""

from __future__ import annotations

import signal

# A process started in the background by a non-interactive shell inherits SIGINT as
# ignored, and Python then installs no KeyboardInterrupt handler: every test that sends
# a real SIGINT would time out instead of testing anything. Put Python's default back.
signal.signal(signal.SIGINT, signal.default_int_handler)
