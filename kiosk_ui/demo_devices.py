"""In-process scanner and camera doubles for the kiosk's tests (an explicit choice by URL).

They implement the ``drivers.base`` interfaces, serve a given print / portrait, and can be unplugged and
replugged at once from a test like the real devices (the same errors from ``drivers.errors``), where the
protocol simulators would need a pty round trip. Only a station whose settings name
``sim://kiosk-scanner?name=N`` or ``sim://kiosk-camera?name=N`` uses them; the demo runs the protocol
simulators ``sim://r30x`` and ``sim://camera``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drivers.base import Camera, DeviceInfo, FingerImage, FingerprintScanner, ProgressFn
from drivers.errors import DeviceNotFound, DeviceTimeout, DeviceUnplugged
from drivers.url import DeviceURL, register

UPLOAD_PACKETS = 288  # as an R30x image upload: 288 data packets of 128 bytes


@dataclass
class ScannerControl:
    """Test/demo handle: put a finger on, lift it, unplug, replug."""

    image: np.ndarray
    plugged: threading.Event = field(default_factory=threading.Event)
    finger: threading.Event = field(default_factory=threading.Event)
    unplug_mid_upload: bool = False
    captures: int = 0

    def __post_init__(self) -> None:
        self.plugged.set()

    def finger_on(self) -> None:
        self.finger.set()

    def finger_off(self) -> None:
        self.finger.clear()

    def unplug(self) -> None:
        self.plugged.clear()

    def replug(self) -> None:
        self.plugged.set()


@dataclass
class CameraControl:
    frame: np.ndarray
    plugged: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.plugged.set()

    def unplug(self) -> None:
        self.plugged.clear()

    def replug(self) -> None:
        self.plugged.set()


SCANNERS: dict[str, ScannerControl] = {}
CAMERAS: dict[str, CameraControl] = {}


class SimScanner(FingerprintScanner):
    def __init__(self, url: str, control: ScannerControl, trace: Any = None) -> None:
        self.url, self.c, self.trace = url, control, trace

    def info(self) -> DeviceInfo:
        return DeviceInfo(self.url, "fingerprint", "kiosk simulated scanner")

    def finger_present(self) -> bool:
        return self.c.finger.is_set()

    def capture(self, *, timeout: float = 10.0, progress: ProgressFn | None = None) -> FingerImage:
        if not self.c.plugged.is_set():
            raise DeviceUnplugged()
        if not self.c.finger.wait(timeout):
            raise DeviceTimeout("No finger on the scanner yet.")
        if self.trace is not None:
            self.trace.write("sim: finger image upload\n")
        for done in range(0, UPLOAD_PACKETS + 1, 32):
            if progress is not None:
                progress(min(done, UPLOAD_PACKETS), UPLOAD_PACKETS)
            if self.c.unplug_mid_upload and done >= UPLOAD_PACKETS // 2:
                self.c.unplug_mid_upload = False
                self.c.unplug()
            if not self.c.plugged.is_set():
                raise DeviceUnplugged()
        self.c.captures += 1
        return FingerImage(self.c.image.copy(), 500)

    def close(self) -> None:
        pass


class SimCamera(Camera):
    def __init__(self, url: str, control: CameraControl) -> None:
        self.url, self.c = url, control
        self.seq = 0

    def info(self) -> DeviceInfo:
        return DeviceInfo(self.url, "camera", "kiosk simulated camera")

    def start(self) -> None:
        pass

    def latest_frame(self) -> tuple[int, np.ndarray] | None:
        if not self.c.plugged.is_set():
            raise DeviceUnplugged()
        self.seq += 1
        return self.seq, self.c.frame

    def still(self, *, timeout: float = 5.0) -> np.ndarray:
        if not self.c.plugged.is_set():
            raise DeviceUnplugged()
        return self.c.frame.copy()

    def close(self) -> None:
        pass


def open_scanner(url: DeviceURL, *, trace: Any = None) -> SimScanner:
    control = SCANNERS.get(url.params.get("name", ""))
    if control is None or not control.plugged.is_set():
        raise DeviceNotFound()
    return SimScanner(url.raw, control, trace)


def open_camera(url: DeviceURL, *, trace: Any = None) -> SimCamera:
    control = CAMERAS.get(url.params.get("name", ""))
    if control is None or not control.plugged.is_set():
        raise DeviceNotFound()
    return SimCamera(url.raw, control)


register("sim:kiosk-scanner", "kiosk_ui.demo_devices:open_scanner")
register("sim:kiosk-camera", "kiosk_ui.demo_devices:open_camera")
