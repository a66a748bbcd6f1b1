"""Find the scanner and camera a technician plugged in, and prove each works with one test capture.

Used by ``station provision`` before anything is sent to central (a failed device must not spend the
one-time token). Nothing captured here is kept: the test print and photo are scored and dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from drivers.base import Camera, FingerprintScanner
from drivers.errors import DeviceError

MIN_TEST_QUALITY = 20  # a print this poor means a dirty glass or a wrong device


@dataclass(frozen=True)
class DeviceTest:
    name: str  # "scanner" or "camera"
    url: str
    ok: bool
    detail: str


def detect() -> tuple[str | None, str | None]:
    """URLs of the first fingerprint scanner (USB, else a serial adapter) and the first camera."""
    from drivers.discovery import list_devices

    found = list_devices()
    scanner = next((d.url for d in found if d.kind == "fingerprint"), None)
    if scanner is None:
        serial = next((d for d in found if d.kind == "serial" and d.usb_id), None)
        if serial is not None:
            scanner = f"{serial.url}?baud=57600"
    camera = next((d.url for d in found if d.kind == "camera"), None)
    return scanner, camera


def test_scanner(url: str, *, timeout: float = 20.0, prompt: Callable[[str], None] = print) -> DeviceTest:
    """Open the scanner, ask for a finger, capture and score one print."""
    from drivers.quality.finger import finger_quality
    from drivers.url import open_device

    try:
        device = open_device(url)
    except DeviceError as exc:
        return DeviceTest("scanner", url, False, exc.message)
    try:
        if not isinstance(device, FingerprintScanner):
            return DeviceTest("scanner", url, False, "this URL is not a fingerprint scanner")
        info = device.info()
        prompt(f"Scanner {info.model}: place any finger on the glass now ({timeout:.0f} s).")
        image = device.capture(timeout=timeout)
    except DeviceError as exc:
        return DeviceTest("scanner", url, False, exc.message)
    finally:
        device.close()
    quality = finger_quality(image.pixels, ppi=image.ppi)
    h, w = image.pixels.shape
    detail = f"{info.model}: {w}x{h} print, quality {quality.score}/100"
    if quality.score < MIN_TEST_QUALITY:
        reasons = "; ".join(quality.reasons) or "clean the glass and press the finger flat"
        return DeviceTest("scanner", url, False, f"{detail} ({reasons})")
    return DeviceTest("scanner", url, True, detail)


def test_camera(url: str, *, timeout: float = 10.0) -> DeviceTest:
    """Open the camera and take one full-resolution still."""
    from drivers.url import open_device

    try:
        device = open_device(url)
    except DeviceError as exc:
        return DeviceTest("camera", url, False, exc.message)
    try:
        if not isinstance(device, Camera):
            return DeviceTest("camera", url, False, "this URL is not a camera")
        info = device.info()
        device.start()
        frame = device.still(timeout=timeout)
    except DeviceError as exc:
        return DeviceTest("camera", url, False, exc.message)
    finally:
        device.close()
    h, w = frame.shape[:2]
    return DeviceTest("camera", url, True, f"{info.model}: {w}x{h} still")
