"""Exponential backoff with full jitter, capped, with an injectable random source.

"Full jitter" (AWS architecture blog, 2015): the n-th wait is uniform in ``[0, min(cap, base * 2**n)]``.
It spreads a fleet of stations that lost the network at the same moment, so they do not all come back
at once. A success resets the attempt counter.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Waits after consecutive failures: ``uniform(0, min(cap, base * 2**attempt))``."""

    base: float = 1.0
    cap: float = 300.0
    rand: Callable[[], float] = field(default=random.random)
    attempt: int = 0

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base:
            raise ValueError("backoff needs 0 < base <= cap")

    def ceiling(self, attempt: int | None = None) -> float:
        """The upper bound of the wait for ``attempt`` (default: the current one)."""
        n = self.attempt if attempt is None else attempt
        # 2**n grows without bound; stop doubling once past the cap (and avoid float overflow).
        if n >= 64:
            return self.cap
        return float(min(self.cap, self.base * (2**n)))

    def next_delay(self) -> float:
        """The wait before the next try; counts one more failure."""
        delay = self.rand() * self.ceiling()
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
