"""Ring buffers the technician screen shows: recent log lines and the scanner's serial trace.

Log records here are codes and states only (the station logs no PII); the trace is the hex dump the
drivers write for ``--trace`` (bytes of images and templates are not readable text).
"""

from __future__ import annotations

import collections
import io
import logging
import threading


class RingLog(logging.Handler):
    """The last ``size`` formatted log records."""

    def __init__(self, size: int = 200) -> None:
        super().__init__()
        self.lines: collections.deque[str] = collections.deque(maxlen=size)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def text(self, last: int = 50) -> str:
        return "\n".join(list(self.lines)[-last:])


class TraceBuffer(io.TextIOBase):
    """A text stream for the driver's trace, kept as the last ``size`` lines (thread-safe)."""

    def __init__(self, size: int = 400) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._lines: collections.deque[str] = collections.deque(maxlen=size)
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        with self._lock:
            data = self._partial + s
            *done, self._partial = data.split("\n")
            self._lines.extend(done)
        return len(s)

    def text(self, last: int = 60) -> str:
        with self._lock:
            return "\n".join(list(self._lines)[-last:])
