"""The built-in policy (version 0): what a station that has never heard from central enforces.

It follows the authority's rules: identity-card kinds (18 and over) take the face and all ten finger
positions (each captured or recorded as an exception, at least one captured); the juvenile kind (0-17)
follows the 2025 child-registration bands: no biometrics or photo under 3, a photo (and iris where
available) from 3 to 10, fingerprints, photo and iris (where available) from 10 to 18. A failed check
may be kept only with a supervisor's approval; injured, unusable and "other" finger exceptions need a
supervisor's sign-off. No location lists: district, tehsil and union council are typed.
"""

from __future__ import annotations

from station.enrollment.model import ApplicationKind, FingerExceptionReason
from station.policy.model import (
    AgeBand,
    KindRules,
    Modality,
    ModalityRules,
    Override,
    Policy,
    Requirement,
    StationSettings,
    Text,
)

R, OPT, N = Requirement.REQUIRED, Requirement.OPTIONAL, Requirement.NOT_TAKEN

ADULT_MIN_AGE = 18
MAX_AGE = 130

CARD_PURPOSE = Text(
    "Issue of a national identity card: the photograph, fingerprints and details are used only to"
    " register and verify the citizen's identity.",
    "قومی شناختی کارڈ کا اجرا: تصویر، انگلیوں کے نشانات اور تفصیلات صرف شہری کی شناخت کے اندراج"
    " اور تصدیق کے لیے استعمال ہوں گی۔",
)
CARD_CONSENT = Text(
    "I agree that my photograph, fingerprints and the details I gave are recorded and sent to the"
    " registration authority for this application, and used for nothing else.",
    "میں اجازت دیتا/دیتی ہوں کہ میری تصویر، انگلیوں کے نشانات اور دی گئی تفصیلات اس درخواست کے لیے"
    " درج کر کے رجسٹریشن اتھارٹی کو بھیجی جائیں، اور کسی اور کام میں استعمال نہ ہوں۔",
)
JUVENILE_PURPOSE = Text(
    "Registration of a child (juvenile card): the details, and the photograph and fingerprints the"
    " child's age calls for, are used only to register the child's identity.",
    "بچے کا اندراج (نابالغ کارڈ): تفصیلات، اور عمر کے مطابق تصویر اور انگلیوں کے نشانات، صرف بچے کی"
    " شناخت کے اندراج کے لیے استعمال ہوں گے۔",
)
JUVENILE_CONSENT = Text(
    "As the child's parent or guardian I agree that the child's details, and the photograph and"
    " fingerprints the child's age calls for, are recorded and sent to the registration authority.",
    "بچے کے والد/والدہ یا سرپرست کی حیثیت سے میں اجازت دیتا/دیتی ہوں کہ بچے کی تفصیلات، اور عمر کے"
    " مطابق تصویر اور نشانات، درج کر کے رجسٹریشن اتھارٹی کو بھیجے جائیں۔",
)

ADULT_BANDS = (AgeBand(ADULT_MIN_AGE, None, face=R, fingers=R, min_fingers=1, iris=N),)
#: The 2025 child-registration bands.
CHILD_BANDS = (
    AgeBand(0, 3, face=N, fingers=N, min_fingers=0, iris=N),
    AgeBand(3, 10, face=R, fingers=N, min_fingers=0, iris=OPT),
    AgeBand(10, ADULT_MIN_AGE, face=R, fingers=R, min_fingers=1, iris=OPT),
)

SUPERVISOR_ONLY = Override(allowed=True, by=("supervisor",))


def builtin_policy() -> Policy:
    """The safe default every station starts with (version 0)."""
    kinds: dict[ApplicationKind, KindRules] = {
        kind: KindRules(kind, ADULT_MIN_AGE, MAX_AGE, CARD_PURPOSE, CARD_CONSENT, ADULT_BANDS)
        for kind in ApplicationKind
        if kind is not ApplicationKind.JUVENILE
    }
    kinds[ApplicationKind.JUVENILE] = KindRules(
        ApplicationKind.JUVENILE, 0, ADULT_MIN_AGE - 1, JUVENILE_PURPOSE, JUVENILE_CONSENT, CHILD_BANDS
    )
    modalities = {
        Modality.FACE: ModalityRules(Modality.FACE, threshold=100, attempts=3, override=SUPERVISOR_ONLY),
        Modality.FINGERS: ModalityRules(
            Modality.FINGERS,
            threshold=40,
            attempts=3,
            override=SUPERVISOR_ONLY,
            signoff_exceptions=(
                FingerExceptionReason.INJURED,
                FingerExceptionReason.UNUSABLE,
                FingerExceptionReason.OTHER,
            ),
        ),
        Modality.IRIS: ModalityRules(Modality.IRIS, threshold=40, attempts=3, override=SUPERVISOR_ONLY),
    }
    return Policy(version=0, kinds=kinds, modalities=modalities, settings=StationSettings())


BUILTIN = builtin_policy()
