"""The kiosk's one door to the drivers: open devices, score prints, check faces, make portraits, match.

Every call here runs on a device or task thread, never on the GUI thread. The drivers' own modules do
the work (``drivers.url``, ``drivers.quality``, ``drivers.match``, ``drivers.portrait``,
``drivers.formats.wsq``); this module only adapts their results to what the pages show.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from drivers.errors import DeviceError, DeviceUnplugged

if TYPE_CHECKING:  # NumPy and OpenCV load on the device threads, not before the login screen
    import numpy as np

    from drivers.base import Camera, FingerprintScanner
    from drivers.quality.face import FaceReport

log = logging.getLogger("kiosk.devices")


def open_scanner(url: str, *, trace: Any = None) -> FingerprintScanner:
    from drivers.base import FingerprintScanner
    from drivers.url import open_device

    dev = open_device(url, trace=trace)
    if not isinstance(dev, FingerprintScanner):
        dev.close()
        raise DeviceError(
            f"{url} is not a fingerprint scanner: check scanner_url in station.toml.",
            code="device.wrong_kind",
        )
    return dev


def open_camera(url: str) -> Camera:
    from drivers.base import Camera
    from drivers.url import open_device

    dev = open_device(url)
    if not isinstance(dev, Camera):
        dev.close()
        raise DeviceError(
            f"{url} is not a camera: check camera_url in station.toml.", code="device.wrong_kind"
        )
    return dev


def looks_unplugged(exc: DeviceError) -> bool:
    """A device error that means the device went away (not found after being open, or unplugged)."""
    return isinstance(exc, DeviceUnplugged) or exc.code in ("device.unplugged", "device.not_found")


# -- fingerprints ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessedPrint:
    """A capture as the station keeps it (500 ppi pixels, WSQ, NFIQ 2) plus the instant feedback.

    ``quality`` is the NFIQ 2 score the wizard compares and the packet stores; ``feedback`` is the
    drivers' heuristic (``drivers.quality.finger``), shown only while the finger is on the glass, and
    ``reasons`` its English reason texts (``station.enrollment.print_advice`` says them to the operator).
    """

    pixels: np.ndarray
    wsq: bytes
    quality: int
    assessable: bool
    feedback: int
    reasons: tuple[str, ...]


def encode_and_score(pixels: np.ndarray, ppi: int = 500) -> ProcessedPrint:
    """Resample to 500 ppi, WSQ-encode, NFIQ 2 score, and the heuristic's instant feedback."""
    from drivers.quality.finger import finger_quality as heuristic
    from station.enrollment.quality import normalise_print

    norm = normalise_print(pixels, ppi)
    quick = heuristic(norm.pixels)
    return ProcessedPrint(
        norm.pixels, norm.wsq, norm.quality.score, norm.assessable, int(quick.score), tuple(quick.reasons)
    )


def finger_template(pixels: np.ndarray) -> bytes:
    """An ISO/IEC 19794-2 template of a print (what an operator's record keeps)."""
    from drivers.match import template_from_image

    return template_from_image(pixels)


def finger_matches(enrolled: bytes, live: bytes) -> bool:
    """Host-side 1:1 verification of two templates (bozorth3 with the measured threshold)."""
    from drivers.match import verify

    return bool(verify(enrolled, live).matched)


# -- faces -----------------------------------------------------------------------------------------
def check_face(frame: np.ndarray) -> FaceReport:
    """The ICAO-style checks of ``drivers.quality.face`` on one preview frame."""
    from drivers.quality.face import check_face as run_face_checks

    return run_face_checks(frame)


def portrait(frame: np.ndarray) -> tuple[bytes, dict[str, Any]]:
    """The ICAO-style JPEG token of a frame and its check results."""
    from drivers.portrait import make_portrait

    result = make_portrait(frame)
    return bytes(result.jpeg), dict(result.checks)
