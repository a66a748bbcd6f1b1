"""A transport wrapper that hex-dumps every byte in and out to a text stream (``--trace``).

Each line: elapsed seconds, direction (``>`` to the device, ``<`` from it), and the bytes in hex,
at most 32 per line. Reads that return nothing are not logged.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

from drivers.transport.base import Transport

BYTES_PER_LINE = 32


def hexdump_lines(direction: str, data: bytes, elapsed: float) -> list[str]:
    return [
        f"{elapsed:10.6f} {direction} {data[i : i + BYTES_PER_LINE].hex(' ')}"
        for i in range(0, len(data), BYTES_PER_LINE)
    ]


class TraceTransport(Transport):
    def __init__(self, inner: Transport, out: TextIO) -> None:
        self.inner = inner
        self.out = out
        self.name = inner.name
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self._log("#", f"open {inner.name}".encode())

    def _log(self, direction: str, data: bytes) -> None:
        elapsed = time.monotonic() - self._t0
        with self._lock:
            if direction == "#":
                self.out.write(f"{elapsed:10.6f} # {data.decode(errors='replace')}\n")
            else:
                for line in hexdump_lines(direction, data, elapsed):
                    self.out.write(line + "\n")
            self.out.flush()

    def read(self, n: int, timeout: float) -> bytes:
        data = self.inner.read(n, timeout)
        if data:
            self._log("<", data)
        return data

    def write(self, data: bytes) -> None:
        self._log(">", data)
        self.inner.write(data)

    def flush_input(self) -> int:
        dropped = self.inner.flush_input()
        if dropped:
            self._log("#", f"flushed {dropped} unread bytes".encode())
        return dropped

    def close(self) -> None:
        self._log("#", b"close")
        self.inner.close()

    @property
    def is_open(self) -> bool:
        return self.inner.is_open

    def set_baud(self, baud: int) -> None:
        self._log("#", f"baud {baud}".encode())
        self.inner.set_baud(baud)
