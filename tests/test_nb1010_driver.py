"""NB-1010-U driver over a strict replay of the real recording: capture, finger wait, faults, USB errors."""

from __future__ import annotations

import errno
import hashlib
import io

import pytest
import usb.core

from drivers.errors import (
    DeviceBusy,
    DeviceError,
    DeviceTimeout,
    DeviceUnplugged,
    ProtocolError,
    UnsupportedURL,
)
from drivers.nb1010 import protocol as p
from drivers.nb1010.driver import NB1010Scanner
from drivers.nb1010.opener import open_usb, parse_usb_id
from drivers.nb1010.usb_link import hexdump, map_usb_error
from drivers.url import parse_url
from tests.nb1010_replay import EXPECTED_SHA256, ReplayLink, ReplayMismatch, Transfer, load_transfers

TRANSFERS = load_transfers()


def with_finger_absent(times: int) -> list[Transfer]:
    """The recording with ``times`` extra finger checks answered 'no finger' before the real one."""
    no_finger = bytearray(TRANSFERS[1].data)
    no_finger[p.FINGER_SIGNAL_OFFSET] = 0x05
    extra = [Transfer(0x02, p.CMD_CHECK_FINGER), Transfer(0x83, bytes(no_finger))] * times
    return extra + TRANSFERS


def test_capture_replays_the_recording_exactly() -> None:
    link = ReplayLink(TRANSFERS)
    reports: list[tuple[int, int]] = []
    with NB1010Scanner(link) as scanner:
        image = scanner.capture(timeout=1.0, progress=lambda done, total: reports.append((done, total)))
    assert link.position == len(TRANSFERS) and link.closed
    assert image.pixels.shape == (180, 256) and image.ppi == p.PPI
    assert hashlib.sha256(image.pixels.tobytes()).hexdigest() == EXPECTED_SHA256
    assert reports[0] == (0, 90) and reports[-1] == (90, 90) and len(reports) == 91


def test_capture_waits_for_the_finger() -> None:
    link = ReplayLink(with_finger_absent(3))
    image = NB1010Scanner(link).capture(timeout=5.0)
    assert hashlib.sha256(image.pixels.tobytes()).hexdigest() == EXPECTED_SHA256


def test_no_finger_times_out_with_a_clear_message() -> None:
    link = ReplayLink(with_finger_absent(200))
    with pytest.raises(DeviceTimeout, match="place a finger"):
        NB1010Scanner(link).capture(timeout=0.2)
    assert link.position < 200  # gave up, did not run on through the script


def test_finger_present_and_info() -> None:
    scanner = NB1010Scanner(ReplayLink(TRANSFERS), url="usb://298d:1010?bus=1&address=3")
    assert scanner.finger_present()
    info = scanner.info()
    assert info.kind == "fingerprint" and info.model == p.MODEL
    assert info.details["resolution"] == "256x180" and info.details["bus"] == "1"


def test_driver_deviating_from_the_recording_is_refused() -> None:
    link = ReplayLink(TRANSFERS)
    with pytest.raises(ReplayMismatch):
        link.write(p.CMD_CAPTURE, timeout_ms=10)  # the vendor driver starts with a finger check


@pytest.mark.parametrize("at", [6, 50, 95])
def test_unplug_mid_frame_is_device_unplugged(at: int) -> None:
    link = ReplayLink(
        TRANSFERS, fault=lambda i: DeviceUnplugged("Scanner unplugged: reconnect it.") if i == at else None
    )
    with pytest.raises(DeviceUnplugged):
        NB1010Scanner(link).capture(timeout=1.0)
    assert link.position == at
    # after reconnecting (a new link), the same driver code captures again
    image = NB1010Scanner(ReplayLink(TRANSFERS)).capture(timeout=1.0)
    assert hashlib.sha256(image.pixels.tobytes()).hexdigest() == EXPECTED_SHA256


def test_garbage_block_is_protocol_error() -> None:
    garbled = list(TRANSFERS)
    garbled[40] = Transfer(0x83, bytes(range(256)) * 2 + bytes(28))
    with pytest.raises(ProtocolError):
        NB1010Scanner(ReplayLink(garbled)).capture(timeout=1.0)


def test_stall_is_timeout() -> None:
    link = ReplayLink(TRANSFERS, fault=lambda i: DeviceTimeout() if i == 10 else None)
    with pytest.raises(DeviceTimeout):
        NB1010Scanner(link).capture(timeout=1.0)


@pytest.mark.parametrize(
    ("exc", "expected", "code"),
    [
        (
            usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT),
            DeviceTimeout,
            "device.timeout",
        ),
        (usb.core.USBError("No such device", -4, errno.ENODEV), DeviceUnplugged, "device.unplugged"),
        (usb.core.USBError("Resource busy", -6, errno.EBUSY), DeviceBusy, "device.busy"),
        (usb.core.USBError("Access denied", -3, errno.EACCES), DeviceError, "device.permission"),
        (usb.core.USBError("Pipe error", -9, errno.EPIPE), DeviceError, "device.usb"),
    ],
)
def test_usb_errors_map_to_the_device_error_tree(exc: Exception, expected: type, code: str) -> None:
    mapped = map_usb_error(exc, "reading")
    assert type(mapped) is expected and mapped.code == code
    assert "reading" in mapped.message


def test_hexdump() -> None:
    assert hexdump(p.CMD_CHECK_FINGER) == ["80 38 01 00 08 00 00 00"]
    assert hexdump(bytes(40), width=32)[1] == " ".join(["00"] * 8)
    assert hexdump(b"") == [""]


def test_usb_url_forms() -> None:
    assert parse_usb_id("298d:1010", "usb://298d:1010") == (0x298D, 0x1010)
    with pytest.raises(UnsupportedURL, match="vendor:product"):
        parse_usb_id("298d", "usb://298d")
    with pytest.raises(UnsupportedURL, match="No driver for USB device 1234:5678"):
        open_usb(parse_url("usb://1234:5678"), trace=io.StringIO())
