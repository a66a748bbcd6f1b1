"""The portrait token: a 3:4 ICAO-style crop of a frame, JPEG-encoded under a byte budget.

Geometry of the ISO/IEC 19794-5 token image: for an image W pixels wide and W/0.75 high, the
midpoint of the eyes is at (W/2, 0.6 W) from the top-left corner and the eyes are 0.25 W apart.
The frame is rotated so the eyes are level, scaled and shifted onto that line (``warpAffine``, edge
pixels replicated where the frame ends). Without eyes the face box stands in for them; without a
face the frame's centre is cut to 3:4. The JPEG quality is lowered step by step until the file fits
``max_bytes``; the check results travel beside the picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from drivers.base import BGRImage
from drivers.errors import DeviceError
from drivers.quality.face import FaceConfig, FaceReport, check_face

EYE_LINE = 0.6  # eye midpoint's distance from the top, in image widths
EYE_SPACING = 0.25  # distance between the eyes, in image widths
QUALITIES = (92, 85, 78, 70, 62, 55, 48, 40, 32, 25, 18, 12)


class PortraitError(DeviceError, ValueError):
    """The picture cannot be made within the budget (also a ``ValueError``)."""

    code = "device.portrait"


@dataclass(frozen=True)
class Portrait:
    jpeg: bytes
    checks: dict[str, Any]


def _eye_transform(report: FaceReport, frame: BGRImage, size: tuple[int, int]) -> np.ndarray[Any, Any]:
    width = size[0]
    if report.eyes:
        (lx, ly), (rx, ry) = report.eyes
        left, right = np.array([lx, ly], float), np.array([rx, ry], float)
    elif report.face_box is not None:
        x, y, w, h = report.face_box  # where a Haar box usually has the eyes
        left, right = np.array([x + 0.3 * w, y + 0.38 * h]), np.array([x + 0.7 * w, y + 0.38 * h])
    else:
        fh, fw = frame.shape[:2]
        crop_h = min(fh, fw * 4 / 3)  # the largest central 3:4 crop
        spacing = EYE_SPACING * crop_h * 0.75
        mid_y = (fh - crop_h) / 2 + EYE_LINE * crop_h * 0.75
        left, right = np.array([fw / 2 - spacing / 2, mid_y]), np.array([fw / 2 + spacing / 2, mid_y])
    mid = (left + right) / 2
    d = right - left
    angle = float(np.degrees(np.arctan2(d[1], d[0])))
    scale = EYE_SPACING * width / max(float(np.hypot(*d)), 1.0)
    m = cv2.getRotationMatrix2D((float(mid[0]), float(mid[1])), angle, scale)
    m[0, 2] += width / 2 - mid[0]
    m[1, 2] += EYE_LINE * width - mid[1]
    return np.asarray(m)


def encode_under(image: BGRImage, max_bytes: int) -> tuple[bytes, int]:
    """(JPEG, quality): the highest quality in ``QUALITIES`` whose file fits ``max_bytes``."""
    for quality in QUALITIES:
        ok, buf = cv2.imencode(
            ".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_OPTIMIZE, 1]
        )
        if ok and buf.size <= max_bytes:
            return buf.tobytes(), quality
    raise PortraitError(
        f"The portrait does not fit in {max_bytes} bytes even at JPEG quality {QUALITIES[-1]}."
    )


def make_portrait(
    frame: BGRImage,
    *,
    max_bytes: int = 40_000,
    size: tuple[int, int] = (480, 640),
    config: FaceConfig | None = None,
    report: FaceReport | None = None,
) -> Portrait:
    """Crop ``frame`` to the ``size`` (width, height; 3:4) token with the eyes on the standard line."""
    width, height = size
    if width <= 0 or abs(height * 3 - width * 4) > 4:
        raise PortraitError(f"A portrait token is 3:4 (width:height); {width}x{height} is not.")
    rep = report if report is not None else check_face(frame, config=config)
    if frame.ndim == 2:
        frame = np.asarray(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    elif frame.shape[2] == 4:
        frame = np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR), dtype=np.uint8)
    m = _eye_transform(rep, frame, size)
    token = cv2.warpAffine(frame, m, (width, height), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    jpeg, quality = encode_under(np.asarray(token, dtype=np.uint8), max_bytes)
    checks: dict[str, Any] = rep.as_dict(instructions=False)  # results only: they go into the packet
    checks["portrait"] = {
        "width": width,
        "height": height,
        "jpeg_quality": quality,
        "bytes": len(jpeg),
        "eyes_from": "eyes" if rep.eyes else "face_box" if rep.face_box else "frame_centre",
        "geometry": "ISO/IEC 19794-5 token (eye midpoint at 0.5W, 0.6W; eyes 0.25W apart)",
    }
    return Portrait(jpeg=jpeg, checks=checks)
