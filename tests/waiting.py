"""Waiting in tests on a condition with a deadline, never a bare sleep loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wait_for(
    cond: Callable[[], bool], timeout: float = 5.0, *, interval: float = 0.005, what: str = "condition"
) -> None:
    """Return once ``cond()`` holds; fail the test with ``what`` if it does not within ``timeout`` s."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"{what} not met in {timeout:g} s"
        pause.wait(interval)
