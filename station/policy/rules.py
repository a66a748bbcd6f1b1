"""What the policy asks of one enrollment: its age band, the captures it needs, and policy feasibility.

* :func:`band_for` finds the capture rules for an application kind and a date of birth on a day.
* :func:`check_captures` lists the :class:`~station.enrollment.validate.Problem` of an enrollment's
  face and fingers against those rules (required and missing, not taken but present, too few fingers),
  in English and Urdu. ``station.enrollment.validate`` calls it; so does the wizard, through it.
* :func:`check_feasible` refuses a policy under which some citizen it admits could never be enrolled
  (a band gap, a band that needs more fingers than the ten positions, a kind no age can apply for...).
* :func:`capture_summary` is the non-PII summary of the captures that travels in the packet's signed
  header, and :func:`check_summary` is central's check of that summary against the policy version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from station.enrollment.model import (
    ApplicationKind,
    Enrollment,
    FaceCapture,
    FingerCapture,
    FingerException,
    FingerPosition,
)
from station.enrollment.problem import Problem
from station.policy.model import AgeBand, Modality, Policy, PolicyError, Requirement


def age_on(born: dt.date, today: dt.date) -> int:
    """Whole years of age on ``today`` (the day before the 3rd birthday is still 2)."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def band_for(policy: Policy, kind: ApplicationKind, born: dt.date, today: dt.date) -> AgeBand | None:
    return policy.band(kind, age_on(born, today))


def _ltr(text: str) -> str:
    return f"\u2066{text}\u2069"


def _problem(field: str, code: str, en: str, ur: str) -> Problem:
    return Problem(field, code, en, ur)


def _ages(band: AgeBand) -> tuple[str, str]:
    """The band in words, English and Urdu."""
    if band.to_age is None:
        return f"aged {band.from_age} or more", f"{_ltr(str(band.from_age))} سال یا زیادہ عمر"
    return (
        f"aged {band.from_age} to {band.to_age - 1}",
        f"{_ltr(str(band.from_age))} سے {_ltr(str(band.to_age - 1))} سال عمر",
    )


def check_captures(
    policy: Policy,
    band: AgeBand,
    face: FaceCapture | None,
    fingers: Mapping[FingerPosition, FingerCapture | FingerException],
) -> list[Problem]:
    """Problems of the face and fingers against ``band`` (shape checks of each item stay in validate)."""
    problems: list[Problem] = []
    ages_en, ages_ur = _ages(band)
    if band.face is Requirement.REQUIRED and face is None:
        problems.append(
            _problem(
                "face",
                "face.missing",
                f"The photograph is missing: a citizen {ages_en} needs one; take the photograph.",
                f"تصویر موجود نہیں: {ages_ur} کے شہری کی تصویر ضروری ہے؛ تصویر لیں۔",
            )
        )
    if band.face is Requirement.NOT_TAKEN and face is not None:
        problems.append(
            _problem(
                "face",
                "face.not_taken",
                f"No photograph is taken of a child {ages_en}: remove the photograph.",
                f"{ages_ur} کے بچے کی تصویر نہیں لی جاتی: تصویر ہٹا دیں۔",
            )
        )
    captured = sum(1 for v in fingers.values() if isinstance(v, FingerCapture))
    if band.fingers is Requirement.NOT_TAKEN and fingers:
        problems.append(
            _problem(
                "fingers",
                "fingers.not_taken",
                f"No fingerprints are taken of a child {ages_en}: remove the fingerprints.",
                f"{ages_ur} کے بچے کے انگلیوں کے نشانات نہیں لیے جاتے: نشانات ہٹا دیں۔",
            )
        )
    if band.fingers is Requirement.REQUIRED:
        if not fingers:
            problems.append(
                _problem(
                    "fingers",
                    "fingers.required",
                    f"Fingerprints are required for a citizen {ages_en}: capture all ten fingers"
                    " (or record why a finger cannot be captured).",
                    f"{ages_ur} کے شہری کے انگلیوں کے نشانات ضروری ہیں: دسوں انگلیوں کے نشانات لیں"
                    " (یا وجہ درج کریں کہ کوئی انگلی کیوں نہیں لی جا سکتی)۔",
                )
            )
        elif captured < max(1, band.min_fingers):
            need = max(1, band.min_fingers)
            problems.append(
                _problem(
                    "fingers",
                    "fingers.none" if captured == 0 else "fingers.too_few",
                    f"Only {captured} finger(s) captured: at least {need} fingerprint(s) are needed for a"
                    f" citizen {ages_en}; call a supervisor.",
                    f"صرف {_ltr(str(captured))} نشان لیے گئے: {ages_ur} کے شہری کے کم از کم"
                    f" {_ltr(str(need))} نشان ضروری ہیں؛ نگران کو بلائیں۔",
                )
            )
    return problems


def needs_all_positions(band: AgeBand) -> bool:
    """Whether each of the ten positions must be captured or excused (fingers required)."""
    return band.fingers is Requirement.REQUIRED


def check_feasible(policy: Policy) -> list[str]:
    """Why ``policy`` would make some enrollment impossible (empty: it is feasible)."""
    reasons: list[str] = []
    if not policy.kinds:
        reasons.append("no application kind is allowed: every citizen would be turned away")
    for kind, rules in policy.kinds.items():
        name = kind.value
        if rules.min_age > rules.max_age:
            reasons.append(f"kinds.{name}: min_age {rules.min_age} is over max_age {rules.max_age}")
            continue
        for age in range(rules.min_age, rules.max_age + 1):
            matching = [b for b in rules.bands if b.holds(age)]
            if not matching:
                reasons.append(f"kinds.{name}: no age band holds age {age}, so such a citizen cannot enroll")
                break
            if len(matching) > 1:
                reasons.append(
                    f"kinds.{name}: age {age} falls in {len(matching)} bands; bands must not overlap"
                )
                break
        for i, band in enumerate(rules.bands):
            where = f"kinds.{name}.bands[{i}]"
            if band.fingers is Requirement.NOT_TAKEN and band.min_fingers:
                reasons.append(f"{where}: min_fingers is {band.min_fingers} but fingers are not taken")
            if band.fingers is not Requirement.REQUIRED and band.min_fingers:
                reasons.append(f"{where}: min_fingers needs fingers to be required")
    fingers = policy.modalities.get(Modality.FINGERS)
    if fingers is not None and fingers.threshold > 0 and not fingers.override.allowed:
        # Without keep-best, a finger that never reaches the threshold must become an exception; a
        # citizen with no finger reaching it could then not give the one capture a band requires.
        needs_capture = any(b.fingers is Requirement.REQUIRED for r in policy.kinds.values() for b in r.bands)
        if needs_capture and fingers.threshold > 90:
            reasons.append(
                "modalities.fingers: a threshold over 90 with no override leaves worn prints no way through"
            )
    for modality, settings in policy.modalities.items():
        if settings.override.allowed and not settings.override.by:
            reasons.append(f"modalities.{modality.value}.override: allowed but no role may approve it")
    for sid, place in policy.station_places.items():
        if policy.locations:
            district = policy.district(place.district)
            tehsil = district.child(place.tehsil) if district else None
            if tehsil is None or tehsil.child(place.union_council) is None:
                reasons.append(f"station_places.{sid}: {place.union_council} is not in the location lists")
    return reasons


def ensure_feasible(policy: Policy) -> None:
    reasons = check_feasible(policy)
    if reasons:
        raise PolicyError(
            "The policy would make an enrollment impossible: " + "; ".join(reasons[:5]) + ". Correct it.",
            code="policy.infeasible",
        )


# -- the capture summary (signed packet header) ---------------------------------------------------
@dataclass(frozen=True)
class CaptureSummary:
    """What central can check of a packet without opening it: no PII, codes and counts only."""

    policy_version: int
    kind: str
    age_band: str
    face: bool
    fingers_captured: int
    finger_exceptions: int
    iris: int
    signoffs: int

    def to_document(self) -> dict[str, Any]:
        return {
            "policy_version": self.policy_version,
            "kind": self.kind,
            "age_band": self.age_band,
            "face": self.face,
            "fingers_captured": self.fingers_captured,
            "finger_exceptions": self.finger_exceptions,
            "iris": self.iris,
            "signoffs": self.signoffs,
        }


def capture_summary(
    policy: Policy,
    kind: ApplicationKind,
    band: AgeBand,
    face: FaceCapture | None,
    fingers: Mapping[FingerPosition, FingerCapture | FingerException],
    *,
    signoffs: int = 0,
) -> CaptureSummary:
    return CaptureSummary(
        policy_version=policy.version,
        kind=kind.value,
        age_band=band.label,
        face=face is not None,
        fingers_captured=sum(1 for v in fingers.values() if isinstance(v, FingerCapture)),
        finger_exceptions=sum(1 for v in fingers.values() if isinstance(v, FingerException)),
        iris=0,
        signoffs=signoffs,
    )


def summary_of(policy: Policy, enrollment: Enrollment, today: dt.date | None = None) -> CaptureSummary:
    """The capture summary of a valid enrollment (its band is known: validation passed)."""
    demo = enrollment.demographics
    band = band_for(policy, demo.kind, demo.date_of_birth, today or dt.date.today())
    if band is None:
        raise PolicyError("The enrollment fits no age band of the policy: correct the date of birth or kind.")
    signoffs = len(getattr(enrollment, "signoffs", ()) or ())  # supervisor sign-offs, where recorded
    return capture_summary(policy, demo.kind, band, enrollment.face, enrollment.fingers, signoffs=signoffs)


def check_summary(policy: Policy, summary: CaptureSummary) -> list[str]:
    """Central's check: does a packet with this summary satisfy ``policy`` (the version it names)?"""
    try:
        kind = ApplicationKind(summary.kind)
    except ValueError:
        return [f"unknown application kind {summary.kind[:20]!r}"]
    rules = policy.kinds.get(kind)
    if rules is None:
        return [f"the policy does not allow the kind {kind.value}"]
    band = next((b for b in rules.bands if b.label == summary.age_band), None)
    if band is None:
        return [f"no age band {summary.age_band[:10]!r} for kind {kind.value}"]
    problems: list[str] = []
    if band.face is Requirement.REQUIRED and not summary.face:
        problems.append("photograph required but missing")
    if band.face is Requirement.NOT_TAKEN and summary.face:
        problems.append("photograph taken where the policy takes none")
    total = summary.fingers_captured + summary.finger_exceptions
    if band.fingers is Requirement.NOT_TAKEN and total:
        problems.append("fingerprints taken where the policy takes none")
    if band.fingers is Requirement.REQUIRED:
        if total != len(FingerPosition):
            problems.append(f"{total} of 10 finger positions accounted for")
        if summary.fingers_captured < max(1, band.min_fingers):
            problems.append(
                f"{summary.fingers_captured} finger(s) captured, {max(1, band.min_fingers)} needed"
            )
    if band.iris is Requirement.REQUIRED and not summary.iris:
        problems.append("iris required but missing")
    return problems
