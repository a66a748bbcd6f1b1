"""The policy document: what an enrollment needs, per application kind and age band, and central's settings.

Central writes it, signs it (``station/policy/bundle.py``) and sends it to every station; the station,
its kiosk, ``station enroll`` and central's packet check all read the same :class:`Policy`. Versions
only go up; the station's built-in default (``station/policy/default.py``) is version 0.

The document is plain data (str, int, bool, None, lists, str-keyed maps) so it is the same in JSON
(``central policy set FILE``) and in canonical CBOR (the signed bundle)::

    {"format": "policy/1", "version": 7,
     "kinds": {"juvenile": {"min_age": 0, "max_age": 17,
                            "purpose": {"en": ..., "ur": ...}, "consent": {"en": ..., "ur": ...},
                            "bands": [{"from_age": 0, "to_age": 3, "face": "not_taken",
                                       "fingers": "not_taken", "min_fingers": 0, "iris": "not_taken"},
                                      ...]},
               ...},
     "modalities": {"face": {"threshold": 100, "attempts": 3, "override": {"allowed": true,
                                                                         "by": ["supervisor"]}},
                    "fingers": {"threshold": 40, "attempts": 3, "override": {...},
                                "signoff_exceptions": ["injured", "unusable", "other"]},
                    "iris": {...}},
     "locations": [{"en": "Lahore", "ur": "لاہور", "tehsils": [{"en": ..., "ur": ...,
                                                              "union_councils": [{"en": ..., "ur": ...}]}]}],
     "station_places": {"uc-lhr-0421-01": {"district": "Lahore", "tehsil": ..., "union_council": ...}},
     "settings": {"retention_days": 7, "idle_lock_seconds": 120, "parallel_uploads": 4,
                  "heartbeat_seconds": 60}}

Ages are whole years on the day of the enrollment; a band holds ``from_age <= age < to_age``
(``to_age`` null: no upper end). :func:`station.policy.parse.policy_from_document` is strict:
exact keys, exact types, bounded sizes; anything else raises :class:`PolicyError`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from station.enrollment.model import ApplicationKind, FingerExceptionReason
from station.errors import StationError

POLICY_FORMAT = "policy/1"
ROLES = ("operator", "supervisor", "technician")
MAX_TEXT = 2000
MAX_NAME = 80
MAX_ITEMS = 5000
MAX_AGE = 130


class PolicyError(StationError):
    """A policy document or bundle that is malformed, unsigned, older, or makes enrollment impossible."""

    code = "policy.invalid"


class Requirement(enum.StrEnum):
    """Whether a modality is taken for a band: required, optional (where available) or not taken."""

    REQUIRED = "required"
    OPTIONAL = "optional"
    NOT_TAKEN = "not_taken"


class Modality(enum.StrEnum):
    FACE = "face"
    FINGERS = "fingers"
    IRIS = "iris"


@dataclass(frozen=True)
class Text:
    """One text in English and Urdu."""

    en: str
    ur: str

    def to_document(self) -> dict[str, Any]:
        return {"en": self.en, "ur": self.ur}


@dataclass(frozen=True)
class AgeBand:
    """Capture rules for ages ``from_age <= age < to_age`` (whole years; ``to_age`` None: no end)."""

    from_age: int
    to_age: int | None
    face: Requirement
    fingers: Requirement
    min_fingers: int
    iris: Requirement

    def holds(self, age: int) -> bool:
        return self.from_age <= age and (self.to_age is None or age < self.to_age)

    def requirement(self, modality: Modality) -> Requirement:
        return {Modality.FACE: self.face, Modality.FINGERS: self.fingers, Modality.IRIS: self.iris}[modality]

    @property
    def label(self) -> str:
        """``"10-17"`` or ``"18+"``: the band as people say it (ages are whole years)."""
        return f"{self.from_age}+" if self.to_age is None else f"{self.from_age}-{self.to_age - 1}"

    def to_document(self) -> dict[str, Any]:
        return {
            "from_age": self.from_age,
            "to_age": self.to_age,
            "face": self.face.value,
            "fingers": self.fingers.value,
            "min_fingers": self.min_fingers,
            "iris": self.iris.value,
        }


@dataclass(frozen=True)
class KindRules:
    """One application kind: who may apply (ages), what is captured per band, what the citizen hears."""

    kind: ApplicationKind
    min_age: int
    max_age: int
    purpose: Text
    consent: Text
    bands: tuple[AgeBand, ...]

    def band(self, age: int) -> AgeBand | None:
        return next((b for b in self.bands if b.holds(age)), None)

    def to_document(self) -> dict[str, Any]:
        return {
            "min_age": self.min_age,
            "max_age": self.max_age,
            "purpose": self.purpose.to_document(),
            "consent": self.consent.to_document(),
            "bands": [b.to_document() for b in self.bands],
        }


@dataclass(frozen=True)
class Override:
    """Whether a capture that failed its check may be kept anyway, and which roles may approve it."""

    allowed: bool
    by: tuple[str, ...]

    def to_document(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "by": list(self.by)}


@dataclass(frozen=True)
class ModalityRules:
    """Per modality: quality threshold (0-100), attempts before "keep best", override.

    For the face the threshold is the share (percent) of the face checks that must pass; for fingers it
    is the quality score a capture must reach. ``signoff_exceptions`` (fingers only) lists the
    exception reasons that need a supervisor's sign-off.
    """

    modality: Modality
    threshold: int
    attempts: int
    override: Override
    signoff_exceptions: tuple[FingerExceptionReason, ...] = ()

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "threshold": self.threshold,
            "attempts": self.attempts,
            "override": self.override.to_document(),
        }
        if self.modality is Modality.FINGERS:
            doc["signoff_exceptions"] = [r.value for r in self.signoff_exceptions]
        return doc


@dataclass(frozen=True)
class Place:
    """A district, tehsil or union council: its English name (what the record stores) and its Urdu name."""

    en: str
    ur: str
    children: tuple[Place, ...] = ()

    def child(self, name: str) -> Place | None:
        return next((c for c in self.children if c.en == name), None)


@dataclass(frozen=True)
class StationPlace:
    district: str
    tehsil: str
    union_council: str

    def to_document(self) -> dict[str, Any]:
        return {"district": self.district, "tehsil": self.tehsil, "union_council": self.union_council}


@dataclass(frozen=True)
class StationSettings:
    """Settings central owns; a station applies them over its ``station.toml``."""

    retention_days: int = 7
    idle_lock_seconds: int = 120
    parallel_uploads: int = 4
    heartbeat_seconds: int = 60

    def to_document(self) -> dict[str, Any]:
        return {
            "retention_days": self.retention_days,
            "idle_lock_seconds": self.idle_lock_seconds,
            "parallel_uploads": self.parallel_uploads,
            "heartbeat_seconds": self.heartbeat_seconds,
        }


#: Bounds of each station setting (inclusive).
SETTING_BOUNDS: dict[str, tuple[int, int]] = {
    "retention_days": (0, 3650),
    "idle_lock_seconds": (10, 3600),
    "parallel_uploads": (1, 16),
    "heartbeat_seconds": (10, 86400),
}


@dataclass(frozen=True)
class Policy:
    version: int
    kinds: Mapping[ApplicationKind, KindRules]
    modalities: Mapping[Modality, ModalityRules]
    locations: tuple[Place, ...] = ()
    station_places: Mapping[str, StationPlace] = field(default_factory=dict)
    settings: StationSettings = field(default_factory=StationSettings)

    # -- questions the wizard, the validator and central ask --------------------------------------
    def rules(self, kind: ApplicationKind) -> KindRules:
        return self.kinds[kind]

    def band(self, kind: ApplicationKind, age: int) -> AgeBand | None:
        """The capture rules for a citizen of ``age`` whole years applying for ``kind`` (None: none)."""
        rules = self.kinds.get(kind)
        return rules.band(age) if rules is not None else None

    def modality(self, modality: Modality) -> ModalityRules:
        return self.modalities[modality]

    @property
    def fingers(self) -> ModalityRules:
        return self.modalities[Modality.FINGERS]

    @property
    def face(self) -> ModalityRules:
        return self.modalities[Modality.FACE]

    def override_allowed(self, modality: Modality, role: str) -> bool:
        """May an operator of ``role`` approve keeping a capture of ``modality`` that failed its check?"""
        rules = self.modalities[modality].override
        return rules.allowed and role in rules.by

    def exception_needs_signoff(self, reason: FingerExceptionReason) -> bool:
        return reason in self.fingers.signoff_exceptions

    def age_limits(self, kind: ApplicationKind) -> tuple[int, int]:
        rules = self.kinds[kind]
        return rules.min_age, rules.max_age

    def district(self, name: str) -> Place | None:
        return next((d for d in self.locations if d.en == name), None)

    def place_of(self, station_id: str) -> StationPlace | None:
        return self.station_places.get(station_id)

    # -- the document --------------------------------------------------------------------------
    def to_document(self) -> dict[str, Any]:
        return {
            "format": POLICY_FORMAT,
            "version": self.version,
            "kinds": {k.value: self.kinds[k].to_document() for k in ApplicationKind if k in self.kinds},
            "modalities": {m.value: self.modalities[m].to_document() for m in Modality},
            "locations": [_place_doc(p, 0) for p in self.locations],
            "station_places": {s: self.station_places[s].to_document() for s in sorted(self.station_places)},
            "settings": self.settings.to_document(),
        }


_LEVELS = ("tehsils", "union_councils")


def _place_doc(place: Place, level: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"en": place.en, "ur": place.ur}
    if level < len(_LEVELS):
        doc[_LEVELS[level]] = [_place_doc(c, level + 1) for c in place.children]
    return doc
