"""The benchmark harness itself: each in-process contender returns the right result.

No timing here; figures belong to ``make bench``, not to pass/fail tests.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from contenders import CONTENDERS

NEEDS = {"anyio": "anyio", "jupyter_core": "jupyter_core"}


@pytest.mark.parametrize("name", list(CONTENDERS))
def test_contender_runs_from_sync_code_inside_a_running_loop(name: str) -> None:
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    call, close = CONTENDERS[name][1]()

    async def cell() -> list[int]:
        return [call(x) for x in range(3)]

    try:
        assert asyncio.run(cell()) == [1, 2, 3]
    finally:
        close()
