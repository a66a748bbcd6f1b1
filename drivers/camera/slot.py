"""The latest-frame-wins mailbox between a camera's streaming thread and its readers.

The producer ``put``s each new frame, replacing the previous one (never a backlog); readers take
the newest with ``latest`` or wait for one newer than they have seen with ``wait_newer``. When the
device goes away the producer sets an error, which every read raises until frames flow again.
"""

from __future__ import annotations

import threading
import time

from drivers.base import BGRImage
from drivers.errors import DeviceError, DeviceTimeout


class FrameSlot:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq = 0
        self._frame: BGRImage | None = None
        self._error: DeviceError | None = None

    def put(self, frame: BGRImage, *, skip: int = 0) -> int:
        """Publish ``frame`` (``skip`` frames were lost before it: the sequence jumps). Clears any error."""
        with self._cond:
            self._seq += 1 + skip
            self._frame = frame
            self._error = None
            self._cond.notify_all()
            return self._seq

    def fail(self, error: DeviceError) -> None:
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def clear_error(self) -> None:
        """The device is back: readers wait for its next frame instead of failing."""
        with self._cond:
            self._error = None

    @property
    def error(self) -> DeviceError | None:
        with self._cond:
            return self._error

    @property
    def seq(self) -> int:
        with self._cond:
            return self._seq

    def latest(self) -> tuple[int, BGRImage] | None:
        with self._cond:
            if self._error is not None:
                raise self._error.with_traceback(None)  # one instance, raised afresh each time
            if self._frame is None:
                return None
            return self._seq, self._frame

    def wait_newer(self, seq: int, timeout: float) -> tuple[int, BGRImage]:
        """The first frame with a sequence number above ``seq``; DeviceTimeout after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._error is not None:
                    raise self._error.with_traceback(None)  # one instance, raised afresh each time
                if self._frame is not None and self._seq > seq:
                    return self._seq, self._frame
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DeviceTimeout("The camera sent no picture in time: check the cable, press Retry.")
                self._cond.wait(left)
