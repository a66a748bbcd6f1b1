"""A decrypted packet document (``enrollment/1``) read into the typed parts the export formats need.

Image sizes come from the image headers (the WSQ frame header, the JPEG start-of-frame), never from
decoding, so writing a transaction costs little next to decrypting the packet. Anything missing or
out of shape raises :class:`ExportError` (``export.document``) naming the field.

Finger exceptions map to ANSI/NIST-ITL 1-2011 amputation codes (field 14.018 AMP, AMPCD): a
finger that is not there (amputated, missing from birth) is ``XX``; one that is there but cannot
be printed (injured or bandaged, worn, other) is ``UP``.
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass
from typing import Any

from sync.central.export.errors import ExportError

DOCUMENT_FORMAT = "enrollment/1"
AMP_CODES = {
    "amputated": "XX",
    "congenital": "XX",
    "injured": "UP",
    "unusable": "UP",
    "other": "UP",
}
# The ISO/IEC 19794-5 token geometry drivers/portrait.py crops to (eye midpoint at (W/2, 0.6 W),
# eyes 0.25 W apart); repeated here so central needs no OpenCV. tests/test_export_formats.py
# checks they agree.
TOKEN_EYE_LINE = 0.6
TOKEN_EYE_SPACING = 0.25
# NFIQ 2 CBEFF quality algorithm identifiers (vendor ISO/IEC JTC 1 SC 37 = 0x0101; one product id
# per NFIQ 2 revision), as NIST's NFIQ 2 reference implementation declares them.
NFIQ2_VENDOR = 0x0101
NFIQ2_PRODUCTS = {"2.0": 0x21, "2.1": 0x37, "2.2": 0x38, "2.3": 0x39}
NFIQ2_DEFAULT_VERSION = "2.3"  # the NFIQ 2 the project's NBIS build (nbis-py) embeds


def _fail(message: str) -> ExportError:
    return ExportError(message, code="export.document")


@dataclass(frozen=True)
class Quality:
    score: int  # 0-100
    algorithm: str  # "NFIQ 2"
    version: str  # "2.3" ...

    @property
    def vendor(self) -> int:
        return NFIQ2_VENDOR

    @property
    def product(self) -> int:
        return NFIQ2_PRODUCTS.get(".".join(self.version.split(".")[:2]), NFIQ2_PRODUCTS["2.3"])


@dataclass(frozen=True)
class FingerImage:
    position: int  # 1 right thumb ... 10 left little (ANSI/NIST-ITL Table 8, ISO/IEC 19794-4 alike)
    wsq: bytes
    width: int
    height: int
    ppi: int
    quality: Quality | None


@dataclass(frozen=True)
class FingerMissing:
    position: int
    reason: str  # the document's exception reason
    amp: str  # "XX" or "UP"


@dataclass(frozen=True)
class FaceImage:
    jpeg: bytes
    width: int
    height: int
    components: int  # 1 grey, 3 colour
    baseline: bool  # SOF0/SOF1 (ANSI/NIST CGA "JPEGB")
    token: bool  # cropped to the ISO/IEC 19794-5 token geometry
    eyes: tuple[tuple[int, int], tuple[int, int]] | None  # (subject's right, subject's left), pixels
    checks: dict[str, Any]


@dataclass(frozen=True)
class PacketView:
    packet_id: str
    station_id: str
    central_id: str
    created_at: int  # Unix seconds, from the signed header
    demographics: dict[str, Any]
    operator_id: str
    policy_version: str | None
    fingers: tuple[FingerImage, ...]
    missing: tuple[FingerMissing, ...]
    face: FaceImage | None

    @property
    def created(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.created_at, dt.UTC)


def wsq_header(data: bytes) -> tuple[int, int]:
    """(width, height) from a WSQ file's frame header (SOF, 0xFFA2), walking the marker segments."""
    if data[:2] != b"\xff\xa0":
        raise _fail("a finger image is not WSQ (no WSQ start-of-image marker)")
    pos = 2
    for _ in range(64):  # tables and comments before the frame header: a handful in practice
        if pos + 4 > len(data) or data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker == 0xA2:  # SOF: Lf, black, white, Y (height), X (width), ...
            if pos + 10 > len(data) or length < 8:
                break
            height, width = struct.unpack_from(">HH", data, pos + 6)
            if width == 0 or height == 0:
                break
            return width, height
        if marker not in (0xA4, 0xA5, 0xA6, 0xA8):  # DTT, DQT, DHT, COM
            break
        pos += 2 + length
    raise _fail("a finger image's WSQ frame header is missing or damaged")


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_header(data: bytes) -> tuple[int, int, int, int]:
    """(width, height, components, SOF marker) from a JPEG's start-of-frame segment."""
    if data[:2] != b"\xff\xd8":
        raise _fail("the face image is not JPEG (no start-of-image marker)")
    pos = 2
    for _ in range(256):
        if pos + 4 > len(data) or data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker in _SOF:
            if pos + 10 > len(data) or length < 8:
                break
            height, width = struct.unpack_from(">HH", data, pos + 5)
            components = data[pos + 9]
            if width == 0 or height == 0 or components not in (1, 3):
                break
            return width, height, components, marker
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            break
        pos += 2 + length
    raise _fail("the face image's JPEG frame header is missing or damaged")


def _quality(item: dict[str, Any]) -> Quality | None:
    value = item.get("quality")
    algorithm, version = "NFIQ 2", NFIQ2_DEFAULT_VERSION
    if isinstance(value, dict):  # labelled: {"score", "algorithm", "version"}
        algorithm = str(value.get("algorithm", algorithm))
        version = str(value.get("version", version))
        value = value.get("score")
    else:
        algorithm = str(item.get("quality_algorithm", algorithm))
        version = str(item.get("quality_version", version))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise _fail(f"finger {item.get('position')}: quality {value!r} is not a 0-100 score")
    if "NFIQ" not in algorithm.upper().replace(" ", "") or "2" not in algorithm:
        raise _fail(f"finger {item.get('position')}: quality algorithm {algorithm!r} is not NFIQ 2")
    return Quality(value, "NFIQ 2", version.removeprefix("v"))


def _eyes(checks: dict[str, Any], width: int) -> tuple[bool, tuple[tuple[int, int], tuple[int, int]] | None]:
    portrait = checks.get("portrait")
    if not isinstance(portrait, dict) or "ISO/IEC 19794-5 token" not in str(portrait.get("geometry", "")):
        return False, None
    if portrait.get("eyes_from") != "eyes":
        return True, None  # the eyes were not found: the crop used the face box, positions unknown
    y = round(TOKEN_EYE_LINE * width)
    half = TOKEN_EYE_SPACING * width / 2
    return True, ((round(width / 2 - half), y), (round(width / 2 + half), y))


def _text(demographics: dict[str, Any], key: str) -> str:
    value = demographics.get(key)
    if not isinstance(value, str):
        raise _fail(f"demographics.{key} is missing")
    return value


DEMOGRAPHIC_KEYS = (
    "kind",
    "name_en",
    "name_ur",
    "father_or_husband_name_en",
    "father_or_husband_name_ur",
    "cnic",
    "parent_cnic",
    "date_of_birth",
    "gender",
    "present_address_en",
    "present_address_ur",
    "permanent_address_en",
    "permanent_address_ur",
    "district",
    "tehsil",
    "union_council",
    "purpose",
)


def read_view(document: dict[str, Any], meta: dict[str, Any], central_id: str) -> PacketView:
    """The typed parts of a decrypted ``enrollment/1`` document; ``meta`` as ``open_stored`` gives it."""
    if document.get("format") != DOCUMENT_FORMAT:
        raise _fail(f"the packet document is not {DOCUMENT_FORMAT!r} (format {document.get('format')!r})")
    demographics = document.get("demographics")
    if not isinstance(demographics, dict):
        raise _fail("the packet has no demographics")
    demo: dict[str, Any] = {key: _text(demographics, key) for key in DEMOGRAPHIC_KEYS}
    demo["consent"] = demographics.get("consent") is True
    try:
        dt.date.fromisoformat(demo["date_of_birth"])
    except ValueError as exc:
        raise _fail(f"demographics.date_of_birth {demo['date_of_birth']!r} is not a date") from exc
    fingers: list[FingerImage] = []
    missing: list[FingerMissing] = []
    seen: set[int] = set()
    for item in document.get("fingers") or []:
        position = item.get("position") if isinstance(item, dict) else None
        if not isinstance(position, int) or isinstance(position, bool) or not 1 <= position <= 10:
            raise _fail(f"a finger entry has no position 1-10: {position!r}")
        if position in seen:
            raise _fail(f"finger {position} appears twice")
        seen.add(position)
        if "exception" in item:
            reason = str(item["exception"])
            if reason not in AMP_CODES:
                raise _fail(f"finger {position}: unknown exception reason {reason!r}")
            missing.append(FingerMissing(position, reason, AMP_CODES[reason]))
            continue
        image = item.get("image")
        if not isinstance(image, bytes) or item.get("format") != "wsq":
            raise _fail(f"finger {position}: no WSQ image")
        width, height = wsq_header(image)
        ppi = item.get("ppi", 500)
        if ppi != 500:
            raise _fail(f"finger {position}: the image is {ppi} ppi; the export formats need 500 ppi")
        fingers.append(FingerImage(position, image, width, height, 500, _quality(item)))
    face = None
    face_doc = document.get("face")
    if isinstance(face_doc, dict):
        jpeg = face_doc.get("image")
        if not isinstance(jpeg, bytes) or face_doc.get("format") != "jpeg":
            raise _fail("face: no JPEG image")
        width, height, components, sof = jpeg_header(jpeg)
        checks = face_doc.get("checks") if isinstance(face_doc.get("checks"), dict) else {}
        assert isinstance(checks, dict)
        token, eyes = _eyes(checks, width)
        face = FaceImage(jpeg, width, height, components, sof in (0xC0, 0xC1), token, eyes, checks)
    policy = document.get("policy_version", document.get("policy"))
    if isinstance(policy, dict):
        policy = policy.get("version")
    created_at = meta.get("created_at")
    if not isinstance(created_at, int):
        raise _fail("the packet header has no creation time")
    return PacketView(
        packet_id=str(meta["packet_id"]),
        station_id=str(meta["station_id"]),
        central_id=central_id,
        created_at=created_at,
        demographics=demo,
        operator_id=str(document.get("operator_id") or ""),
        policy_version=None if policy is None else str(policy),
        fingers=tuple(fingers),
        missing=tuple(missing),
        face=face,
    )
