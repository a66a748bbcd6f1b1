"""The transport contract: a byte pipe with timed reads, used by protocol drivers.

A protocol driver never touches a file descriptor: it reads and writes through a ``Transport``,
so the same protocol code runs over a real port, a pseudo-terminal or a traced wrapper.
"""

from __future__ import annotations

import abc


class Transport(abc.ABC):
    """A bidirectional byte stream. Errors raised are ``drivers.errors.DeviceError`` subclasses."""

    name: str = "transport"

    @abc.abstractmethod
    def read(self, n: int, timeout: float) -> bytes:
        """Up to ``n`` bytes; fewer (possibly none) only when ``timeout`` seconds pass first."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Send every byte of ``data``."""

    @abc.abstractmethod
    def flush_input(self) -> int:
        """Discard bytes already received and not read; return how many were dropped (if known)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @property
    @abc.abstractmethod
    def is_open(self) -> bool: ...

    def set_baud(self, baud: int) -> None:  # noqa: B027 - optional for transports without a line rate
        """Change the line rate, where the transport has one."""
