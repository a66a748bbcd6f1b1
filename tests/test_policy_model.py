"""The policy model: built-in child bands at their boundaries, strict parsing, feasibility, the wizard."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from station.enrollment import (
    ApplicationKind,
    Enrollment,
    FaceCapture,
    FingerCapture,
    FingerException,
    FingerExceptionReason,
    FingerPosition,
    validate,
)
from station.enrollment.example import EXAMPLE_DEMOGRAPHICS
from station.enrollment.files import demographics_from_dict
from station.policy import (
    BUILTIN,
    Modality,
    Policy,
    PolicyError,
    Requirement,
    capture_summary,
    check_feasible,
    check_summary,
    ensure_feasible,
)
from station.policy.parse import policy_from_document
from station.wizard import Step, Wizard

TODAY = dt.date(2026, 11, 24)
JPEG = b"\xff\xd8\xff\xe0fake-jpeg"
WSQ = b"\xff\xa0fake-wsq"


def born_years_ago(years: int, days_short: int = 0) -> dt.date:
    """The birthday ``years`` ago, minus ``days_short`` days (2 years and 364 days: 3 years, 1 short)."""
    return TODAY.replace(year=TODAY.year - years) + dt.timedelta(days=days_short)


def juvenile(born: dt.date, *, face: bool, fingers: int) -> Enrollment:
    raw = dict(EXAMPLE_DEMOGRAPHICS, kind="juvenile", date_of_birth=born.isoformat())
    demo = demographics_from_dict(raw)
    items: dict[FingerPosition, FingerCapture | FingerException] = {}
    if fingers:
        for pos in FingerPosition:
            if pos <= fingers:
                items[pos] = FingerCapture(pos, WSQ, 60)
            else:
                items[pos] = FingerException(pos, FingerExceptionReason.AMPUTATED)
    return Enrollment(demo, FaceCapture(JPEG) if face else None, items, "op-1", "uc-test-01")


def codes(enrollment: Enrollment, policy: Policy = BUILTIN) -> list[str]:
    return [p.code for p in validate(enrollment, TODAY, policy)]


def test_builtin_is_feasible_and_round_trips() -> None:
    assert check_feasible(BUILTIN) == []
    doc = BUILTIN.to_document()
    assert policy_from_document(json.loads(json.dumps(doc))).to_document() == doc
    assert BUILTIN.version == 0


def test_child_band_boundaries() -> None:
    j = ApplicationKind.JUVENILE
    two_364 = born_years_ago(3, days_short=1)
    assert (TODAY - two_364).days == 3 * 365 + 1 - 1  # 2026-11-24 back to 2023-11-25: a leap day between
    band = BUILTIN.band(j, 2)
    assert band is not None and band.face is Requirement.NOT_TAKEN and band.fingers is Requirement.NOT_TAKEN
    # 2 years 364 days: no photo, no fingers; a record with neither commits
    assert codes(juvenile(two_364, face=False, fingers=0)) == []
    assert "face.not_taken" in codes(juvenile(two_364, face=True, fingers=0))
    # 3 years to the day: a photo, no fingers
    three = born_years_ago(3)
    assert codes(juvenile(three, face=True, fingers=0)) == []
    assert codes(juvenile(three, face=False, fingers=0)) == ["face.missing"]
    assert "fingers.not_taken" in codes(juvenile(three, face=True, fingers=10))
    # 10 years: photo and fingers
    ten = born_years_ago(10)
    assert codes(juvenile(ten, face=True, fingers=10)) == []
    assert codes(juvenile(ten, face=True, fingers=0)) == ["fingers.required"]
    assert codes(juvenile(born_years_ago(10, days_short=1), face=True, fingers=0)) == []
    # 18: no longer a juvenile; an identity card takes face and ten positions
    assert "dob.too_old_for_kind" in codes(juvenile(born_years_ago(18), face=True, fingers=10))
    adult = dataclasses.replace(
        juvenile(born_years_ago(18), face=True, fingers=10),
        demographics=demographics_from_dict(
            dict(EXAMPLE_DEMOGRAPHICS, date_of_birth=born_years_ago(18).isoformat())
        ),
    )
    assert codes(adult) == []
    assert "face.missing" in codes(dataclasses.replace(adult, face=None))


def test_twelve_year_old_without_fingers_is_refused_in_both_languages() -> None:
    problems = validate(juvenile(born_years_ago(12), face=True, fingers=0), TODAY)
    assert [p.code for p in problems] == ["fingers.required"]
    assert "Fingerprints are required" in problems[0].en and "10 to 17" in problems[0].en
    assert "انگلیوں کے نشانات ضروری ہیں" in problems[0].ur


def test_wizard_skips_steps_the_band_does_not_take() -> None:
    w = Wizard(operator_id="op-1", station_id="uc-test-01", purpose="-", today=TODAY)
    for name in ("kind", "consent"):
        w.set(name, "juvenile" if name == "kind" else True)
    assert w.get("purpose") == BUILTIN.rules(ApplicationKind.JUVENILE).purpose.en
    w.advance()
    for name, value in EXAMPLE_DEMOGRAPHICS.items():
        if name not in ("kind", "purpose", "consent"):
            w.set(name, value)
    w.set("date_of_birth", born_years_ago(2).isoformat())
    assert w.band() is not None and w.band().label == "0-2"  # type: ignore[union-attr]
    assert w.advance() is Step.REVIEW  # no photo, no fingers under 3
    assert w.begin_commit().face is None
    w2 = Wizard(operator_id="op-1", station_id="uc-test-01", purpose="-", today=TODAY)
    w2.set("kind", "juvenile")
    w2.set("consent", True)
    w2.advance()
    for name, value in EXAMPLE_DEMOGRAPHICS.items():
        if name not in ("kind", "purpose", "consent"):
            w2.set(name, value)
    w2.set("date_of_birth", born_years_ago(5).isoformat())
    assert w2.advance() is Step.FACE
    w2.set_face(JPEG, {})
    assert w2.advance() is Step.REVIEW  # 3 to 10: no fingers
    assert w2.back() is Step.FACE


def test_threshold_and_attempts_come_from_the_policy() -> None:
    doc = BUILTIN.to_document()
    doc["version"] = 5
    doc["modalities"]["fingers"]["threshold"] = 70
    doc["modalities"]["fingers"]["attempts"] = 2
    doc["modalities"]["fingers"]["override"] = {"allowed": False, "by": []}
    strict = policy_from_document(doc)
    w = Wizard(operator_id="op-1", station_id="s", purpose="-", policy=strict)
    assert (w.min_quality, w.max_attempts, w.keep_best_allowed) == (70, 2, False)
    assert not w.finger_attempt(FingerPosition.RIGHT_THUMB, WSQ, 60).accepted
    outcome = w.finger_attempt(FingerPosition.RIGHT_THUMB, WSQ, 65)
    assert outcome.needs_exception
    with pytest.raises(Exception, match="does not allow keeping"):
        w.keep_best(FingerPosition.RIGHT_THUMB)
    assert (
        Wizard(operator_id="op-1", station_id="s", purpose="-")
        .finger_attempt(FingerPosition.RIGHT_THUMB, WSQ, 60)
        .accepted
    )  # 60 passes the built-in threshold of 40


def test_override_and_signoff_questions() -> None:
    assert BUILTIN.override_allowed(Modality.FACE, "supervisor")
    assert not BUILTIN.override_allowed(Modality.FACE, "operator")
    assert BUILTIN.exception_needs_signoff(FingerExceptionReason.INJURED)
    assert not BUILTIN.exception_needs_signoff(FingerExceptionReason.AMPUTATED)


def _mutated(path: list[Any], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BUILTIN.to_document())
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        (["kinds", "juvenile", "bands", 1, "from_age"], 4, "no age band holds age 3"),
        (["kinds", "juvenile", "bands", 1, "to_age"], 11, "falls in 2 bands"),
        (["kinds", "new", "min_age"], 140, "whole number from 0 to 130"),
        (["kinds", "juvenile", "min_age"], 17, None),  # narrower but still feasible
        (["kinds", "juvenile", "bands", 0, "min_fingers"], 2, "fingers are not taken"),
        (["modalities", "face", "override"], {"allowed": True, "by": []}, "no role may approve"),
        (["modalities", "fingers", "threshold"], 101, "from 0 to 100"),
        (["modalities", "fingers", "attempts"], True, "whole number"),
        (["settings", "parallel_uploads"], 0, "from 1 to 16"),
        (["kinds", "new", "purpose", "ur"], "", "text of 1 to"),
        (["format"], "policy/0", "must be"),
    ],
)
def test_bad_documents_are_refused_with_the_place_named(
    path: list[Any], value: Any, words: str | None
) -> None:
    doc = _mutated(path, value)
    try:
        ensure_feasible(policy_from_document(doc))
    except PolicyError as exc:
        assert words is not None and words in exc.message, exc.message
    else:
        assert words is None


def test_no_kind_at_all_is_infeasible() -> None:
    doc = _mutated(["kinds"], {})
    assert check_feasible(policy_from_document(doc))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 200) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
paths = st.lists(
    st.sampled_from(
        [
            "kinds",
            "juvenile",
            "new",
            "bands",
            0,
            1,
            "face",
            "modalities",
            "fingers",
            "threshold",
            "override",
            "by",
            "locations",
            "settings",
            "version",
            "format",
        ]
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(paths, json_values)
def test_fuzzed_documents_give_a_policy_or_a_policy_error(path: list[Any], value: Any) -> None:
    doc: Any = copy.deepcopy(BUILTIN.to_document())
    target = doc
    for key in path[:-1]:
        try:
            target = target[key]
        except (KeyError, IndexError, TypeError):
            break
    with contextlib.suppress(TypeError, IndexError):
        target[path[-1]] = value
    try:
        policy = policy_from_document(doc)
    except PolicyError:
        return
    check_feasible(policy)
    assert policy_from_document(policy.to_document()) == policy


def test_summary_check_at_central() -> None:
    enrollment = juvenile(born_years_ago(12), face=True, fingers=10)
    band = BUILTIN.band(ApplicationKind.JUVENILE, 12)
    assert band is not None
    good = capture_summary(BUILTIN, ApplicationKind.JUVENILE, band, enrollment.face, enrollment.fingers)
    assert check_summary(BUILTIN, good) == [] and good.age_band == "10-17"
    bad = dataclasses.replace(good, fingers_captured=0, finger_exceptions=0)
    assert check_summary(BUILTIN, bad) == [
        "0 of 10 finger positions accounted for",
        "0 finger(s) captured, 1 needed",
    ]


def test_validators_age_table_is_the_builtin_policys() -> None:
    from station.enrollment.validate import AGE_RULES

    assert {kind: BUILTIN.age_limits(kind) for kind in ApplicationKind} == AGE_RULES


def test_central_loads_neither_opencv_nor_qt() -> None:
    import subprocess
    import sys

    code = (
        "import sys, sync.central.cli, sync.central.server;"
        " print(sorted(m for m in ('cv2', 'PySide6', 'sqlcipher3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_station_enroll_follows_the_child_bands(tmp_path: Path) -> None:
    """``station enroll``: a 2-year-old's juvenile record commits with no face and no fingers; a
    12-year-old's without fingers is refused, in English and Urdu."""
    from tests.sync_live import station_cli

    home = tmp_path / "st"
    station_cli(home, "init", "--demo")
    for age, ok in ((2, True), (12, False)):
        day = dt.date.today() - dt.timedelta(days=40)  # the station checks against today's date
        born = dt.date(day.year - age, day.month, min(day.day, 28))
        record = {
            "demographics": dict(EXAMPLE_DEMOGRAPHICS, kind="juvenile", date_of_birth=born.isoformat()),
            "operator_id": "op-1",
        }
        path = tmp_path / f"child-{age}.json"
        path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        out = station_cli(home, "enroll", "--from-json", str(path), check=False)
        if ok:
            assert out.returncode == 0, out.stderr
        else:
            assert out.returncode == 1
            assert "fingers: Fingerprints are required for a citizen aged 10 to 17" in out.stderr
            assert "انگلیوں کے نشانات ضروری ہیں" in out.stderr


def test_places_from_the_policy_are_checked_and_the_stations_own_preselected() -> None:
    doc = BUILTIN.to_document()
    doc["version"] = 3
    uc = {"en": "UC-42 Shadman", "ur": "یوسی ۴۲ شادمان"}
    tehsil = {"en": "Lahore City", "ur": "لاہور شہر", "union_councils": [uc]}
    doc["locations"] = [{"en": "Lahore", "ur": "لاہور", "tehsils": [tehsil]}]
    doc["station_places"] = {
        "uc-test-01": {"district": "Lahore", "tehsil": "Lahore City", "union_council": "UC-42 Shadman"}
    }
    policy = policy_from_document(doc)
    assert check_feasible(policy) == []
    w = Wizard(operator_id="op-1", station_id="uc-test-01", purpose="-", today=TODAY, policy=policy)
    assert (w.get("district"), w.get("tehsil"), w.get("union_council")) == (
        "Lahore",
        "Lahore City",
        "UC-42 Shadman",
    )
    assert not w.holds_pii
    assert w.check("union_council") is None
    assert w.set("union_council", "UC-99 Elsewhere").code == "place.unknown"  # type: ignore[union-attr]
    assert w.set("district", "Karachi").code == "place.unknown"  # type: ignore[union-attr]
    w.clear()
    assert w.get("district") == "Lahore" and not w.holds_pii
    doc["station_places"]["uc-test-01"]["union_council"] = "UC-1 Nowhere"  # type: ignore[index]
    assert "is not in the location lists" in check_feasible(policy_from_document(doc))[0]
