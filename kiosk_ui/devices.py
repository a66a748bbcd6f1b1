"""The kiosk's one door to the drivers: open devices, score prints, check faces, make portraits, match.

Every call here runs on a device or task thread, never on the GUI thread. The drivers' own modules do
the work (``drivers.url``, ``drivers.quality``, ``drivers.match``, ``drivers.portrait``,
``drivers.formats.wsq``); this module only adapts their results to what the pages show, so the rest of
the kiosk does not depend on their exact shapes.

While one of those driver modules is not installed, a small, real computation in ``_fallback`` takes
its place (NIST minutiae + bozorth3 through ``nbis`` for matching, OpenCV Haar cascades for the face,
block contrast and ridge-orientation coherence for print quality), so the kiosk keeps working.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drivers.base import Camera, FingerprintScanner
from drivers.errors import DeviceError, DeviceUnplugged
from drivers.url import open_device

log = logging.getLogger("kiosk.devices")


def open_scanner(url: str, *, trace: Any = None) -> FingerprintScanner:
    dev = open_device(url, trace=trace)
    if not isinstance(dev, FingerprintScanner):
        dev.close()
        raise DeviceError(f"{url} is not a fingerprint scanner: check scanner_url in station.toml.")
    return dev


def open_camera(url: str) -> Camera:
    dev = open_device(url)
    if not isinstance(dev, Camera):
        dev.close()
        raise DeviceError(f"{url} is not a camera: check camera_url in station.toml.")
    return dev


def looks_unplugged(exc: DeviceError) -> bool:
    """A device error that means the device went away (not found after being open, or unplugged)."""
    return isinstance(exc, DeviceUnplugged) or exc.code in ("device.unplugged", "device.not_found")


# -- fingerprints ----------------------------------------------------------------------------------
def encode_and_score(pixels: np.ndarray, ppi: int = 500) -> tuple[bytes, int]:
    """WSQ bytes and the 0-100 quality score of a captured print."""
    from drivers.formats import wsq

    return wsq.encode(pixels, ppi=ppi), finger_quality(pixels)


_warned: set[str] = set()


def _driver(module: str, *names: str) -> Any:
    """The first of ``names`` that ``module`` provides, or None (module missing or API not as expected)."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    for name in names:
        fn = getattr(mod, name, None)
        if callable(fn):
            return fn
    if module not in _warned:
        _warned.add(module)
        log.warning("%s has none of %s: using the kiosk's own computation", module, ", ".join(names))
    return None


def finger_quality(pixels: np.ndarray) -> int:
    quality = _driver("drivers.quality.finger", "finger_quality", "score_finger", "quality")
    if quality is None:
        from kiosk_ui import _fallback

        return _fallback.finger_quality(pixels)
    result = quality(pixels)
    score = getattr(result, "score", result)
    return int(score)


def finger_template(pixels: np.ndarray) -> bytes:
    """An ISO/IEC 19794-2 template of a print (what an operator's record keeps)."""
    make = _driver("drivers.match", "template_from_image", "make_template", "extract_template")
    if make is None:
        from kiosk_ui import _fallback

        return _fallback.finger_template(pixels)
    return bytes(make(pixels))


def finger_matches(enrolled: bytes, live: bytes) -> bool:
    """Host-side 1:1 verification of two templates (bozorth3 with the measured threshold)."""
    verify = _driver("drivers.match", "verify", "verify_templates", "matches")
    if verify is None:
        from kiosk_ui import _fallback

        return _fallback.finger_matches(enrolled, live)
    result = verify(enrolled, live)
    return bool(getattr(result, "matched", getattr(result, "match", result)))


# -- faces -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaceCheck:
    name: str
    passed: bool
    instruction_en: str
    instruction_ur: str


@dataclass(frozen=True)
class FaceReport:
    checks: tuple[FaceCheck, ...] = ()
    all_passed: bool = False
    face_box: tuple[int, int, int, int] | None = None  # x, y, w, h in frame pixels
    eyes: tuple[tuple[int, int], ...] = ()

    def first_failure(self) -> FaceCheck | None:
        return next((c for c in self.checks if not c.passed), None)


def check_face(frame: np.ndarray) -> FaceReport:
    check = _driver("drivers.quality.face", "check_face", "check_frame", "face_checks")
    if check is None:
        from kiosk_ui import _fallback

        return _fallback.check_face(frame)
    report = check(frame)
    try:
        checks = tuple(
            FaceCheck(str(c.name), bool(c.passed), str(c.instruction_en), str(c.instruction_ur))
            for c in report.checks
        )
        box = getattr(report, "face_box", None) or getattr(report, "face", None)
        face_box = tuple(int(v) for v in box[:4]) if box is not None else None
        eyes = tuple((int(e[0]), int(e[1])) for e in (getattr(report, "eyes", None) or ()))
        return FaceReport(checks=checks, all_passed=bool(report.all_passed), face_box=face_box, eyes=eyes)  # type: ignore[arg-type]
    except (AttributeError, TypeError, IndexError, ValueError):
        if "face-report" not in _warned:
            _warned.add("face-report")
            log.warning("drivers.quality.face report not as expected: using the kiosk's own checks")
        from kiosk_ui import _fallback

        return _fallback.check_face(frame)


@dataclass
class AutoCapture:
    """Take the photo when every check passes on ``frames`` consecutive preview frames."""

    frames: int = 5
    streak: int = field(default=0)

    def reset(self) -> None:
        self.streak = 0

    def feed(self, report: FaceReport) -> bool:
        self.streak = self.streak + 1 if report.all_passed else 0
        return self.streak >= self.frames  # stays true while it passes: a dropped frame loses nothing


def portrait(frame: np.ndarray) -> tuple[bytes, dict[str, Any]]:
    """The ICAO-style JPEG token of a frame and its check results."""
    make = _driver("drivers.portrait", "make_portrait", "portrait", "crop_portrait")
    if make is None:
        from kiosk_ui import _fallback

        return _fallback.portrait(frame)
    result = make(frame)
    try:
        jpeg, checks = result if isinstance(result, tuple) else (result.jpeg, result.checks)
        if not bytes(jpeg).startswith(b"\xff\xd8"):
            raise ValueError("not a JPEG")
        return bytes(jpeg), dict(checks)
    except (AttributeError, TypeError, ValueError):
        log.warning("drivers.portrait result not as expected: using the kiosk's own crop")
        from kiosk_ui import _fallback

        return _fallback.portrait(frame)
