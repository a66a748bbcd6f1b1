"""Enrollment validation: property tests for every validator, messages in English and Urdu."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from station.enrollment import (
    FingerPosition,
    Gender,
    ensure_valid,
    load_enrollment,
    normalise_cnic,
    normalise_mobile,
    validate,
    validate_field,
)
from station.enrollment.example import write_example
from station.enrollment.validate import (
    FIELD_LABELS,
    Problem,
    check_cnic,
    check_cnic_gender,
    check_date_of_birth,
    check_latin_name,
    check_mobile,
    check_parent_cnic,
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
    if parent == own:
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


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example(tmp_path_factory.mktemp("example"))


def test_example_is_valid_and_deterministic(example: Path) -> None:
    e = load_enrollment(example, station_id="st-1")
    assert validate(e, TODAY) == []
    ensure_valid(e, TODAY)
    doc1 = cbor2.dumps(e.to_document(), canonical=True)
    doc2 = cbor2.dumps(load_enrollment(example, station_id="st-1").to_document(), canonical=True)
    assert doc1 == doc2
    fingers = e.to_document()["fingers"]
    assert [f["position"] for f in fingers] == list(range(1, 11))
    assert sum("exception" in f for f in fingers) == 1
    assert all(len(f["sha256"]) == 64 for f in fingers if "image" in f)


def test_whole_record_problems(example: Path) -> None:
    e = load_enrollment(example, station_id="st-1")
    fingers = dict(e.fingers)
    del fingers[FingerPosition.RIGHT_INDEX]
    bad = dataclasses.replace(
        e,
        fingers=fingers,
        face=None,
        demographics=dataclasses.replace(e.demographics, gender=Gender.FEMALE, consent=False),
    )
    problems = validate(bad, TODAY)
    fields = {p.field for p in problems}
    assert {"finger.2", "face", "cnic", "consent"} <= fields
    with pytest.raises(ValidationFailed) as err:
        ensure_valid(bad, TODAY)
    assert err.value.problems == problems
    assert ARABIC.search(err.value.urdu or "")


def test_bad_files_name_the_field(tmp_path: Path, example: Path) -> None:
    import json
    import shutil

    work = tmp_path / "e"
    shutil.copytree(example.parent, work)
    data = json.loads((work / "enrollment.json").read_text())
    data["fingers"]["3"]["image"] = "missing.png"
    (work / "enrollment.json").write_text(json.dumps(data))
    with pytest.raises(ValidationFailed, match=r"fingers\.3: cannot read .*missing\.png"):
        load_enrollment(work / "enrollment.json")
    (work / "enrollment.json").write_text("{not json")
    with pytest.raises(ValidationFailed, match="not valid JSON"):
        load_enrollment(work / "enrollment.json")


@settings(max_examples=50)
@given(st.dictionaries(st.sampled_from(list(FIELD_LABELS)), st.text(max_size=30), max_size=6))
def test_validate_field_never_raises_on_text(values: dict[str, str]) -> None:
    for field, value in values.items():
        validate_field(field, value, today=TODAY)
