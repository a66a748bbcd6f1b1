"""One small exception tree for every device (in the manner of trezorlib's transport errors).

Each error has a stable ``code`` for logs and a ``message`` a person can act on.
"""

from __future__ import annotations


class DeviceError(Exception):
    """Base of every device error."""

    code = "device.error"
    default_message = "The device reported an error: try again."

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)
        if code is not None:
            self.code = code


class DeviceNotFound(DeviceError):
    code = "device.not_found"
    default_message = "Device not found: check the cable and the device URL."


class DeviceBusy(DeviceError):
    code = "device.busy"
    default_message = "Device is in use by another program: close it and try again."


class DeviceUnplugged(DeviceError):
    code = "device.unplugged"
    default_message = "Device unplugged: reconnect it and press Retry."


class DeviceTimeout(DeviceError):
    code = "device.timeout"
    default_message = "The device did not answer in time: check the cable and press Retry."


class ProtocolError(DeviceError):
    """Bytes on the wire that do not follow the protocol (bad header, checksum, length)."""

    code = "device.protocol"
    default_message = "The device sent garbled data: press Retry; if it repeats, replace the cable."


class DeviceReportedError(DeviceError):
    """The device answered with an error status; ``status`` is its numeric code."""

    code = "device.reported"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, code=f"device.reported.{status:#04x}")
        self.status = status


class UnsupportedURL(DeviceError):
    code = "device.bad_url"
    default_message = "Unknown device URL: use serial://, usb://, camera:// or sim://."
