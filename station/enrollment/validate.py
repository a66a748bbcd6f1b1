"""Validation of enrollments: the single source of truth for every form.

The kiosk calls :func:`validate_field` as the operator types; the commit path calls
:func:`ensure_valid` on the whole record. Every :class:`Problem` names the field and says what is
wrong and what to do, in English and in Urdu. Numbers inside Urdu text are wrapped in a
left-to-right isolate (see :func:`ltr_isolate`) so a CNIC keeps its digit groups in order.

Rules worth knowing:

* CNIC ``NNNNN-NNNNNNN-N``; the first digit is the province code (1–7). The last digit is odd for
  men and even for women. NADRA issues transgender ("X") cards with either parity, so for them the
  parity is not checked. The father's or husband's CNIC is a man's, so it must end in an odd digit.
* Date of birth: a real date, not in the future, at most :data:`MAX_AGE` years ago. The age must
  fit the application kind as the policy in force says (``station.policy``; the built-in default:
  identity-card kinds need :data:`MIN_AGE` (18) or more, a juvenile card is for under-18s).
* Face and fingers: what the citizen's age band needs, from the policy (``station.policy.rules``):
  the built-in default takes no photo or fingers under 3, a photo from 3 to 10, photo and all ten
  finger positions (each captured or excused, one at least captured) from 10 and for adults.
  Every validator takes ``policy=`` (default: the built-in one); the commit path passes the station's.
* Mobile: Pakistani mobile numbers in any usual writing (``0300-1234567``, ``+92 300 1234567``,
  ``923001234567``), normalised to ``+923001234567``.
* Urdu fields: Arabic-script letters, spaces and Urdu punctuation only (addresses may hold digits).
  :func:`normalise_urdu` gives one spelling (Arabic-keyboard kaf/yeh/heh to their Urdu forms).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from station.enrollment.model import (
    ENTERED_BY,
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
from station.errors import ValidationFailed

if TYPE_CHECKING:
    from station.policy.model import Policy

# ``station.policy`` imports this package's model; it is imported here only when a check runs, so
# either package may be imported first.

MIN_AGE = 18
MAX_AGE = 130
#: Allowed age range (inclusive, in whole years) per application kind under the built-in policy.
AGE_RULES: dict[ApplicationKind, tuple[int, int]] = {
    **{kind: (MIN_AGE, MAX_AGE) for kind in ApplicationKind},
    ApplicationKind.JUVENILE: (0, MIN_AGE - 1),
}  # the built-in policy's limits (``station.policy.default``; a test keeps the two equal)


def _builtin() -> Policy:
    from station.policy.default import BUILTIN

    return BUILTIN


MAX_NAME = 60
MAX_ADDRESS = 200
MAX_PLACE = 80

LRI, PDI = "\u2066", "\u2069"
_CNIC_RE = re.compile(r"^[1-7]\d{4}-\d{7}-\d$")
_LATIN_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z .'\-]*[A-Za-z.]$")
_URDU_PUNCT = set(" ،۔.-/(),:'\"")
_DIGITS = set("0123456789۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩#")


def ltr_isolate(text: str) -> str:
    """Wrap numbers, CNICs and phone numbers for display inside right-to-left Urdu text."""
    return f"{LRI}{text}{PDI}"


def _is_arabic_letter(ch: str) -> bool:
    cp = ord(ch)
    in_block = (
        0x0600 <= cp <= 0x06FF or 0x0750 <= cp <= 0x077F or 0xFB50 <= cp <= 0xFDFF or 0xFE70 <= cp <= 0xFEFF
    )
    return in_block and unicodedata.category(ch)[0] in ("L", "M")


def _has_control(text: str) -> bool:
    """Control or format characters (line breaks, bidi overrides…), except Urdu's ZWNJ/ZWJ."""
    return any(unicodedata.category(ch)[0] == "C" and ch not in "\u200c\u200d" for ch in text)


#: Arabic-keyboard letters and digits to their Urdu forms, so one name has one spelling in the record.
_URDU_FORMS = str.maketrans(
    {
        "\u0643": "\u06a9",  # ARABIC KAF -> KEHEH (ک)
        "\u064a": "\u06cc",  # ARABIC YEH -> FARSI YEH (ی)
        "\u0649": "\u06cc",  # ALEF MAKSURA -> FARSI YEH (ی)
        "\u0647": "\u06c1",  # HEH -> HEH GOAL (ہ)
        "\u0629": "\u06c3",  # TEH MARBUTA -> TEH MARBUTA GOAL (ۃ)
        "\u0640": None,  # TATWEEL (decorative stretching) dropped
        **{chr(0x0660 + i): chr(0x06F0 + i) for i in range(10)},  # Arabic-Indic -> Urdu digits
    }
)


def normalise_urdu(text: str) -> str:
    """Urdu text in one spelling: NFC, Arabic letter variants to Urdu ones, single spaces, trimmed."""
    if not isinstance(text, str):
        return text
    out = unicodedata.normalize("NFC", text).translate(_URDU_FORMS)
    return " ".join(out.split())


def normalise_cnic(text: str) -> str:
    """``3520212345671`` or ``35202-1234567-1`` (spaces allowed) to ``35202-1234567-1``; else unchanged."""
    digits = re.sub(r"[\s\-]", "", text or "")
    if len(digits) == 13 and digits.isascii() and digits.isdigit():
        return f"{digits[:5]}-{digits[5:12]}-{digits[12]}"
    return text


def normalise_mobile(text: str) -> str | None:
    """A Pakistani mobile number as ``+923XXXXXXXXX``, or None when it is not one."""
    raw = re.sub(r"[\s\-()]", "", text or "")
    if raw.startswith("+92"):
        rest = raw[3:]
    elif raw.startswith("0092"):
        rest = raw[4:]
    elif raw.startswith("92") and len(raw) == 12:
        rest = raw[2:]
    elif raw.startswith("0"):
        rest = raw[1:]
    else:
        return None
    if len(rest) == 10 and rest.isascii() and rest.isdigit() and rest[0] == "3":
        return "+92" + rest
    return None


def check_cnic(value: str, field: str = "cnic") -> Problem | None:
    if not isinstance(value, str) or not _CNIC_RE.match(normalise_cnic(value)):
        return Problem(
            field,
            "cnic.format",
            "The CNIC must be 13 digits written as 12345-1234567-1"
            " (first digit 1-7). Check the card and type it again.",
            f"شناختی کارڈ نمبر {ltr_isolate('12345-1234567-1')} کی طرح"
            " ۱۳ ہندسوں کا ہونا چاہیے۔ کارڈ دیکھ کر دوبارہ درج کریں۔",
        )
    return None


def check_cnic_gender(cnic: str, gender: Gender) -> Problem | None:
    if check_cnic(cnic) is not None or gender is Gender.TRANSGENDER:
        return None
    last = int(normalise_cnic(cnic)[-1])
    if gender is Gender.MALE and last % 2 == 0:
        return Problem(
            "cnic",
            "cnic.gender",
            "A man's CNIC ends in an odd digit: check the CNIC and the gender.",
            "مرد کے شناختی کارڈ کا آخری ہندسہ طاق ہوتا ہے: نمبر اور جنس دوبارہ دیکھیں۔",
        )
    if gender is Gender.FEMALE and last % 2 == 1:
        return Problem(
            "cnic",
            "cnic.gender",
            "A woman's CNIC ends in an even digit: check the CNIC and the gender.",
            "عورت کے شناختی کارڈ کا آخری ہندسہ جفت ہوتا ہے: نمبر اور جنس دوبارہ دیکھیں۔",
        )
    return None


def check_parent_cnic(value: str, own_cnic: str | None = None) -> Problem | None:
    problem = check_cnic(value, "parent_cnic")
    if problem is not None:
        return Problem(
            "parent_cnic",
            "parent_cnic.format",
            "The father's or husband's CNIC must be 13 digits written as 12345-1234567-1.",
            f"والد یا شوہر کا شناختی کارڈ نمبر {ltr_isolate('12345-1234567-1')}"
            " کی طرح ۱۳ ہندسوں کا ہونا چاہیے۔",
        )
    if int(normalise_cnic(value)[-1]) % 2 == 0:
        return Problem(
            "parent_cnic",
            "parent_cnic.gender",
            "The father's or husband's CNIC must be a man's CNIC, which ends in an odd digit:"
            " check the last digit.",
            "والد یا شوہر کا شناختی کارڈ مرد کا ہونا چاہیے، جس کا آخری ہندسہ طاق ہوتا ہے:"
            " آخری ہندسہ دوبارہ دیکھیں۔",
        )
    if own_cnic is not None and normalise_cnic(value) == normalise_cnic(own_cnic):
        return Problem(
            "parent_cnic",
            "parent_cnic.same",
            "The father's or husband's CNIC cannot be the applicant's own CNIC.",
            "والد یا شوہر کا شناختی کارڈ نمبر درخواست گزار کے اپنے نمبر جیسا نہیں ہو سکتا۔",
        )
    return None


def _age(born: dt.date, today: dt.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def parse_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def age_limits(kind: ApplicationKind | None, policy: Policy | None = None) -> tuple[int, int]:
    """The (minimum, maximum) age for an application kind; identity-card limits when unknown."""
    policy = _builtin() if policy is None else policy
    if kind is None or kind not in policy.kinds:
        return (MIN_AGE, MAX_AGE)
    return policy.age_limits(kind)


def check_date_of_birth(
    value: Any,
    today: dt.date | None = None,
    *,
    min_age: int = MIN_AGE,
    max_age: int = MAX_AGE,
) -> Problem | None:
    """A real date, not in the future, not over :data:`MAX_AGE` years ago, age within the limits."""
    today = today or dt.date.today()
    born = parse_date(value)
    if born is None:
        return Problem(
            "date_of_birth",
            "dob.invalid",
            "The date of birth is not a real date: enter it as YYYY-MM-DD.",
            f"تاریخ پیدائش درست نہیں: {ltr_isolate('YYYY-MM-DD')} کی صورت میں درج کریں۔",
        )
    if born > today:
        return Problem(
            "date_of_birth",
            "dob.future",
            "The date of birth is in the future: check the year.",
            "تاریخ پیدائش مستقبل کی ہے: سال دوبارہ دیکھیں۔",
        )
    age = _age(born, today)
    if age > MAX_AGE:
        return Problem(
            "date_of_birth",
            "dob.too_old",
            f"The date of birth gives an age over {MAX_AGE}: check the year.",
            f"تاریخ پیدائش کے مطابق عمر {ltr_isolate(str(MAX_AGE))} سال سے زیادہ ہے: سال دوبارہ دیکھیں۔",
        )
    if age > max_age:
        return Problem(
            "date_of_birth",
            "dob.too_old_for_kind",
            f"The applicant is over {max_age} for this application type: a citizen aged"
            f" {max_age + 1} or more applies for an identity card; change the application type.",
            f"درخواست گزار کی عمر اس درخواست کے لیے {ltr_isolate(str(max_age))} سال سے زیادہ ہے:"
            " شناختی کارڈ کی درخواست منتخب کریں۔",
        )
    if age < min_age:
        return Problem(
            "date_of_birth",
            "dob.too_young",
            f"The applicant is under {min_age}: an identity card needs age {min_age} or more;"
            " choose a juvenile card (or register the child on a B-form).",
            f"درخواست گزار کی عمر {ltr_isolate(str(min_age))} سال سے کم ہے: نابالغ کارڈ منتخب کریں"
            " (یا بچے کا اندراج ب-فارم پر کریں)۔",
        )
    return None


def check_mobile(value: Any) -> Problem | None:
    if not isinstance(value, str) or normalise_mobile(value) is None:
        return Problem(
            "mobile",
            "mobile.format",
            "The mobile number must be a Pakistani mobile number such as 0300-1234567.",
            f"موبائل نمبر پاکستانی ہونا چاہیے، جیسے {ltr_isolate('0300-1234567')}۔",
        )
    return None


def check_urdu_text(
    value: Any, field: str, *, allow_digits: bool = False, max_len: int = MAX_NAME
) -> Problem | None:
    label_en, label_ur = FIELD_LABELS.get(field, (field, field))
    if not isinstance(value, str) or not value.strip():
        return Problem(
            field,
            "urdu.empty",
            f"{label_en} in Urdu is missing: type it with the Urdu keyboard.",
            f"{label_ur} اردو میں درج نہیں: اردو کی بورڈ سے لکھیں۔",
        )
    text = value.strip()
    if len(text) > max_len:
        return Problem(
            field,
            "urdu.too_long",
            f"{label_en} in Urdu is longer than {max_len} characters: shorten it.",
            f"{label_ur} {ltr_isolate(str(max_len))} حروف سے لمبا ہے: مختصر کریں۔",
        )
    letters = 0
    for ch in text:
        if _is_arabic_letter(ch):
            letters += 1
        elif ch in _URDU_PUNCT or ch in "\u200c\u200d" or (allow_digits and ch in _DIGITS):
            continue
        else:
            return Problem(
                field,
                "urdu.script",
                f"{label_en} in Urdu must use Urdu letters only (no English letters or symbols).",
                f"{label_ur} صرف اردو حروف میں لکھیں (انگریزی حروف یا علامات نہیں)۔",
            )
    if letters == 0:
        return Problem(
            field,
            "urdu.empty",
            f"{label_en} in Urdu has no Urdu letters: type it with the Urdu keyboard.",
            f"{label_ur} میں اردو حروف نہیں: اردو کی بورڈ سے لکھیں۔",
        )
    return None


def check_latin_name(value: Any, field: str) -> Problem | None:
    label_en, label_ur = FIELD_LABELS.get(field, (field, field))
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > MAX_NAME or len(text) < 2 or not _LATIN_NAME_RE.match(text):
        return Problem(
            field,
            "latin.name",
            f"{label_en} in English must be 2-{MAX_NAME} English letters (spaces, dots, apostrophes and"
            " hyphens allowed), as on the documents.",
            f"{label_ur} انگریزی میں ۲ سے {ltr_isolate(str(MAX_NAME))}"
            " انگریزی حروف میں لکھیں، جیسے دستاویزات پر ہے۔",
        )
    return None


def check_latin_address(value: Any, field: str) -> Problem | None:
    label_en, label_ur = FIELD_LABELS.get(field, (field, field))
    text = value.strip() if isinstance(value, str) else ""
    bad = not text or len(text) > MAX_ADDRESS or not text.isascii() or not text.isprintable()
    if bad or not any(ch.isalpha() for ch in text):
        return Problem(
            field,
            "latin.address",
            f"{label_en} in English must be 1-{MAX_ADDRESS} English letters, digits and punctuation.",
            f"{label_ur} انگریزی میں انگریزی حروف اور ہندسوں سے لکھیں۔",
        )
    return None


def check_required_text(value: Any, field: str, max_len: int = MAX_PLACE) -> Problem | None:
    label_en, label_ur = FIELD_LABELS.get(field, (field, field))
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > max_len or _has_control(text):
        return Problem(
            field,
            "required",
            f"{label_en} is required (at most {max_len} characters): choose or type it.",
            f"{label_ur} ضروری ہے: منتخب کریں یا درج کریں۔",
        )
    return None


def check_consent(value: Any) -> Problem | None:
    if value is not True:
        return Problem(
            "consent",
            "consent.missing",
            "The citizen has not given consent: read out the purpose and ask for consent before continuing.",
            "شہری نے رضامندی نہیں دی: مقصد پڑھ کر سنائیں اور آگے بڑھنے سے پہلے رضامندی لیں۔",
        )
    return None


def check_choice(value: Any, field: str, enum: type[ApplicationKind] | type[Gender]) -> Problem | None:
    label_en, label_ur = FIELD_LABELS.get(field, (field, field))
    try:
        enum(value.value if isinstance(value, enum) else value)
    except ValueError:
        return Problem(field, "choice", f"Choose the {label_en.lower()}.", f"{label_ur} منتخب کریں۔")
    return None


def check_kind(value: Any, policy: Policy) -> Problem | None:
    """A known application kind that the policy in force offers."""
    problem = check_choice(value, "kind", ApplicationKind)
    if problem is not None:
        return problem
    kind = ApplicationKind(value.value if isinstance(value, ApplicationKind) else value)
    if kind not in policy.kinds:
        return Problem(
            "kind",
            "kind.not_offered",
            f"{kind.en} applications are not taken at this counter (policy {policy.version}):"
            " choose another application type.",
            f"اس کاؤنٹر پر {kind.ur} کی درخواست نہیں لی جاتی: درخواست کی کوئی اور قسم منتخب کریں۔",
        )
    return None


def check_place(value: Any, field: str, record: Demographics | None, policy: Policy) -> Problem | None:
    """District, tehsil and union council: typed text, or one of the policy's lists when it has them."""
    problem = check_required_text(value, field)
    if problem is not None or not policy.locations:
        return problem
    label_en, label_ur = FIELD_LABELS[field]
    district = policy.district(record.district) if record is not None else None
    if field == "district":
        ok = policy.district(value.strip()) is not None
    elif district is None:
        return None  # the district's own problem is reported on the district field
    elif field == "tehsil":
        ok = district.child(value.strip()) is not None
    else:
        tehsil = district.child(record.tehsil) if record is not None else None
        if tehsil is None:
            return None
        ok = tehsil.child(value.strip()) is not None
    if ok:
        return None
    return Problem(
        field,
        "place.unknown",
        f"{label_en} must be chosen from the list (it is not one of the places this counter serves).",
        f"{label_ur} فہرست میں سے منتخب کریں۔",
    )


FIELD_LABELS: dict[str, tuple[str, str]] = {
    "kind": ("Application type", "درخواست کی قسم"),
    "name_ur": ("Name", "نام"),
    "name_en": ("Name", "نام"),
    "father_or_husband_name_ur": ("Father's or husband's name", "والد یا شوہر کا نام"),
    "father_or_husband_name_en": ("Father's or husband's name", "والد یا شوہر کا نام"),
    "cnic": ("CNIC", "شناختی کارڈ نمبر"),
    "parent_cnic": ("Father's or husband's CNIC", "والد یا شوہر کا شناختی کارڈ نمبر"),
    "date_of_birth": ("Date of birth", "تاریخ پیدائش"),
    "gender": ("Gender", "جنس"),
    "present_address_ur": ("Present address", "موجودہ پتہ"),
    "present_address_en": ("Present address", "موجودہ پتہ"),
    "permanent_address_ur": ("Permanent address", "مستقل پتہ"),
    "permanent_address_en": ("Permanent address", "مستقل پتہ"),
    "district": ("District", "ضلع"),
    "tehsil": ("Tehsil", "تحصیل"),
    "union_council": ("Union council", "یونین کونسل"),
    "mobile": ("Mobile number", "موبائل نمبر"),
    "purpose": ("Purpose", "مقصد"),
    "consent": ("Consent", "رضامندی"),
}


def validate_field(
    field: str,
    value: Any,
    *,
    record: Demographics | None = None,
    today: dt.date | None = None,
    policy: Policy | None = None,
) -> Problem | None:
    """Check one demographic field as typed; ``record`` gives the other fields cross-checks need."""
    policy = _builtin() if policy is None else policy
    if field == "kind":
        return check_kind(value, policy)
    if field == "gender":
        return check_choice(value, field, Gender)
    if field in ("name_ur", "father_or_husband_name_ur"):
        return check_urdu_text(value, field)
    if field in ("present_address_ur", "permanent_address_ur"):
        return check_urdu_text(value, field, allow_digits=True, max_len=MAX_ADDRESS)
    if field in ("name_en", "father_or_husband_name_en"):
        return check_latin_name(value, field)
    if field in ("present_address_en", "permanent_address_en"):
        return check_latin_address(value, field)
    if field == "cnic":
        problem = check_cnic(value)
        if problem is None and record is not None:
            problem = check_cnic_gender(value, record.gender)
        return problem
    if field == "parent_cnic":
        return check_parent_cnic(value, record.cnic if record is not None else None)
    if field == "date_of_birth":
        low, high = age_limits(record.kind if record is not None else None, policy)
        return check_date_of_birth(value, today, min_age=low, max_age=high)
    if field == "mobile":
        return check_mobile(value)
    if field in ("district", "tehsil", "union_council"):
        return check_place(value, field, record, policy)
    if field == "purpose":
        return check_required_text(value, field, max_len=300)
    if field == "consent":
        return check_consent(value)
    raise KeyError(f"unknown enrollment field {field!r}")


def validate_demographics(
    d: Demographics, today: dt.date | None = None, policy: Policy | None = None
) -> list[Problem]:
    problems: list[Problem] = []
    for f in fields(Demographics):
        problem = validate_field(f.name, getattr(d, f.name), record=d, today=today, policy=policy)
        if problem is not None:
            problems.append(problem)
    return problems


def check_face(face: FaceCapture | None) -> Problem | None:
    """A photograph is present and is a JPEG."""
    if face is None or not face.jpeg.startswith(b"\xff\xd8"):
        return Problem(
            "face",
            "face.missing",
            "The photograph is missing: take the citizen's photograph.",
            "تصویر موجود نہیں: شہری کی تصویر لیں۔",
        )
    return None


def check_finger(position: FingerPosition, item: FingerCapture | FingerException | None) -> Problem | None:
    """One finger position: captured (WSQ, quality 0-100, 1+ attempts) or an exception with a reason."""
    field = f"finger.{int(position)}"
    if item is None:
        return Problem(
            field,
            "finger.missing",
            f"{position.en}: capture it, or record why it cannot be captured.",
            f"{position.ur}: نشان لیں، یا وجہ درج کریں کہ کیوں نہیں لیا جا سکتا۔",
        )
    if item.position != position:
        return Problem(
            field,
            "finger.position",
            f"{position.en}: the entry belongs to another finger; capture this finger again.",
            f"{position.ur}: یہ اندراج کسی اور انگلی کا ہے؛ اس انگلی کا نشان دوبارہ لیں۔",
        )
    if isinstance(item, FingerCapture):
        quality_ok = isinstance(item.quality, int) and 0 <= item.quality <= 100
        if not item.wsq or not quality_ok or item.attempts < 1:
            return Problem(
                field,
                "finger.invalid",
                f"{position.en}: the capture is damaged; capture it again.",
                f"{position.ur}: نشان خراب ہے؛ دوبارہ لیں۔",
            )
    elif not isinstance(item.reason, FingerExceptionReason):
        return Problem(
            field,
            "finger.reason",
            f"{position.en}: choose why this finger cannot be captured.",
            f"{position.ur}: وجہ منتخب کریں کہ یہ نشان کیوں نہیں لیا جا سکتا۔",
        )
    return None


def check_fingers(fingers: Mapping[FingerPosition, FingerCapture | FingerException]) -> list[Problem]:
    """All ten positions accounted for (a capture or an exception each), at least one captured."""
    problems: list[Problem] = []
    for position in FingerPosition:
        problem = check_finger(position, fingers.get(position))
        if problem is not None:
            problems.append(problem)
    if not any(isinstance(v, FingerCapture) for v in fingers.values()):
        problems.append(
            Problem(
                "fingers",
                "fingers.none",
                "No finger was captured: at least one fingerprint is needed; call a supervisor.",
                "کوئی نشان نہیں لیا گیا: کم از کم ایک انگلی کا نشان ضروری ہے؛ نگران کو بلائیں۔",
            )
        )
    return problems


def check_biometrics(
    demographics: Demographics,
    face: FaceCapture | None,
    fingers: Mapping[FingerPosition, FingerCapture | FingerException],
    today: dt.date | None = None,
    policy: Policy | None = None,
) -> list[Problem]:
    """The face and fingers against the age band of the policy (each item's shape checked as well)."""
    policy = _builtin() if policy is None else policy
    today = today or dt.date.today()
    born = parse_date(demographics.date_of_birth)
    kind = demographics.kind if isinstance(demographics.kind, ApplicationKind) else None
    from station.policy.model import Requirement
    from station.policy.rules import check_captures

    band = policy.band(kind, _age(born, today)) if born is not None and kind is not None else None
    if band is None:
        return []  # the kind or the date of birth is wrong: that problem is reported on its field
    problems: list[Problem] = []
    if face is not None:
        face_problem = check_face(face)
        if face_problem is not None:
            problems.append(face_problem)
    if band.fingers is Requirement.REQUIRED and fingers:
        for position in FingerPosition:
            problem = check_finger(position, fingers.get(position))
            if problem is not None:
                problems.append(problem)
    elif band.fingers is Requirement.OPTIONAL:
        for position in sorted(fingers):
            problem = check_finger(position, fingers[position])
            if problem is not None:
                problems.append(problem)
    problems.extend(check_captures(policy, band, face, fingers))
    return problems


def validate(
    enrollment: Enrollment, today: dt.date | None = None, policy: Policy | None = None
) -> list[Problem]:
    """Every problem with a whole enrollment (demographics, face, fingers as its age band needs, ids)."""
    problems = validate_demographics(enrollment.demographics, today, policy)
    problems.extend(
        check_biometrics(enrollment.demographics, enrollment.face, enrollment.fingers, today, policy)
    )
    if not enrollment.operator_id.strip():
        problems.append(
            Problem(
                "operator_id",
                "required",
                "No operator is signed in for this enrollment: sign in again and repeat the commit.",
                "اس اندراج کے لیے کوئی آپریٹر سائن اِن نہیں: دوبارہ سائن اِن کر کے محفوظ کریں۔",
            )
        )
    if enrollment.entered_by not in ENTERED_BY:
        problems.append(
            Problem(
                "entered_by",
                "unknown",
                f"entered_by must be one of {', '.join(ENTERED_BY)}.",
                "اندراج کرنے والے کی قسم درست نہیں۔",
            )
        )
    if not enrollment.station_id.strip():
        problems.append(
            Problem(
                "station_id",
                "required",
                "The station has no station id: run 'station init' or ask the technician.",
                "اسٹیشن کی شناخت موجود نہیں: تکنیکی عملے سے رابطہ کریں۔",
            )
        )
    return problems


def ensure_valid(enrollment: Enrollment, today: dt.date | None = None, policy: Policy | None = None) -> None:
    problems = validate(enrollment, today, policy)
    if problems:
        fields_list = ", ".join(p.field for p in problems)
        raise ValidationFailed(
            f"The enrollment has {len(problems)} problem(s) in: {fields_list}. Correct them and try again.",
            urdu="اندراج میں غلطیاں ہیں: درست کر کے دوبارہ کوشش کریں۔",
            problems=list(problems),
        )
