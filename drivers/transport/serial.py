"""pyserial transport: a serial port (USB adapter, UART or pseudo-terminal) as a ``Transport``.

pyserial's exceptions become the device error tree: a missing port is ``DeviceNotFound``, a port
held by another program ``DeviceBusy``, a port that vanishes while open ``DeviceUnplugged``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import time

from drivers.errors import DeviceBusy, DeviceNotFound, DeviceUnplugged
from drivers.transport.base import Transport

try:
    import serial as pyserial

    ENABLED = True
except ImportError:  # pragma: no cover - pyserial is a dependency; keep import-safe anyway
    ENABLED = False


def _unplugged(port: str, exc: BaseException) -> DeviceUnplugged:
    return DeviceUnplugged(f"Scanner on {port} disconnected: reconnect it and press Retry.")


class SerialTransport(Transport):
    def __init__(self, port: str, baud: int = 57600, *, exclusive: bool = True) -> None:
        if not ENABLED:
            raise DeviceNotFound("pyserial is not installed: install the project's dependencies.")
        self.name = port
        self.port = port
        try:
            self._ser = pyserial.Serial(port, baud, timeout=0, write_timeout=5, exclusive=exclusive)
        except pyserial.SerialException as exc:
            code = exc.errno if isinstance(exc.errno, int) else None
            if code in (errno.ENOENT, errno.ENXIO, errno.ENODEV) or not os.path.exists(port):
                raise DeviceNotFound(
                    f"No serial port at {port}: check the cable and the device URL."
                ) from exc
            if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "lock" in str(exc).lower():
                raise DeviceBusy(f"{port} is in use by another program: close it and try again.") from exc
            if code in (errno.EACCES, errno.EPERM):
                raise DeviceBusy(
                    f"No permission to open {port}: add this user to the dialout group."
                ) from exc
            raise DeviceNotFound(f"Could not open {port}: {exc}") from exc

    def read(self, n: int, timeout: float) -> bytes:
        # The port stays non-blocking (timeout=0): changing pyserial's timeout per call would cost a
        # tcsetattr each time, which on a long upload adds up to whole seconds.
        deadline = time.monotonic() + timeout
        out = bytearray()
        try:
            while True:
                out += self._ser.read(n - len(out))
                remaining = deadline - time.monotonic()
                if len(out) >= n or remaining <= 0:
                    return bytes(out)
                select.select([self._ser.fileno()], [], [], remaining)
        except (pyserial.SerialException, OSError, TypeError, AttributeError, ValueError) as exc:
            # TypeError/AttributeError/ValueError: pyserial after the fd vanished under it
            raise _unplugged(self.port, exc) from exc

    def write(self, data: bytes) -> None:
        try:
            self._ser.write(data)
            self._ser.flush()
        except (pyserial.SerialException, OSError, TypeError, AttributeError) as exc:
            raise _unplugged(self.port, exc) from exc

    def flush_input(self) -> int:
        try:
            waiting = int(self._ser.in_waiting)
            self._ser.reset_input_buffer()
        except (pyserial.SerialException, OSError, TypeError, AttributeError) as exc:
            raise _unplugged(self.port, exc) from exc
        return waiting

    def set_baud(self, baud: int) -> None:
        try:
            self._ser.baudrate = baud
        except (pyserial.SerialException, OSError, ValueError) as exc:
            raise _unplugged(self.port, exc) from exc

    def close(self) -> None:
        with contextlib.suppress(pyserial.SerialException, OSError):
            self._ser.close()

    @property
    def is_open(self) -> bool:
        return bool(self._ser.is_open)
