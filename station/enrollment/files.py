"""Enrollments as files: ``enrollment.json`` plus the image files it names.

Used by ``station enroll --from-json`` and ``--example``. Layout of the JSON::

    {
      "operator_id": "op-demo",
      "demographics": {"kind": "new", "name_ur": "...", "cnic": "35202-1234567-1", ...},
      "face": "face.jpg",
      "fingers": {
        "1": {"image": "finger-01.png", "attempts": 1},
        "6": {"image": "finger-06.png", "ppi": 385},
        "2": {"image": "finger-02.wsq"},
        "7": {"exception": "injured", "note": "bandaged"}
      }
    }

Finger keys are positions 1-10 (right thumb 1 … left little 10) or their names
(``right_thumb``). Finger images may be any grey image Pillow reads (converted to WSQ) or ``.wsq``;
the face may be JPEG or PNG (converted to JPEG). Paths are relative to the JSON file. ``attempts``
(default 1) and ``ppi`` (the scan resolution, default 500: other resolutions are resampled to 500 ppi)
are optional. Quality is always the NFIQ 2 score the station computes from the 500 ppi image; a
``quality`` written in the file is ignored, never trusted.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from drivers.formats import wsq
from station.enrollment.model import (
    ApplicationKind,
    Demographics,
    Enrollment,
    FaceCapture,
    FingerCapture,
    FingerException,
    FingerExceptionReason,
    FingerPosition,
    Gender,
)
from station.enrollment.quality import (
    MAX_PPI,
    MIN_PPI,
    PPI,
    QualityUnavailable,
    nfiq2_score,
    resample_to_500,
)
from station.enrollment.validate import normalise_cnic, normalise_mobile, normalise_urdu, parse_date
from station.errors import ValidationFailed

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MIN_FINGER_SIDE = 100


def _fail(message: str) -> ValidationFailed:
    return ValidationFailed(message, urdu="اندراج کی فائل میں غلطی ہے: تکنیکی عملے سے رابطہ کریں۔")


def _position(key: str) -> FingerPosition:
    if key.isdigit() and 1 <= int(key) <= 10:
        return FingerPosition(int(key))
    try:
        return FingerPosition[key.upper()]
    except KeyError:
        raise _fail(f"fingers: '{key}' is not a finger position (1-10 or e.g. right_thumb)") from None


def _read(base: Path, name: Any, what: str) -> tuple[Path, bytes]:
    if not isinstance(name, str) or not name:
        raise _fail(f"{what}: give the image file name")
    path = (base / name).resolve()
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise _fail(f"{what}: {path} is {size} bytes, over the {MAX_IMAGE_BYTES}-byte limit")
        return path, path.read_bytes()
    except OSError as exc:
        raise _fail(f"{what}: cannot read {path} ({exc.strerror})") from exc


def finger_wsq(path: Path, data: bytes, what: str, ppi: int = PPI) -> tuple[bytes, np.ndarray]:
    """WSQ bytes and grey pixels at 500 ppi for a finger image file scanned at ``ppi``.

    A 500 ppi WSQ file is kept as is; any other image (or a WSQ at another resolution) is resampled to
    500 ppi (``station.enrollment.quality.resample_to_500``) and encoded at 500 ppi.
    """
    if path.suffix.lower() == ".wsq":
        try:
            pixels = wsq.decode(data)
        except wsq.WSQError as exc:
            raise _fail(f"{what}: {path} is not a valid WSQ image ({exc})") from exc
        if ppi == PPI:
            return data, pixels
    else:
        try:
            with Image.open(io.BytesIO(data)) as img:
                pixels = np.asarray(img.convert("L"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as exc:
            raise _fail(f"{what}: {path} is not an image Pillow can read") from exc
    pixels = resample_to_500(pixels, ppi)
    if min(pixels.shape) < MIN_FINGER_SIDE:
        raise _fail(
            f"{what}: {path} is {pixels.shape[1]}x{pixels.shape[0]} pixels at 500 ppi; a finger image"
            f" needs at least {MIN_FINGER_SIDE} pixels on each side"
        )
    return wsq.encode(pixels, ppi=PPI), pixels


def finger_ppi(item: dict[str, Any], what: str) -> int:
    """The resolution the file's print was scanned at (``"ppi"``, default 500)."""
    ppi = item.get("ppi", PPI)
    if isinstance(ppi, bool) or not isinstance(ppi, int) or not MIN_PPI <= ppi <= MAX_PPI:
        raise _fail(f"{what}: ppi must be a whole number from {MIN_PPI} to {MAX_PPI} (the scan resolution)")
    return ppi


def finger_quality(item: dict[str, Any], pixels: np.ndarray, path: Path, what: str) -> int:
    """The NFIQ 2 score of the 500 ppi image, computed here. A ``quality`` in the JSON is never trusted:
    it is ignored, so the record carries only what the station measured."""
    try:
        return nfiq2_score(pixels)
    except QualityUnavailable as exc:
        raise _fail(f"{what}: cannot score {path}: {exc}; give a better image") from exc


def face_jpeg(path: Path, data: bytes) -> bytes:
    """JPEG bytes for the face: a JPEG is kept as is (after checking it decodes), others re-encoded."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.format == "JPEG":
                return data
            out = io.BytesIO()
            img.convert("RGB").save(out, "JPEG", quality=90)
            return out.getvalue()
    except (UnidentifiedImageError, OSError) as exc:
        raise _fail(f"face: {path} is not an image Pillow can read") from exc


def demographics_from_dict(raw: Any) -> Demographics:
    if not isinstance(raw, dict):
        raise _fail("demographics: expected an object with the citizen's details")
    try:
        kind = ApplicationKind(raw.get("kind", "new"))
        gender = Gender(raw["gender"])
    except (KeyError, ValueError) as exc:
        raise _fail(f"demographics: kind or gender missing or unknown ({exc})") from exc
    born = parse_date(raw.get("date_of_birth"))
    text_fields = [
        "name_ur",
        "name_en",
        "father_or_husband_name_ur",
        "father_or_husband_name_en",
        "present_address_ur",
        "present_address_en",
        "permanent_address_ur",
        "permanent_address_en",
        "district",
        "tehsil",
        "union_council",
        "purpose",
    ]
    values: dict[str, str] = {}
    for name in text_fields:
        value = raw.get(name, "")
        if not isinstance(value, str):
            raise _fail(f"demographics.{name}: expected text")
        values[name] = normalise_urdu(value) if name.endswith("_ur") else " ".join(value.split())
    mobile = str(raw.get("mobile", ""))
    if born is None:
        raise _fail("demographics.date_of_birth: expected a date written YYYY-MM-DD")
    return Demographics(
        kind=kind,
        gender=gender,
        date_of_birth=born,
        cnic=normalise_cnic(str(raw.get("cnic", ""))),
        parent_cnic=normalise_cnic(str(raw.get("parent_cnic", ""))),
        mobile=normalise_mobile(mobile) or mobile,
        consent=raw.get("consent") is True,
        **values,
    )


def enrollment_from_json(data: Any, base_dir: Path, *, station_id: str = "") -> Enrollment:
    """Build an :class:`Enrollment` from parsed JSON and the image files it names."""
    if not isinstance(data, dict):
        raise _fail("enrollment.json must hold one JSON object")
    demographics = demographics_from_dict(data.get("demographics"))
    face = None
    if data.get("face") is not None:
        path, raw = _read(base_dir, data["face"], "face")
        checks = data.get("face_checks", {})
        if not isinstance(checks, dict):
            raise _fail("face_checks: expected an object of check names and results")
        face = FaceCapture(jpeg=face_jpeg(path, raw), checks=dict(checks))
    fingers: dict[FingerPosition, FingerCapture | FingerException] = {}
    raw_fingers = data.get("fingers", {})
    if not isinstance(raw_fingers, dict):
        raise _fail("fingers: expected an object keyed by finger position")
    for key, item in raw_fingers.items():
        position = _position(str(key))
        what = f"fingers.{key}"
        if not isinstance(item, dict):
            raise _fail(f"{what}: expected an object with 'image' or 'exception'")
        if "exception" in item:
            try:
                reason = FingerExceptionReason(item["exception"])
            except ValueError:
                reasons = ", ".join(r.value for r in FingerExceptionReason)
                raise _fail(f"{what}: exception must be one of {reasons}") from None
            fingers[position] = FingerException(position, reason, str(item.get("note", "")))
            continue
        attempts = item.get("attempts", 1)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise _fail(f"{what}: attempts must be a whole number, 1 or more")
        path, raw = _read(base_dir, item.get("image"), what)
        wsq_bytes, pixels = finger_wsq(path, raw, what, finger_ppi(item, what))
        quality = finger_quality(item, pixels, path, what)
        fingers[position] = FingerCapture(position, wsq_bytes, quality, attempts)
    return Enrollment(
        demographics=demographics,
        face=face,
        fingers=fingers,
        operator_id=str(data.get("operator_id", "")),
        station_id=str(data.get("station_id", "") or station_id),
    )


def load_enrollment(path: Path, *, station_id: str = "") -> Enrollment:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(f"cannot read {path} ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise _fail(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    return enrollment_from_json(data, path.parent, station_id=station_id)
