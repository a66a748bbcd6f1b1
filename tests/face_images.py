"""Test pictures made from the real astronaut portrait (tests/fixtures/faces/astronaut.png)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from drivers.base import BGRImage

ASTRONAUT = Path(__file__).parent / "fixtures" / "faces" / "astronaut.png"


def astronaut() -> BGRImage:
    img = cv2.imread(str(ASTRONAUT), cv2.IMREAD_COLOR)
    assert img is not None, ASTRONAUT
    return np.asarray(img, dtype=np.uint8)


def suitable_crop() -> BGRImage:
    """A 480x640 head-and-shoulders crop: head about 75 % of the height, eyes about 125 px apart."""
    return np.asarray(cv2.resize(astronaut()[0:227, 140:310], (480, 640), interpolation=cv2.INTER_CUBIC))


def preview_frame() -> BGRImage:
    """A 640x480 landscape frame, the kiosk's preview size, that passes every check."""
    return np.asarray(cv2.resize(astronaut()[0:240, 65:385], (640, 480), interpolation=cv2.INTER_CUBIC))


def rotated(img: BGRImage, degrees: float) -> BGRImage:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return np.asarray(cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE))


def blurred(img: BGRImage, sigma: float = 4.0) -> BGRImage:
    return np.asarray(cv2.GaussianBlur(img, (0, 0), sigma))


def darkened(img: BGRImage, factor: float = 0.3) -> BGRImage:
    return (img.astype(np.float32) * factor).astype(np.uint8)


def no_face() -> BGRImage:
    """The space-shuttle model and backdrop on the right of the photograph: no face in it."""
    return np.asarray(cv2.resize(astronaut()[0:300, 330:512], (480, 640), interpolation=cv2.INTER_CUBIC))


def two_faces() -> BGRImage:
    crop = suitable_crop()
    return np.ascontiguousarray(np.hstack([crop, crop]))
