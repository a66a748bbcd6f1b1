"""A bulk-transfer link over pyusb, with libusb errors mapped to ``drivers.errors``.

Only claims the interface and moves bytes on two bulk endpoints; it never sets
a configuration (the vendor driver does not, and a umockdev replay of its
recording refuses the extra request). ``trace`` receives a hex dump of every
transfer, in the spirit of pyserial's ``spy://``.
"""

from __future__ import annotations

import errno
from typing import Any, TextIO

from drivers.errors import DeviceBusy, DeviceError, DeviceNotFound, DeviceTimeout, DeviceUnplugged

try:  # pyusb is optional for the rest of drivers/: without it, usb:// is disabled
    import usb.core
    import usb.util

    ENABLED = True
except ImportError:  # pragma: no cover - depends on the installation
    ENABLED = False

# libusb error codes (libusb.h), as pyusb reports them in backend_error_code
_LIBUSB_ACCESS = -3
_LIBUSB_NO_DEVICE = -4
_LIBUSB_BUSY = -6
_LIBUSB_TIMEOUT = -7


def hexdump(data: bytes, width: int = 32) -> list[str]:
    """Lines of space-separated hex, ``width`` bytes per line."""
    return [data[i : i + width].hex(" ") for i in range(0, len(data), width)] or [""]


def map_usb_error(exc: Exception, doing: str) -> DeviceError:
    """The ``drivers.errors`` type for a pyusb/libusb failure while ``doing`` something."""
    code = getattr(exc, "backend_error_code", None)
    err = getattr(exc, "errno", None)
    timed_out = ENABLED and isinstance(exc, usb.core.USBTimeoutError)
    if timed_out or code == _LIBUSB_TIMEOUT or err == errno.ETIMEDOUT:
        return DeviceTimeout(
            f"The scanner did not answer while {doing}: check the cable, replug the scanner and retry."
        )
    if code == _LIBUSB_NO_DEVICE or err in (errno.ENODEV, errno.ENOENT, errno.ESHUTDOWN):
        return DeviceUnplugged(f"Scanner unplugged while {doing}: reconnect it and press Retry.")
    if code == _LIBUSB_BUSY or err == errno.EBUSY:
        return DeviceBusy(
            f"The scanner is in use by another program (while {doing}): close it (fprintd?) and retry."
        )
    if code == _LIBUSB_ACCESS or err in (errno.EACCES, errno.EPERM):
        return DeviceError(
            f"No permission to use the scanner (while {doing}): install the station's udev rules "
            "or add this user to the scanner group, then replug it.",
            code="device.permission",
        )
    return DeviceError(f"USB error while {doing} ({exc}): replug the scanner and retry.", code="device.usb")


class PyUsbLink:
    """Interface ``interface`` of a pyusb device, bulk endpoints ``ep_out``/``ep_in``."""

    def __init__(
        self,
        device: Any,
        *,
        interface: int,
        ep_out: int,
        ep_in: int,
        trace: TextIO | None = None,
    ) -> None:
        self._dev = device
        self._interface = interface
        self._ep_out = ep_out
        self._ep_in = ep_in
        self._trace = trace
        self._claimed = False
        try:
            usb.util.claim_interface(device, interface)
        except usb.core.USBError as exc:
            usb.util.dispose_resources(device)
            raise map_usb_error(exc, "claiming the scanner") from exc
        self._claimed = True

    def _log(self, direction: str, endpoint: int, data: bytes) -> None:
        if self._trace is None:
            return
        lines = hexdump(data)
        self._trace.write(f"usb {direction} ep{endpoint:02x} {len(data):4d} | {lines[0]}\n")
        for line in lines[1:]:
            self._trace.write(f"{'':19}| {line}\n")
        self._trace.flush()

    def write(self, data: bytes, *, timeout_ms: int) -> None:
        self._log(">", self._ep_out, data)
        try:
            sent = self._dev.write(self._ep_out, data, timeout_ms)
        except usb.core.USBError as exc:
            raise map_usb_error(exc, "sending a command") from exc
        if sent != len(data):
            raise DeviceError(
                f"The scanner took {sent} of {len(data)} bytes: replug it and retry.", code="device.usb"
            )

    def read(self, size: int, *, timeout_ms: int) -> bytes:
        try:
            data = bytes(self._dev.read(self._ep_in, size, timeout_ms))
        except usb.core.USBError as exc:
            raise map_usb_error(exc, "reading from the scanner") from exc
        self._log("<", self._ep_in, data)
        return data

    def describe(self) -> dict[str, str]:
        return {
            "bus": str(self._dev.bus),
            "address": str(self._dev.address),
            "firmware": f"{self._dev.bcdDevice >> 8:x}.{self._dev.bcdDevice & 0xFF:02x}",
        }

    def close(self) -> None:
        try:
            if self._claimed:
                usb.util.release_interface(self._dev, self._interface)
        except usb.core.USBError:
            pass  # unplugged: nothing left to release
        finally:
            self._claimed = False
            usb.util.dispose_resources(self._dev)


def find_devices(vendor: int, product: int) -> list[Any]:
    """Every attached USB device with that vendor:product (needs libusb)."""
    if not ENABLED:
        raise DeviceNotFound("pyusb is not installed: install the station package's dependencies.")
    try:
        return list(usb.core.find(find_all=True, idVendor=vendor, idProduct=product) or [])
    except usb.core.NoBackendError as exc:
        raise DeviceNotFound("libusb is not installed: install libusb-1.0-0 and retry.") from exc
    except usb.core.USBError as exc:
        raise map_usb_error(exc, "looking for the scanner") from exc
