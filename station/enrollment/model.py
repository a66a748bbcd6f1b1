"""The enrollment record: demographics, face, ten fingers (or their exceptions), who and where.

Labels are bilingual (English, Urdu): the kiosk shows them, the receipt prints them. The record
turns into the packet document with :meth:`Enrollment.to_document` — plain CBOR-ready types,
each image with its SHA-256, deterministic for equal inputs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any

from station.enrollment.qualitylabel import nfiq2_label

DOCUMENT_FORMAT = "enrollment/1"
ENTERED_BY = ("operator", "technician-import")
TECHNICIAN_IMPORT = "technician-import"  # the operator id and ``entered_by`` of an unattended import


class ApplicationKind(Enum):
    """Why the citizen is at the counter: identity-card kinds need age 18+, a juvenile card is under 18."""

    NEW = "new"
    RENEWAL = "renewal"
    MODIFICATION = "modification"
    DUPLICATE = "duplicate"
    JUVENILE = "juvenile"

    @property
    def en(self) -> str:
        return _KIND_LABELS[self][0]

    @property
    def ur(self) -> str:
        return _KIND_LABELS[self][1]


_KIND_LABELS = {
    ApplicationKind.NEW: ("New identity card", "نیا شناختی کارڈ"),
    ApplicationKind.RENEWAL: ("Renewal", "تجدید"),
    ApplicationKind.MODIFICATION: ("Modification", "ترمیم"),
    ApplicationKind.DUPLICATE: ("Duplicate (lost card)", "گمشدہ کارڈ کی نقل"),
    ApplicationKind.JUVENILE: ("Juvenile card (under 18)", "نابالغ کارڈ (اٹھارہ سال سے کم عمر)"),
}


class Gender(Enum):
    MALE = "male"
    FEMALE = "female"
    TRANSGENDER = "x"

    @property
    def en(self) -> str:
        return {"male": "Male", "female": "Female", "x": "Transgender"}[self.value]

    @property
    def ur(self) -> str:
        return {"male": "مرد", "female": "عورت", "x": "خواجہ سرا"}[self.value]


class FingerPosition(IntEnum):
    """ISO/IEC 19794-2 and ANSI/NIST finger positions: right thumb 1 … left little 10."""

    RIGHT_THUMB = 1
    RIGHT_INDEX = 2
    RIGHT_MIDDLE = 3
    RIGHT_RING = 4
    RIGHT_LITTLE = 5
    LEFT_THUMB = 6
    LEFT_INDEX = 7
    LEFT_MIDDLE = 8
    LEFT_RING = 9
    LEFT_LITTLE = 10

    @property
    def en(self) -> str:
        """ "Right thumb", "Left index finger", ..."""
        text = self.name.replace("_", " ").capitalize()
        return text if self.name.endswith("THUMB") else f"{text} finger"

    @property
    def ur(self) -> str:
        hand = "دایاں" if self.value <= 5 else "بایاں"
        finger = ["انگوٹھا", "شہادت کی انگلی", "درمیانی انگلی", "انگوٹھی والی انگلی", "چھوٹی انگلی"]
        return f"{hand} {finger[(self.value - 1) % 5]}"


class FingerExceptionReason(Enum):
    AMPUTATED = "amputated"
    INJURED = "injured"
    UNUSABLE = "unusable"
    CONGENITAL = "congenital"
    OTHER = "other"

    @property
    def en(self) -> str:
        return _REASON_LABELS[self][0]

    @property
    def ur(self) -> str:
        return _REASON_LABELS[self][1]


_REASON_LABELS = {
    FingerExceptionReason.AMPUTATED: ("Amputated", "کٹی ہوئی"),
    FingerExceptionReason.INJURED: ("Injured or bandaged", "زخمی یا پٹی بندھی"),
    FingerExceptionReason.UNUSABLE: ("Prints worn or unusable", "نشانات مٹے ہوئے یا ناقابل استعمال"),
    FingerExceptionReason.CONGENITAL: ("Missing from birth", "پیدائشی طور پر موجود نہیں"),
    FingerExceptionReason.OTHER: ("Other", "دیگر"),
}


@dataclass(frozen=True)
class Demographics:
    kind: ApplicationKind
    name_ur: str
    name_en: str
    father_or_husband_name_ur: str
    father_or_husband_name_en: str
    cnic: str
    parent_cnic: str
    date_of_birth: dt.date
    gender: Gender
    present_address_ur: str
    present_address_en: str
    permanent_address_ur: str
    permanent_address_en: str
    district: str
    tehsil: str
    union_council: str
    mobile: str
    purpose: str
    consent: bool

    def to_document(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "name_ur": self.name_ur,
            "name_en": self.name_en,
            "father_or_husband_name_ur": self.father_or_husband_name_ur,
            "father_or_husband_name_en": self.father_or_husband_name_en,
            "cnic": self.cnic,
            "parent_cnic": self.parent_cnic,
            "date_of_birth": self.date_of_birth.isoformat(),
            "gender": self.gender.value,
            "present_address_ur": self.present_address_ur,
            "present_address_en": self.present_address_en,
            "permanent_address_ur": self.permanent_address_ur,
            "permanent_address_en": self.permanent_address_en,
            "district": self.district,
            "tehsil": self.tehsil,
            "union_council": self.union_council,
            "mobile": self.mobile,
            "purpose": self.purpose,
            "consent": self.consent,
        }


class FaceOverrideReason(Enum):
    """Why a supervisor keeps a photograph that fails a face check."""

    MEDICAL = "medical"
    HEADWEAR = "headwear"
    EQUIPMENT = "equipment"
    OTHER = "other"

    @property
    def en(self) -> str:
        return _OVERRIDE_LABELS[self][0]

    @property
    def ur(self) -> str:
        return _OVERRIDE_LABELS[self][1]


_OVERRIDE_LABELS = {
    FaceOverrideReason.MEDICAL: ("Medical condition or disability", "طبی حالت یا معذوری"),
    FaceOverrideReason.HEADWEAR: ("Religious headwear", "مذہبی لباس یا سر ڈھانپنا"),
    FaceOverrideReason.EQUIPMENT: ("Camera or light cannot do better here", "کیمرہ یا روشنی اس سے بہتر نہیں"),
    FaceOverrideReason.OTHER: ("Other", "دیگر"),
}


class SignOffKind(Enum):
    """What a supervisor approves at the counter."""

    FINGER_EXCEPTION = "finger_exception"
    FACE_OVERRIDE = "face_check_override"


@dataclass(frozen=True)
class SignOff:
    """A supervisor's approval given at the kiosk at that moment (id + PIN + their own finger).

    It travels inside the station-signed packet, so central verifies it with the station's key, and
    its twin ``signoff.approve`` entry is in the audit chain. ``subject`` is ``finger:N`` or ``face``;
    ``reason`` is a code (an exception or override reason), never free text.
    """

    supervisor_id: str
    kind: SignOffKind
    subject: str
    reason: str
    at: int
    method: str = "pin+finger"

    def to_document(self) -> dict[str, Any]:
        return {
            "supervisor_id": self.supervisor_id,
            "approved": self.kind.value,
            "subject": self.subject,
            "reason": self.reason,
            "at": self.at,
            "method": self.method,
        }


@dataclass(frozen=True)
class FaceCapture:
    jpeg: bytes
    checks: dict[str, Any] = field(default_factory=dict)
    override: SignOff | None = None
    sha256: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # hashed when the photo is taken, not on the commit's critical path (bench/commit.py)
        object.__setattr__(self, "sha256", _sha256(self.jpeg))


@dataclass(frozen=True)
class FingerCapture:
    """A kept print: WSQ at 500 ppi and its NFIQ 2 score, computed by the station from the image."""

    position: FingerPosition
    wsq: bytes
    quality: int
    attempts: int = 1
    sha256: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # hashed when the print is taken, while the operator moves to the next finger, not at commit
        object.__setattr__(self, "sha256", _sha256(self.wsq))


@dataclass(frozen=True)
class FingerException:
    """A finger that cannot be captured; ``photo`` is the exception photo of the hand (JPEG)."""

    position: FingerPosition
    reason: FingerExceptionReason
    note: str = ""
    photo: bytes | None = None
    sign_off: SignOff | None = None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _plain(value: Any) -> Any:
    """Face check results as document values: str/int/bytes/bool/None, lists and str-keyed dicts.

    Floats become their shortest exact decimal text (``repr``: ``float(text)`` gives the value back),
    so the document holds no floating-point encoding; tuples become lists, enums their values.
    """
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return _plain(value.value)
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # numpy scalar -> the Python int/float/bool it holds
    if value is None or isinstance(value, str | int | bool | bytes):
        return value
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class Enrollment:
    demographics: Demographics
    face: FaceCapture | None
    fingers: dict[FingerPosition, FingerCapture | FingerException]
    operator_id: str
    station_id: str
    policy_version: int = 0  # the policy the enrollment was captured under (0: the built-in default)
    # Who vouches for the capture: an operator logged in with PIN and finger (the kiosk, or
    # `station enroll --operator`), or a technician importing files without an operator's login.
    entered_by: str = "operator"

    def sign_offs(self) -> list[SignOff]:
        """Every supervisor sign-off in the record (finger exceptions first, then the face)."""
        found = [
            item.sign_off
            for _, item in sorted(self.fingers.items())
            if isinstance(item, FingerException) and item.sign_off is not None
        ]
        if self.face is not None and self.face.override is not None:
            found.append(self.face.override)
        return found

    def to_document(self) -> dict[str, Any]:
        fingers: list[dict[str, Any]] = []
        for position in sorted(self.fingers):
            item = self.fingers[position]
            if isinstance(item, FingerCapture):
                fingers.append(
                    {
                        "position": int(position),
                        "format": "wsq",
                        "image": item.wsq,
                        "sha256": item.sha256,
                        "quality": nfiq2_label(item.quality).to_document(),
                        "attempts": item.attempts,
                    }
                )
            else:
                entry: dict[str, Any] = {
                    "position": int(position),
                    "exception": item.reason.value,
                    "note": item.note,
                }
                if item.photo is not None:
                    entry["photo"] = {"format": "jpeg", "image": item.photo, "sha256": _sha256(item.photo)}
                if item.sign_off is not None:
                    entry["sign_off"] = item.sign_off.to_document()
                fingers.append(entry)
        face = None
        if self.face is not None:
            face = {
                "format": "jpeg",
                "image": self.face.jpeg,
                "sha256": self.face.sha256,
                "checks": _plain(self.face.checks),
            }
            if self.face.override is not None:
                face["override"] = self.face.override.to_document()
        return {
            "format": DOCUMENT_FORMAT,
            "demographics": self.demographics.to_document(),
            "face": face,
            "fingers": fingers,
            "operator_id": self.operator_id,
            "station_id": self.station_id,
            "policy_version": self.policy_version,
            "entered_by": self.entered_by,
        }
