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
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from drivers.formats import wsq
from station.enrollment.folder import open_folder, read_file, read_member
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
MAX_JSON_BYTES = 1024 * 1024
MIN_FINGER_SIDE = 100
MAX_JSON_DEPTH = 16
# Pixels an image may declare before it is decoded: a 500 ppi finger is about 0.4 megapixels and a
# camera frame at most 12; anything larger is a decompression bomb, refused before Pillow decodes it.
MAX_IMAGE_PIXELS = 16_000_000
MAX_ATTEMPTS = 10  # the kiosk allows a few captures per finger; the file may not claim more
MAX_NOTE_CHARS = 200
FINGER_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "PPM")
FACE_FORMATS = ("JPEG", "PNG")
# What a face's checks may hold: the report of drivers.quality.face and drivers.portrait's summary.
FACE_CHECK_KEYS = frozenset({"all_passed", "faces_found", "face_box", "eyes", "checks", "portrait"})
PORTRAIT_KEYS = frozenset({"width", "height", "jpeg_quality", "bytes", "eyes_from", "geometry"})
MAX_CHECK_TEXT = 120
_FINGER_NUMBER = re.compile(r"[0-9]{1,2}")


def _fail(message: str) -> ValidationFailed:
    return ValidationFailed(message, urdu="اندراج کی فائل میں غلطی ہے: تکنیکی عملے سے رابطہ کریں۔")


def _position(key: str) -> FingerPosition:
    # ASCII digits only: str.isdigit() also takes Arabic-Indic and other digits ("\u0661" is 1).
    if _FINGER_NUMBER.fullmatch(key) and 1 <= int(key) <= 10:
        return FingerPosition(int(key))
    if key.isascii() and key.isidentifier():
        try:
            return FingerPosition[key.upper()]
        except KeyError:
            pass
    raise _fail(f"fingers: {key!r} is not a finger position (1-10 or e.g. right_thumb)")


def _read(folder_fd: int, name: Any, what: str) -> tuple[Path, bytes]:
    data = read_member(folder_fd, name, limit=MAX_IMAGE_BYTES, what=what)
    return Path(name), data


def _open_image(data: bytes, path: Path, what: str, formats: tuple[str, ...]) -> Image.Image:
    """A Pillow image whose declared size is checked before any pixel is decoded."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=list(formats))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _fail(f"{what}: {path} declares too many pixels (a decompression bomb): refused") from exc
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
            raise _fail(f"{what}: {path} is not an image Pillow can read") from exc
    width, height = img.size
    if width * height > MAX_IMAGE_PIXELS:
        img.close()
        raise _fail(
            f"{what}: {path} declares {width}x{height} pixels, over the {MAX_IMAGE_PIXELS}-pixel limit"
            " (a decompression bomb or not an enrollment image): refused"
        )
    return img


def _decode_errors() -> tuple[type[BaseException], ...]:
    return (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    )


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
            with _open_image(data, path, what, FINGER_FORMATS) as img, warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                pixels = np.asarray(img.convert("L"), dtype=np.uint8)
        except _decode_errors() as exc:
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
        with _open_image(data, path, "face", FACE_FORMATS) as img, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
            if img.format == "JPEG":
                return data
            out = io.BytesIO()
            img.convert("RGB").save(out, "JPEG", quality=90)
            return out.getvalue()
    except ValidationFailed:
        raise
    except _decode_errors() as exc:
        raise _fail(f"face: {path} is not an image Pillow can read") from exc


def _check_value(value: Any, what: str) -> Any:
    """A face-check result: a bool, a bounded number, None, a short text or a short list of numbers."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) <= 1_000_000:
        return value
    if isinstance(value, float) and value == value and abs(value) <= 1e6:
        return value
    if isinstance(value, str) and len(value) <= MAX_CHECK_TEXT and value.isprintable():
        return value
    if isinstance(value, list) and len(value) <= 4 and not any(isinstance(v, list | dict) for v in value):
        return [_check_value(v, what) for v in value]
    raise _fail(f"face_checks.{what}: expected a flag, a number, a short text or a short list")


def face_checks_from_json(raw: Any) -> dict[str, Any]:
    """The closed set of face checks the kiosk records (``drivers.quality.face``, ``drivers.portrait``)."""
    from drivers.quality.face import CHECK_NAMES

    if not isinstance(raw, dict):
        raise _fail("face_checks: expected an object of check names and results")
    unknown = sorted(str(k) for k in raw if k not in FACE_CHECK_KEYS)
    if unknown:
        raise _fail(
            f"face_checks: unknown entries {', '.join(unknown)[:80]}; expected some of "
            + ", ".join(sorted(FACE_CHECK_KEYS))
        )
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "checks":
            if not isinstance(value, dict) or not set(value) <= set(CHECK_NAMES):
                raise _fail(f"face_checks.checks: expected results of the checks {', '.join(CHECK_NAMES)}")
            checks: dict[str, Any] = {}
            for name, result in value.items():
                if not isinstance(result, dict) or not set(result) <= {"passed", "value"}:
                    raise _fail(f"face_checks.checks.{name}: expected {{'passed': ..., 'value': ...}}")
                checks[name] = {k: _check_value(v, f"checks.{name}.{k}") for k, v in result.items()}
            out[key] = checks
        elif key == "portrait":
            if not isinstance(value, dict) or not set(value) <= PORTRAIT_KEYS:
                raise _fail(f"face_checks.portrait: expected some of {', '.join(sorted(PORTRAIT_KEYS))}")
            out[key] = {k: _check_value(v, f"portrait.{k}") for k, v in value.items()}
        elif key == "eyes":
            if not isinstance(value, list) or len(value) > 2:
                raise _fail("face_checks.eyes: expected at most two eye positions")
            out[key] = [_check_value(v, "eyes") for v in value]
        else:
            out[key] = _check_value(value, key)
    return out


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


def _note(item: dict[str, Any], what: str) -> str:
    note = item.get("note", "")
    if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS or not note.isprintable():
        raise _fail(f"{what}: note must be one line of at most {MAX_NOTE_CHARS} characters")
    return note


def _fingers_from_json(
    folder: int, raw_fingers: Any
) -> dict[FingerPosition, FingerCapture | FingerException]:
    fingers: dict[FingerPosition, FingerCapture | FingerException] = {}
    if not isinstance(raw_fingers, dict):
        raise _fail("fingers: expected an object keyed by finger position")
    for key, item in raw_fingers.items():
        position = _position(str(key))
        what = f"fingers.{key}"
        if position in fingers:
            raise _fail(f"{what}: finger {int(position)} is given twice")
        if not isinstance(item, dict):
            raise _fail(f"{what}: expected an object with 'image' or 'exception'")
        if "exception" in item:
            try:
                reason = FingerExceptionReason(item["exception"])
            except (ValueError, TypeError):
                reasons = ", ".join(r.value for r in FingerExceptionReason)
                raise _fail(f"{what}: exception must be one of {reasons}") from None
            fingers[position] = FingerException(position, reason, _note(item, what))
            continue
        attempts = item.get("attempts", 1)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= MAX_ATTEMPTS:
            raise _fail(f"{what}: attempts must be a whole number from 1 to {MAX_ATTEMPTS}")
        path, raw = _read(folder, item.get("image"), what)
        wsq_bytes, pixels = finger_wsq(path, raw, what, finger_ppi(item, what))
        quality = finger_quality(item, pixels, path, what)
        fingers[position] = FingerCapture(position, wsq_bytes, quality, attempts)
    return fingers


def enrollment_from_json(data: Any, base_dir: Path, *, station_id: str = "") -> Enrollment:
    """Build an :class:`Enrollment` from parsed JSON and the image files it names."""
    if not isinstance(data, dict):
        raise _fail("enrollment.json must hold one JSON object")
    demographics = demographics_from_dict(data.get("demographics"))
    with open_folder(base_dir) as folder:
        face = None
        if data.get("face") is not None:
            path, raw = _read(folder, data["face"], "face")
            checks = face_checks_from_json(data.get("face_checks", {}))
            face = FaceCapture(jpeg=face_jpeg(path, raw), checks=checks)
        fingers = _fingers_from_json(folder, data.get("fingers", {}))
    return Enrollment(
        demographics=demographics,
        face=face,
        fingers=fingers,
        operator_id=str(data.get("operator_id", "")),
        station_id=str(data.get("station_id", "") or station_id),
    )


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text`` (strings skipped), in one bounded pass."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(raw: bytes, what: str) -> Any:
    """JSON from untrusted bytes: UTF-8, at most :data:`MAX_JSON_DEPTH` deep, typed errors only."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(f"{what} is not UTF-8 text (byte {exc.start} is invalid): save it as UTF-8") from exc
    if json_depth(text) > MAX_JSON_DEPTH:
        raise _fail(f"{what} nests deeper than {MAX_JSON_DEPTH} levels: not an enrollment file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(f"{what} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    except (RecursionError, ValueError) as exc:
        raise _fail(f"{what} is not valid JSON ({type(exc).__name__})") from exc


def load_enrollment(path: Path, *, station_id: str = "") -> Enrollment:
    raw = read_file(path, limit=MAX_JSON_BYTES, what="enrollment file")
    data = parse_json(raw, str(path))
    return enrollment_from_json(data, path.parent, station_id=station_id)
