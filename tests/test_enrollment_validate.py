"""Enrollment validation: property tests for every validator, messages in English and Urdu."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from drivers.formats import wsq
from station.enrollment import (
    ApplicationKind,
    Demographics,
    Enrollment,
    FaceCapture,
    FingerCapture,
    FingerException,
    FingerExceptionReason,
    FingerPosition,
    Gender,
    ensure_valid,
    ltr_isolate,
    normalise_cnic,
    normalise_mobile,
    normalise_urdu,
    validate,
    validate_field,
)
from station.enrollment.example import EXAMPLE_DEMOGRAPHICS
from station.enrollment.files import demographics_from_dict
from station.enrollment.validate import (
    AGE_RULES,
    FIELD_LABELS,
    MAX_ADDRESS,
    MAX_PLACE,
    Problem,
    age_limits,
    check_choice,
    check_cnic,
    check_cnic_gender,
    check_consent,
    check_date_of_birth,
    check_face,
    check_finger,
    check_fingers,
    check_latin_address,
    check_latin_name,
    check_mobile,
    check_parent_cnic,
    check_required_text,
    check_urdu_text,
)
from station.errors import ValidationFailed

TODAY = dt.date(2026, 11, 24)
ARABIC = re.compile(r"[\u0600-\u06FF]")

digits = st.text(alphabet="0123456789", min_size=1, max_size=1)
cnics = st.builds(
    lambda p, a, b, c: f"{p}{a}-{b}-{c}",
    st.sampled_from("1234567"),
    st.text(alphabet="0123456789", min_size=4, max_size=4),
    st.text(alphabet="0123456789", min_size=7, max_size=7),
    digits,
)
urdu_letters = st.sampled_from(list("ابپتٹثجچحخدڈذرڑزژسشصضطظعغفقکگلمنوہھءیےں"))
urdu_words = st.lists(st.text(urdu_letters, min_size=1, max_size=8), min_size=1, max_size=4).map(" ".join)


def assert_bilingual(p: Problem | None, field: str) -> None:
    assert p is not None
    assert p.field == field
    assert p.en and p.ur and p.code
    assert ARABIC.search(p.ur), p.ur
    # Western digits inside Urdu text only ever appear in a left-to-right isolate.
    outside = re.sub("\u2066[^\u2069]*\u2069", "", p.ur)
    assert not re.search(r"[0-9A-Za-z]", outside), p.ur


@given(cnics)
def test_valid_cnics_accepted_in_any_writing(cnic: str) -> None:
    assert check_cnic(cnic) is None
    assert check_cnic(cnic.replace("-", "")) is None
    assert normalise_cnic(cnic.replace("-", " ")) == cnic


@given(cnics, st.integers(0, 14), st.sampled_from(["x", "", "1", "-", " ", "٣"]))
def test_mutated_cnics_refused(cnic: str, pos: int, junk: str) -> None:
    bad = cnic[:pos] + junk + cnic[pos + 1 :] if junk else cnic[:pos] + cnic[pos + 1 :]
    if re.fullmatch(r"[1-7]\d{12}", re.sub(r"[\s-]", "", bad)):
        # Still 13 digits with a valid province code: separators are free, so this is a CNIC.
        assert check_cnic(bad) is None
        return
    assert_bilingual(check_cnic(bad), "cnic")


@given(st.text(max_size=20))
def test_cnic_never_raises(text: str) -> None:
    check_cnic(text)
    normalise_cnic(text)


@given(cnics)
def test_gender_parity(cnic: str) -> None:
    odd = int(cnic[-1]) % 2 == 1
    assert (check_cnic_gender(cnic, Gender.MALE) is None) == odd
    assert (check_cnic_gender(cnic, Gender.FEMALE) is None) == (not odd)
    assert check_cnic_gender(cnic, Gender.TRANSGENDER) is None
    p = check_cnic_gender(cnic, Gender.FEMALE if odd else Gender.MALE)
    assert_bilingual(p, "cnic")


@given(cnics, cnics)
def test_parent_cnic(own: str, parent: str) -> None:
    p = check_parent_cnic(parent, own)
    if int(parent[-1]) % 2 == 0:
        assert_bilingual(p, "parent_cnic")
        assert p is not None and p.code == "parent_cnic.gender"
    elif parent == own:
        assert_bilingual(p, "parent_cnic")
        assert p is not None and p.code == "parent_cnic.same"
    else:
        assert p is None
    assert_bilingual(check_parent_cnic(parent[:-1], own), "parent_cnic")


@given(st.dates(min_value=dt.date(1897, 1, 1), max_value=dt.date(2030, 12, 31)))
def test_date_of_birth(born: dt.date) -> None:
    p = check_date_of_birth(born, TODAY)
    age = TODAY.year - born.year - ((TODAY.month, TODAY.day) < (born.month, born.day))
    if born > TODAY:
        assert p is not None and p.code == "dob.future"
    elif age > 130:
        assert p is not None and p.code == "dob.too_old"
    elif age < 18:
        assert p is not None and p.code == "dob.too_young"
    else:
        assert p is None
    assert check_date_of_birth(born.isoformat(), TODAY) == p


@pytest.mark.parametrize("text", ["2001-02-29", "1990-13-01", "14/05/1990", "", "yesterday"])
def test_impossible_dates(text: str) -> None:
    p = check_date_of_birth(text, TODAY)
    assert_bilingual(p, "date_of_birth")
    assert p is not None and p.code == "dob.invalid"


@given(
    st.text(alphabet="0123456789", min_size=9, max_size=9),
    st.sampled_from(["0{}", "+92{}", "92{}", "0092{}"]),
)
def test_mobiles_normalise(rest: str, fmt: str) -> None:
    number = "3" + rest
    written = fmt.format(number)
    assert check_mobile(written) is None
    assert normalise_mobile(written) == "+92" + number
    assert normalise_mobile(f"0{number[:3]}-{number[3:]}") == "+92" + number


@given(st.text(max_size=16))
def test_mobile_refusals(text: str) -> None:
    p = check_mobile(text)
    if normalise_mobile(text) is None:
        assert_bilingual(p, "mobile")
    else:
        assert p is None and normalise_mobile(text) is not None


@given(urdu_words)
def test_urdu_names_accepted(name: str) -> None:
    assert check_urdu_text(name, "name_ur") is None


@given(urdu_words, st.sampled_from(list("abcXYZ@!$%&*_=1")))
def test_latin_or_symbols_in_urdu_refused(name: str, bad: str) -> None:
    assert_bilingual(check_urdu_text(name + bad, "name_ur"), "name_ur")


def test_urdu_address_allows_digits_but_names_do_not() -> None:
    assert check_urdu_text("مکان ۱۲، گلی 4", "present_address_ur", allow_digits=True, max_len=200) is None
    assert check_urdu_text("احمد ۱۲", "name_ur") is not None


@given(st.from_regex(r"[A-Z][a-z]{1,10}( [A-Z][a-z]{1,10}){0,2}", fullmatch=True))
def test_latin_names(name: str) -> None:
    assert check_latin_name(name, "name_en") is None
    assert_bilingual(check_latin_name(name + "7", "name_en"), "name_en")
    assert_bilingual(check_latin_name("احمد", "name_en"), "name_en")


def test_every_field_has_labels_and_validate_field_knows_it() -> None:
    for field in FIELD_LABELS:
        p = validate_field(field, None if field != "consent" else False, today=TODAY)
        assert_bilingual(p, field)
    with pytest.raises(KeyError):
        validate_field("nonsense", "x")


def test_numbers_in_urdu_messages_are_ltr_isolated() -> None:
    p = check_cnic("12")
    assert p is not None and "\u2066" in p.ur and "\u2069" in p.ur


@settings(max_examples=50)
@given(st.dictionaries(st.sampled_from(list(FIELD_LABELS)), st.text(max_size=30), max_size=6))
def test_validate_field_never_raises_on_text(values: dict[str, str]) -> None:
    for field, value in values.items():
        validate_field(field, value, today=TODAY)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60)
@given(st.sampled_from(list(FIELD_LABELS)), json_values)
def test_validate_field_never_raises_on_any_value(field: str, value: Any) -> None:
    p = validate_field(field, value, today=TODAY)
    if p is not None:
        assert_bilingual(p, field)


printable_ascii = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@given(st.text(alphabet="ABCxyz", min_size=1, max_size=5), printable_ascii)
def test_latin_addresses(letters: str, rest: str) -> None:
    good = f"House 12, {letters} {rest}"
    assert check_latin_address(good, "present_address_en") is None
    assert_bilingual(check_latin_address(good + " لاہور", "present_address_en"), "present_address_en")
    assert_bilingual(check_latin_address(good + "\x07", "present_address_en"), "present_address_en")
    assert_bilingual(check_latin_address("x" * (MAX_ADDRESS + 1), "present_address_en"), "present_address_en")
    assert_bilingual(check_latin_address("12 / 4", "present_address_en"), "present_address_en")


@given(
    st.sampled_from(["district", "tehsil", "union_council"]),
    st.text(alphabet=st.characters(categories=["L", "N", "Zs"]), min_size=1, max_size=MAX_PLACE),
)
def test_places_required(field: str, text: str) -> None:
    p = validate_field(field, text, today=TODAY)
    if text.strip():
        assert p is None
    else:
        assert_bilingual(p, field)
    assert_bilingual(validate_field(field, "", today=TODAY), field)
    assert_bilingual(validate_field(field, "a" * (MAX_PLACE + 1), today=TODAY), field)
    assert_bilingual(check_required_text(text + "\n" + text, field), field)


@given(json_values)
def test_consent_is_only_true(value: Any) -> None:
    assert check_consent(True) is None
    p = check_consent(value)
    assert (p is None) == (value is True)
    if p is not None:
        assert_bilingual(p, "consent")


@given(st.text(max_size=12))
def test_choices(text: str) -> None:
    for kind in ApplicationKind:
        assert check_choice(kind, "kind", ApplicationKind) is None
        assert check_choice(kind.value, "kind", ApplicationKind) is None
        assert kind.en and ARABIC.search(kind.ur)
    for gender in Gender:
        assert validate_field("gender", gender.value) is None
        assert gender.en and ARABIC.search(gender.ur)
    if text not in {g.value for g in Gender}:
        assert_bilingual(validate_field("gender", text), "gender")
    if text not in {k.value for k in ApplicationKind}:
        assert_bilingual(validate_field("kind", text), "kind")
    assert_bilingual(check_choice(Gender.MALE, "kind", ApplicationKind), "kind")


def test_labels_are_bilingual() -> None:
    assert [int(p) for p in FingerPosition] == list(range(1, 11))
    assert FingerPosition.RIGHT_THUMB.en == "Right thumb"
    assert FingerPosition.LEFT_LITTLE.en == "Left little finger"
    for enum in (FingerPosition, FingerExceptionReason):
        for member in enum:
            assert member.en and ARABIC.search(member.ur)
    assert len({p.ur for p in FingerPosition}) == 10


@given(st.text(max_size=20))
def test_ltr_isolate_and_idempotent_normalisers(text: str) -> None:
    assert ltr_isolate(text) == "\u2066" + text + "\u2069"
    assert normalise_cnic(normalise_cnic(text)) == normalise_cnic(text)
    mobile = normalise_mobile(text)
    if mobile is not None:
        assert normalise_mobile(mobile) == mobile and re.fullmatch(r"\+923\d{9}", mobile)


def _years_ago(years: int, days: int = 0) -> dt.date:
    return TODAY.replace(year=TODAY.year - years) + dt.timedelta(days=days)


def test_age_rules_follow_the_application_kind() -> None:
    record = demographics_from_dict(EXAMPLE_DEMOGRAPHICS)
    juvenile = dataclasses.replace(record, kind=ApplicationKind.JUVENILE)
    assert age_limits(ApplicationKind.NEW) == (18, 130) and age_limits(None) == (18, 130)
    assert AGE_RULES[ApplicationKind.JUVENILE] == (0, 17)
    seventeen = _years_ago(18, days=1)
    eighteen = _years_ago(18)
    assert validate_field("date_of_birth", seventeen, record=juvenile, today=TODAY) is None
    p = validate_field("date_of_birth", eighteen, record=juvenile, today=TODAY)
    assert_bilingual(p, "date_of_birth")
    assert p is not None and p.code == "dob.too_old_for_kind"
    assert validate_field("date_of_birth", eighteen, record=record, today=TODAY) is None
    p = validate_field("date_of_birth", seventeen, record=record, today=TODAY)
    assert p is not None and p.code == "dob.too_young"
    assert validate_field("date_of_birth", TODAY, record=juvenile, today=TODAY) is None
    p = check_date_of_birth(_years_ago(131), TODAY, min_age=0, max_age=200)
    assert p is not None and p.code == "dob.too_old"


@given(st.dates(min_value=dt.date(1890, 1, 1), max_value=TODAY), st.sampled_from(list(ApplicationKind)))
def test_dob_matches_the_kind_limits(born: dt.date, kind: ApplicationKind) -> None:
    record = dataclasses.replace(demographics_from_dict(EXAMPLE_DEMOGRAPHICS), kind=kind)
    low, high = AGE_RULES[kind]
    age = TODAY.year - born.year - ((TODAY.month, TODAY.day) < (born.month, born.day))
    p = validate_field("date_of_birth", born, record=record, today=TODAY)
    assert (p is None) == (low <= age <= high and age <= 130)
    if p is not None:
        assert_bilingual(p, "date_of_birth")


def _wsq() -> bytes:
    rng = np.random.default_rng(3)
    return wsq.encode(rng.integers(0, 255, (120, 120), dtype=np.uint8))


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 64), (200, 150, 120)).save(buf, "JPEG")
    return buf.getvalue()


WSQ = _wsq()
JPEG = _jpeg()


def record() -> Enrollment:
    fingers: dict[FingerPosition, FingerCapture | FingerException] = {
        p: FingerCapture(p, WSQ, 60, 1) for p in FingerPosition
    }
    fingers[FingerPosition.LEFT_RING] = FingerException(
        FingerPosition.LEFT_RING, FingerExceptionReason.UNUSABLE
    )
    return Enrollment(
        demographics=demographics_from_dict(EXAMPLE_DEMOGRAPHICS),
        face=FaceCapture(JPEG, {"face_found": True}),
        fingers=fingers,
        operator_id="op-1",
        station_id="st-1",
    )


def test_whole_record_valid_and_problems_named() -> None:
    good = record()
    assert validate(good, TODAY) == []
    ensure_valid(good, TODAY)
    fingers = dict(good.fingers)
    del fingers[FingerPosition.RIGHT_INDEX]
    bad = dataclasses.replace(
        good,
        fingers=fingers,
        face=None,
        operator_id="",
        demographics=dataclasses.replace(good.demographics, gender=Gender.FEMALE, consent=False),
    )
    problems = validate(bad, TODAY)
    assert {"finger.2", "face", "cnic", "consent", "operator_id"} <= {p.field for p in problems}
    for p in problems:
        assert_bilingual(p, p.field)
    with pytest.raises(ValidationFailed) as err:
        ensure_valid(bad, TODAY)
    assert err.value.problems == problems
    assert ARABIC.search(err.value.urdu or "")
    # No personal data in the summary message (it may reach a log).
    assert good.demographics.cnic not in str(err.value) and "Ahmed" not in str(err.value)


FINGER_MUTATIONS = {
    "finger.missing": lambda p: None,
    "finger.position": lambda p: FingerCapture(FingerPosition(p % 10 + 1), WSQ, 60, 1),
    "finger.invalid": lambda p: FingerCapture(p, WSQ, 101, 1),
}


@given(
    st.sampled_from(list(FingerPosition)),
    st.sampled_from(
        [
            ("finger.missing", None),
            ("finger.invalid", {"quality": 101}),
            ("finger.invalid", {"quality": -1}),
            ("finger.invalid", {"attempts": 0}),
            ("finger.invalid", {"wsq": b""}),
            ("finger.position", {"position": "other"}),
        ]
    ),
    st.booleans(),
)
def test_each_finger_is_accounted_for(position: FingerPosition, mutation: Any, as_exception: bool) -> None:
    code, change = mutation
    fingers = dict(record().fingers)
    base: FingerCapture | FingerException = FingerCapture(position, WSQ, 60, 1)
    if as_exception and change is not None and "position" not in change:
        base = FingerException(position, FingerExceptionReason.AMPUTATED)
        code = None  # exceptions carry no image or quality
    if change is None:
        del fingers[position]
    elif "position" in change:
        fingers[position] = dataclasses.replace(base, position=FingerPosition(int(position) % 10 + 1))
    elif isinstance(base, FingerCapture):
        fingers[position] = dataclasses.replace(base, **change)
    else:
        fingers[position] = base
    problems = check_fingers(fingers)
    if code is None:
        assert problems == []
    else:
        assert [(p.field, p.code) for p in problems] == [(f"finger.{int(position)}", code)]
        assert_bilingual(problems[0], f"finger.{int(position)}")
    assert check_finger(position, fingers.get(position)) == (problems[0] if problems else None)


def test_all_exceptions_is_refused_and_face_is_required() -> None:
    fingers = {p: FingerException(p, FingerExceptionReason.AMPUTATED) for p in FingerPosition}
    problems = check_fingers(dict(fingers))
    assert [p.code for p in problems] == ["fingers.none"]
    assert_bilingual(problems[0], "fingers")
    assert check_face(FaceCapture(JPEG)) is None
    assert_bilingual(check_face(None), "face")
    assert_bilingual(check_face(FaceCapture(b"\x89PNG\r\n")), "face")


def test_demographics_fields_match_field_labels() -> None:
    assert [f.name for f in dataclasses.fields(Demographics)] == list(FIELD_LABELS)


arabic_variants = st.text(alphabet=list("كيىهةـ٠١٢٣٤٥٦٧٨٩") + list("ابپتکیہۃ ۱۲"), min_size=1, max_size=20)


@given(arabic_variants)
def test_normalise_urdu_gives_one_spelling(text: str) -> None:
    out = normalise_urdu(text)
    assert normalise_urdu(out) == out
    assert not set(out) & set("كيىهةـ٠١٢٣٤٥٦٧٨٩")
    assert out == out.strip() and "  " not in out
    assert len(out) <= len(text)
    if any(not ch.isdigit() and not ch.isspace() for ch in out):
        assert check_urdu_text(out, "present_address_ur", allow_digits=True, max_len=200) is None


def test_loader_normalises_urdu_and_spaces() -> None:
    raw = dict(EXAMPLE_DEMOGRAPHICS, name_ur="  علي   رضا ", name_en=" Ali   Raza ")
    d = demographics_from_dict(raw)
    assert d.name_ur == "علی رضا" and d.name_en == "Ali Raza"
    assert normalise_urdu("كاظم") == "کاظم"
