"""NB-1010-U fingerprint scanner: the capture sequence over a bulk-transfer link.

The driver speaks the protocol of ``protocol.py`` over a ``BulkLink`` (two bulk
endpoints). ``usb_link.py``'s ``PyUsbLink`` is the real one; tests may use any
object with the same three methods. The sequence is the vendor driver's, in
the same order and with the same transfer lengths, so that a umockdev replay
of a real capture accepts it:

    OUT check-finger (8)  -> IN reply (16), repeated until a finger is present
    OUT pre-capture (12)  -> IN ack (16)
    OUT capture (32)      -> IN ack (16)
    IN partial (540) x 90 -> the 256 x 180 frame
"""

from __future__ import annotations

import time
from typing import Protocol

from drivers.base import DeviceInfo, FingerImage, FingerprintScanner, ProgressFn
from drivers.errors import DeviceTimeout
from drivers.nb1010 import protocol as p

COMMAND_TIMEOUT_MS = 1000
PARTIAL_TIMEOUT_MS = 2000
FINGER_POLL_INTERVAL_S = 0.05


class BulkLink(Protocol):
    """Two bulk endpoints; errors are already ``drivers.errors`` types."""

    def write(self, data: bytes, *, timeout_ms: int) -> None: ...

    def read(self, size: int, *, timeout_ms: int) -> bytes: ...

    def describe(self) -> dict[str, str]: ...

    def close(self) -> None: ...


class NB1010Scanner(FingerprintScanner):
    """A NEXT Biometrics NB-1010-U on a bulk link."""

    def __init__(self, link: BulkLink, *, url: str = "usb://298d:1010") -> None:
        self.url = url
        self._link = link
        self._closed = False

    def info(self) -> DeviceInfo:
        details = {
            "usb_id": f"{p.VENDOR_ID:04x}:{p.PRODUCT_ID:04x}",
            "resolution": f"{p.FRAME_WIDTH}x{p.FRAME_HEIGHT}",
            "ppi": str(p.PPI),
        }
        details.update(self._link.describe())
        return DeviceInfo(url=self.url, kind="fingerprint", model=p.MODEL, details=details)

    def _command(self, command: bytes) -> bytes:
        self._link.write(command, timeout_ms=COMMAND_TIMEOUT_MS)
        return self._link.read(p.REPLY_LEN, timeout_ms=COMMAND_TIMEOUT_MS)

    def finger_present(self) -> bool:
        return p.finger_present(self._command(p.CMD_CHECK_FINGER))

    def wait_finger(self, timeout: float) -> None:
        """Poll the finger detector until a finger lies on the sensor or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while not self.finger_present():
            if time.monotonic() >= deadline:
                raise DeviceTimeout(
                    f"No finger on the scanner within {timeout:g} s: place a finger flat on it and retry."
                )
            time.sleep(FINGER_POLL_INTERVAL_S)

    def capture(self, *, timeout: float = 10.0, progress: ProgressFn | None = None) -> FingerImage:
        self.wait_finger(timeout)
        p.check_ack(self._command(p.CMD_PRECAPTURE), command=p.CMD_PRECAPTURE)
        p.check_ack(self._command(p.CMD_CAPTURE), command=p.CMD_CAPTURE)
        assembler = p.FrameAssembler()
        if progress is not None:
            progress(0, p.PARTIAL_COUNT)
        for _ in range(p.PARTIAL_COUNT):
            assembler.add(self._link.read(p.PARTIAL_LEN, timeout_ms=PARTIAL_TIMEOUT_MS))
            if progress is not None:
                progress(assembler.received, p.PARTIAL_COUNT)
        return FingerImage(pixels=assembler.frame(), ppi=p.PPI)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._link.close()
