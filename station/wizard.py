"""The enrollment wizard as a plain state machine: the kiosk's pages only render it (Electrum style).

Steps, in order::

    KIND_CONSENT -> DEMOGRAPHICS -> FACE -> FINGERS -> REVIEW -> COMMIT -> RECEIPT

* Each step may be left forward only when its checks pass (:meth:`Wizard.advance` raises
  :class:`StepBlocked` with the :class:`~station.enrollment.problem.Problem` list otherwise). Every
  field check is ``station.enrollment.validate.validate_field``: the wizard adds no rule of its own.
* From REVIEW any earlier step may be edited (:meth:`Wizard.edit`); advancing from an edited step goes
  straight back to REVIEW once everything in between is still complete.
* The rules come from the policy the wizard was started with (``station.policy``; the kiosk takes the
  one in force at the start of each enrollment, never in the middle of one): the application kinds
  offered, the age limits, and per age band which of face and fingers are required, optional or not
  taken. A step whose modality is not taken for the citizen's band is skipped (and anything captured
  for it is forgotten when the demographics are left).
* Fingers: each position gets up to :attr:`Wizard.max_attempts` captures (the policy's attempts); a
  capture at or above ``min_quality`` (the policy's threshold) is kept, the best attempt is kept too;
  after the last failed attempt the operator records an exception with its reason, or keeps the best
  attempt where the policy allows that override.
* :meth:`Wizard.clear` forgets every value, image and capture (idle lock, cancel, after the receipt).

Qt-free and I/O-free: the commit itself (store, seal) is done by the caller, off the GUI thread.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

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
from station.enrollment.problem import Problem
from station.enrollment.validate import (
    normalise_cnic,
    normalise_mobile,
    parse_date,
    validate,
    validate_field,
)
from station.errors import StationError
from station.policy.default import BUILTIN
from station.policy.model import AgeBand, Policy, Requirement, Text
from station.policy.rules import age_on


class Step(enum.IntEnum):
    KIND_CONSENT = 0
    DEMOGRAPHICS = 1
    FACE = 2
    FINGERS = 3
    REVIEW = 4
    COMMIT = 5
    RECEIPT = 6


CONSENT_FIELDS = ("kind", "purpose", "consent")
DEMOGRAPHIC_FIELDS = tuple(f.name for f in fields(Demographics) if f.name not in CONSENT_FIELDS)
ALL_FIELDS = CONSENT_FIELDS + DEMOGRAPHIC_FIELDS
# Fields whose check depends on another field: re-check them when that one changes.
_DEPENDENTS: dict[str, tuple[str, ...]] = {
    "gender": ("cnic",),
    "cnic": ("parent_cnic",),
    "district": ("tehsil", "union_council"),
    "tehsil": ("union_council",),
    "kind": ("date_of_birth",),
}

DEFAULT_MIN_QUALITY = BUILTIN.fingers.threshold
DEFAULT_MAX_ATTEMPTS = BUILTIN.fingers.attempts


class StepBlocked(StationError):
    """The current step cannot be left: ``problems`` says what to fix, field by field."""

    code = "wizard.blocked"

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0]
        super().__init__(first.en, urdu=first.ur, code=f"wizard.{first.code}")
        self.problems = problems


class WizardError(StationError):
    code = "wizard.invalid"


@dataclass(frozen=True)
class FingerOutcome:
    """What one capture attempt means for its finger."""

    position: FingerPosition
    accepted: bool
    quality: int
    attempts: int
    attempts_left: int

    @property
    def needs_exception(self) -> bool:
        return not self.accepted and self.attempts_left == 0


@dataclass(frozen=True)
class Receipt:
    """What the citizen takes home: tracking number, QR payload and the purpose label. No PII."""

    packet_id: str
    tracking_number: str
    station_id: str
    created_at: int
    purpose: str
    signature: bytes  # station signature over :func:`receipt_statement`
    qr_payload: str


def tracking_number(packet_id: str) -> str:
    """A short, typeable number for a packet: 12 base32 characters of SHA-256(packet id), in 3 groups."""
    digest = base64.b32encode(hashlib.sha256(packet_id.encode("ascii")).digest()).decode("ascii")
    code = digest[:12]
    return f"{code[:4]}-{code[4:8]}-{code[8:12]}"


def receipt_statement(packet_id: str, station_id: str, created_at: int) -> bytes:
    """The bytes the station signs for a receipt (domain-separated; no PII)."""
    return f"enrollment-station/receipt/1\n{packet_id}\n{station_id}\n{created_at}".encode("ascii")


def make_receipt(
    packet_id: str,
    station_id: str,
    created_at: int,
    purpose: str,
    sign: Callable[[bytes], bytes],
) -> Receipt:
    """Build the receipt; ``sign`` is the station's signature (ECDSA P-256 with its identity key)."""
    signature = sign(receipt_statement(packet_id, station_id, created_at))
    sig_b64 = base64.urlsafe_b64encode(signature).decode("ascii").rstrip("=")
    payload = f"ES1|{packet_id}|{station_id}|{created_at}|{sig_b64}"
    return Receipt(
        packet_id=packet_id,
        tracking_number=tracking_number(packet_id),
        station_id=station_id,
        created_at=created_at,
        purpose=purpose,
        signature=signature,
        qr_payload=payload,
    )


def parse_qr_payload(payload: str) -> tuple[str, str, int, bytes]:
    """(packet id, station id, created_at, signature) from a receipt's QR text."""
    parts = payload.split("|")
    if len(parts) != 5 or parts[0] != "ES1":
        raise WizardError("This QR code is not an enrollment receipt.", code="receipt.bad_qr")
    sig = base64.urlsafe_b64decode(parts[4] + "=" * (-len(parts[4]) % 4))
    return parts[1], parts[2], int(parts[3]), sig


@dataclass
class _FingerState:
    attempts: int = 0
    best: FingerCapture | None = None


@dataclass
class Wizard:
    """One citizen's enrollment in progress. Holds PII until :meth:`clear`."""

    operator_id: str
    station_id: str
    purpose: str
    today: dt.date | None = None
    policy: Policy = field(default_factory=lambda: BUILTIN)
    step: Step = Step.KIND_CONSENT
    values: dict[str, Any] = field(default_factory=dict)
    face: FaceCapture | None = None
    fingers: dict[FingerPosition, FingerCapture | FingerException] = field(default_factory=dict)
    receipt: Receipt | None = None
    commit_error: StationError | None = None
    _finger_state: dict[FingerPosition, _FingerState] = field(default_factory=dict)
    _editing: bool = False

    def __post_init__(self) -> None:
        self.values.setdefault("purpose", self.purpose)
        for name, value in self._preset().items():
            self.values.setdefault(name, value)

    def _preset(self) -> dict[str, str]:
        """The station's own district, tehsil and union council, preselected from central's registry."""
        place = self.policy.place_of(self.station_id)
        if place is None:
            return {}
        return {"district": place.district, "tehsil": place.tehsil, "union_council": place.union_council}

    # -- the policy --------------------------------------------------------------------------------
    @property
    def min_quality(self) -> int:
        """The finger quality a capture must reach (the policy's fingers threshold)."""
        return self.policy.fingers.threshold

    @property
    def max_attempts(self) -> int:
        """Captures per finger before the operator records an exception or keeps the best."""
        return self.policy.fingers.attempts

    @property
    def keep_best_allowed(self) -> bool:
        """Whether the policy lets a finger that never reached the threshold be kept (with approval)."""
        return self.policy.fingers.override.allowed

    def kind(self) -> ApplicationKind | None:
        kind = self._typed("kind", self.values.get("kind"))
        return kind if isinstance(kind, ApplicationKind) and kind in self.policy.kinds else None

    def band(self) -> AgeBand | None:
        """The citizen's age band (known once the kind and a valid date of birth are)."""
        kind = self.kind()
        born = parse_date(self.values.get("date_of_birth"))
        if kind is None or born is None or self.check("date_of_birth") is not None:
            return None
        return self.policy.band(kind, age_on(born, self.today or dt.date.today()))

    def purpose_text(self) -> Text | None:
        """The purpose label read out to the citizen for the chosen kind (English and Urdu)."""
        kind = self.kind()
        return self.policy.rules(kind).purpose if kind is not None else None

    def consent_text(self) -> Text | None:
        kind = self.kind()
        return self.policy.rules(kind).consent if kind is not None else None

    def offered_kinds(self) -> list[ApplicationKind]:
        return [k for k in ApplicationKind if k in self.policy.kinds]

    def place_choices(self, name: str) -> list[str]:
        """The names the policy lists for ``district``, ``tehsil`` (of the district chosen) or
        ``union_council`` (of the tehsil chosen); empty when the policy has no lists (typed freely)."""
        if name == "district":
            return [d.en for d in self.policy.locations]
        district = self.policy.district(str(self.values.get("district", "")).strip())
        if district is None:
            return []
        if name == "tehsil":
            return [t.en for t in district.children]
        tehsil = district.child(str(self.values.get("tehsil", "")).strip())
        return [u.en for u in tehsil.children] if tehsil is not None and name == "union_council" else []

    def needs(self, step: Step) -> bool:
        """Whether ``step`` is part of this enrollment (face and fingers depend on the age band)."""
        band = self.band()
        if band is None:
            return True
        if step is Step.FACE:
            return band.face is not Requirement.NOT_TAKEN
        if step is Step.FINGERS:
            return band.fingers is not Requirement.NOT_TAKEN
        return True

    def face_accepted(self, passed: int, total: int) -> bool:
        """Whether a photo with ``passed`` of ``total`` face checks passing reaches the threshold."""
        return total > 0 and passed * 100 >= self.policy.face.threshold * total

    # -- fields ------------------------------------------------------------------------------------
    def set(self, name: str, value: Any) -> Problem | None:
        """Set one field as typed and check it (inline validation). Returns its problem or None."""
        if name not in ALL_FIELDS:
            raise WizardError(f"unknown field {name!r}", code="wizard.unknown_field")
        self._require_editable()
        self.values[name] = value
        if name == "kind":
            text = self.purpose_text()
            if text is not None:
                self.values["purpose"] = text.en
        return self.check(name)

    def get(self, name: str, default: Any = "") -> Any:
        return self.values.get(name, default)

    def dependents(self, name: str) -> tuple[str, ...]:
        """Fields to re-check when ``name`` changes (e.g. the CNIC's parity when the gender changes)."""
        return _DEPENDENTS.get(name, ())

    def check(self, name: str) -> Problem | None:
        value = self._typed(name, self.values.get(name))
        return validate_field(
            name, value, record=self._partial_record(name), today=self.today, policy=self.policy
        )

    def problems(self, step: Step | None = None) -> list[Problem]:
        """What blocks leaving ``step`` (default: the current one)."""
        step = self.step if step is None else step
        if step is Step.KIND_CONSENT:
            return [p for n in CONSENT_FIELDS if (p := self.check(n)) is not None]
        if step is Step.DEMOGRAPHICS:
            return [p for n in DEMOGRAPHIC_FIELDS if (p := self.check(n)) is not None]
        band = self.band()
        if step is Step.FACE:
            if self.face is None and (band is None or band.face is Requirement.REQUIRED):
                return [
                    Problem(
                        "face",
                        "face.missing",
                        "The photograph is missing: take the citizen's photograph.",
                        "تصویر موجود نہیں: شہری کی تصویر لیں۔",
                    )
                ]
            return []
        if step is Step.FINGERS:
            if band is not None and band.fingers is not Requirement.REQUIRED:
                return []
            return [
                Problem(
                    f"finger.{int(pos)}",
                    "finger.missing",
                    f"{pos.en}: capture it, or record why it cannot be captured.",
                    f"{pos.ur}: نشان لیں، یا وجہ درج کریں کہ کیوں نہیں لیا جا سکتا۔",
                )
                for pos in FingerPosition
                if pos not in self.fingers
            ]
        if step is Step.REVIEW:
            return validate(self.build(), self.today, self.policy)
        return []

    def _typed(self, name: str, value: Any) -> Any:
        if name == "cnic" or name == "parent_cnic":
            return normalise_cnic(value) if isinstance(value, str) else value
        if name in ("kind", "gender"):
            enum_type: type[ApplicationKind] | type[Gender] = ApplicationKind if name == "kind" else Gender
            if isinstance(value, str):
                try:
                    return enum_type(value)
                except ValueError:
                    return value
        if name in ("name_en", "father_or_husband_name_en") and isinstance(value, str):
            return " ".join(value.split())
        return value

    def _partial_record(self, name: str) -> Demographics | None:
        """A record for the cross-field checks, when the other field it needs is known and valid."""
        if name == "cnic":
            gender = self._typed("gender", self.values.get("gender"))
            if not isinstance(gender, Gender):
                return None
            return self._stand_in(gender=gender)
        if name == "parent_cnic":
            cnic = self._typed("cnic", self.values.get("cnic"))
            return self._stand_in(cnic=cnic) if isinstance(cnic, str) and cnic else None
        if name == "date_of_birth":
            kind = self._typed("kind", self.values.get("kind"))
            return self._stand_in(kind=kind) if isinstance(kind, ApplicationKind) else None
        if name in ("tehsil", "union_council"):
            district, tehsil = self.values.get("district"), self.values.get("tehsil")
            return self._stand_in(
                district=district.strip() if isinstance(district, str) else "",
                tehsil=tehsil.strip() if isinstance(tehsil, str) else "",
            )
        return None

    @staticmethod
    def _stand_in(
        *,
        gender: Gender = Gender.TRANSGENDER,
        cnic: str = "",
        kind: ApplicationKind = ApplicationKind.NEW,
        district: str = "",
        tehsil: str = "",
    ) -> Demographics:
        return Demographics(
            kind=kind,
            name_ur="",
            name_en="",
            father_or_husband_name_ur="",
            father_or_husband_name_en="",
            cnic=cnic,
            parent_cnic="",
            date_of_birth=dt.date(2000, 1, 1),
            gender=gender,
            present_address_ur="",
            present_address_en="",
            permanent_address_ur="",
            permanent_address_en="",
            district=district,
            tehsil=tehsil,
            union_council="",
            mobile="",
            purpose="",
            consent=False,
        )

    # -- navigation --------------------------------------------------------------------------------
    def advance(self) -> Step:
        """Go to the next step, or raise :class:`StepBlocked` naming what to fix."""
        if self.step >= Step.REVIEW:
            raise WizardError("Use commit from the review step.", code="wizard.order")
        problems = self.problems()
        if problems:
            raise StepBlocked(problems)
        if self.step is Step.DEMOGRAPHICS:
            self._forget_not_taken()
        if self._editing and not any(self.problems(Step(s)) for s in range(self.step + 1, Step.REVIEW)):
            self._editing = False
            self.step = Step.REVIEW
        else:
            self.step = Step(self.step + 1)
            while self.step < Step.REVIEW and not self.needs(self.step):
                self.step = Step(self.step + 1)
        return self.step

    def _forget_not_taken(self) -> None:
        """Captures of a modality the citizen's band does not take are not kept (nor sealed)."""
        band = self.band()
        if band is None:
            return
        if band.face is Requirement.NOT_TAKEN:
            self.face = None
        if band.fingers is Requirement.NOT_TAKEN:
            self.fingers = {}
            self._finger_state = {}

    def back(self) -> Step:
        if self.step in (Step.COMMIT, Step.RECEIPT):
            raise WizardError("The enrollment is committed: it cannot be changed.", code="wizard.order")
        if self.step > Step.KIND_CONSENT:
            self.step = Step(self.step - 1)
            while self.step > Step.KIND_CONSENT and not self.needs(self.step):
                self.step = Step(self.step - 1)
        return self.step

    def edit(self, step: Step) -> Step:
        """From REVIEW, go back to an earlier step to change it."""
        if self.step is not Step.REVIEW or step >= Step.REVIEW:
            raise WizardError("Only the review step can jump back to edit.", code="wizard.order")
        self._editing = True
        self.step = step
        return self.step

    def _require_editable(self) -> None:
        if self.step in (Step.COMMIT, Step.RECEIPT):
            raise WizardError("The enrollment is committed: it cannot be changed.", code="wizard.order")

    # -- face --------------------------------------------------------------------------------------
    def set_face(self, jpeg: bytes, checks: dict[str, Any]) -> None:
        self._require_editable()
        if not jpeg.startswith(b"\xff\xd8"):
            raise WizardError("The photograph is not a JPEG image: take it again.", code="face.format")
        self.face = FaceCapture(jpeg=jpeg, checks=dict(checks))

    def clear_face(self) -> None:
        self._require_editable()
        self.face = None

    # -- fingers -----------------------------------------------------------------------------------
    def current_finger(self) -> FingerPosition | None:
        """The first position with neither a capture nor an exception."""
        return next((p for p in FingerPosition if p not in self.fingers), None)

    def attempts(self, position: FingerPosition) -> int:
        return self._finger_state.get(position, _FingerState()).attempts

    def best_attempt(self, position: FingerPosition) -> FingerCapture | None:
        return self._finger_state.get(position, _FingerState()).best

    def finger_attempt(self, position: FingerPosition, wsq: bytes, quality: int) -> FingerOutcome:
        """Record one capture of ``position``; it is kept when its quality reaches ``min_quality``."""
        self._require_editable()
        if position in self.fingers:
            raise WizardError(f"{position.en} is already done: retake it first.", code="finger.done")
        if not 0 <= quality <= 100 or not wsq:
            raise WizardError("The capture is damaged: capture the finger again.", code="finger.invalid")
        state = self._finger_state.setdefault(position, _FingerState())
        if state.attempts >= self.max_attempts:
            raise WizardError(
                f"{position.en}: no attempts left; record an exception.", code="finger.no_attempts"
            )
        state.attempts += 1
        capture = FingerCapture(position=position, wsq=wsq, quality=quality, attempts=state.attempts)
        if state.best is None or quality > state.best.quality:
            state.best = capture
        accepted = quality >= self.min_quality
        if accepted:
            self.fingers[position] = FingerCapture(
                position, state.best.wsq, state.best.quality, state.attempts
            )
        return FingerOutcome(
            position=position,
            accepted=accepted,
            quality=quality,
            attempts=state.attempts,
            attempts_left=self.max_attempts - state.attempts,
        )

    def keep_best(self, position: FingerPosition) -> FingerCapture:
        """After the last attempt, keep the best (low-quality) capture instead of an exception."""
        self._require_editable()
        state = self._finger_state.get(position)
        if state is None or state.best is None or state.attempts < self.max_attempts:
            raise WizardError(f"{position.en}: capture it first.", code="finger.no_capture")
        if not self.keep_best_allowed:
            raise WizardError(
                f"{position.en}: the policy does not allow keeping a capture below the threshold;"
                " record why it cannot be captured.",
                urdu=f"{position.ur}: پالیسی کم معیار کا نشان رکھنے کی اجازت نہیں دیتی؛ وجہ درج کریں۔",
                code="finger.keep_not_allowed",
            )
        capture = FingerCapture(position, state.best.wsq, state.best.quality, state.attempts)
        self.fingers[position] = capture
        return capture

    def set_exception(
        self, position: FingerPosition, reason: FingerExceptionReason, note: str = ""
    ) -> FingerException:
        """Record why ``position`` cannot be captured (amputated, injured, ...)."""
        self._require_editable()
        if reason is FingerExceptionReason.OTHER and not note.strip():
            raise WizardError(
                "Write a short note for 'Other'.", urdu="'دیگر' کے لیے مختصر وضاحت لکھیں۔", code="finger.note"
            )
        exc = FingerException(position=position, reason=reason, note=note.strip())
        self.fingers[position] = exc
        return exc

    def retake(self, position: FingerPosition) -> None:
        """Forget a finger's captures and exception, and give it its attempts back."""
        self._require_editable()
        self.fingers.pop(position, None)
        self._finger_state.pop(position, None)

    # -- review and commit -------------------------------------------------------------------------
    def demographics(self) -> Demographics:
        """The typed record; raises :class:`StepBlocked` when a field does not pass."""
        problems = self.problems(Step.KIND_CONSENT) + self.problems(Step.DEMOGRAPHICS)
        if problems:
            raise StepBlocked(problems)
        v = {n: self._typed(n, self.values.get(n)) for n in ALL_FIELDS}
        dob = parse_date(v["date_of_birth"])
        assert dob is not None  # checked above
        v["date_of_birth"] = dob
        v["mobile"] = normalise_mobile(v["mobile"]) or v["mobile"]
        for name in ALL_FIELDS:
            if isinstance(v[name], str):
                v[name] = v[name].strip()
        return Demographics(**v)

    def build(self) -> Enrollment:
        return Enrollment(
            demographics=self.demographics(),
            face=self.face,
            fingers=dict(self.fingers),
            operator_id=self.operator_id,
            station_id=self.station_id,
            policy_version=self.policy.version,
        )

    def begin_commit(self) -> Enrollment:
        """REVIEW -> COMMIT: the complete, valid record the caller seals off the GUI thread."""
        if self.step is not Step.REVIEW:
            raise WizardError("Commit only from the review step.", code="wizard.order")
        enrollment = self.build()
        problems = validate(enrollment, self.today, self.policy)
        if problems:
            raise StepBlocked(problems)
        self.commit_error = None
        self.step = Step.COMMIT
        return enrollment

    def committed(self, receipt: Receipt) -> None:
        """COMMIT -> RECEIPT. The sealed packet holds the data now: forget the plaintext."""
        if self.step is not Step.COMMIT:
            raise WizardError("Nothing is being committed.", code="wizard.order")
        self._forget()
        self.receipt = receipt
        self.step = Step.RECEIPT

    def commit_failed(self, error: StationError) -> None:
        """COMMIT -> REVIEW with the reason, so the operator can fix it or call a technician."""
        if self.step is not Step.COMMIT:
            raise WizardError("Nothing is being committed.", code="wizard.order")
        self.commit_error = error
        self.step = Step.REVIEW

    # -- PII ---------------------------------------------------------------------------------------
    @property
    def holds_pii(self) -> bool:
        preset = self._preset()
        named = {
            k: v
            for k, v in self.values.items()
            if k != "purpose" and v not in ("", None, False) and preset.get(k) != v
        }
        return bool(named or self.face or self.fingers or self._finger_state)

    def _forget(self) -> None:
        self.values = {"purpose": self.purpose, **self._preset()}
        self.face = None
        self.fingers = {}
        self._finger_state = {}
        self._editing = False

    def clear(self) -> None:
        """Forget everything about the citizen and start again (idle lock, cancel, next citizen)."""
        self._forget()
        self.receipt = None
        self.commit_error = None
        self.step = Step.KIND_CONSENT
