"""The enrollment wizard state machine, headless: order, inline validation, fingers, review, commit."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from station.enrollment import FingerCapture, FingerException, FingerExceptionReason, FingerPosition
from station.enrollment.example import EXAMPLE_DEMOGRAPHICS
from station.enrollment.model import ApplicationKind
from station.errors import StationError
from station.policy import BUILTIN
from station.wizard import (
    ALL_FIELDS,
    Step,
    StepBlocked,
    Wizard,
    WizardError,
    make_receipt,
    parse_qr_payload,
    receipt_statement,
    tracking_number,
)

TODAY = dt.date(2025, 6, 1)
JPEG = b"\xff\xd8\xff\xe0fake-but-jpeg-marked"


def new_wizard() -> Wizard:
    return Wizard(operator_id="op-1", station_id="uc-test-01", purpose="Identity card", today=TODAY)


def fill(w: Wizard, names: tuple[str, ...]) -> None:
    for name in names:
        if name == "purpose":
            continue
        assert w.set(name, EXAMPLE_DEMOGRAPHICS[name]) is None, name


def to_review(w: Wizard) -> None:
    fill(w, ("kind", "consent"))
    assert w.advance() is Step.DEMOGRAPHICS
    fill(w, tuple(n for n in ALL_FIELDS if n not in ("kind", "consent", "purpose")))
    assert w.advance() is Step.FACE
    w.set_face(JPEG, {"one_face": True})
    assert w.advance() is Step.FINGERS
    for pos in FingerPosition:
        if pos is FingerPosition.LEFT_LITTLE:
            for _ in range(3):
                out = w.finger_attempt(pos, b"wsq-low", 12)
            assert out.needs_exception
            w.set_exception(pos, FingerExceptionReason.INJURED)
        else:
            assert w.finger_attempt(pos, b"wsq-" + bytes([pos]), 80).accepted
    assert w.advance() is Step.REVIEW


def test_full_flow_to_receipt() -> None:
    w = new_wizard()
    to_review(w)
    assert w.problems() == []
    enrollment = w.begin_commit()
    assert w.step is Step.COMMIT
    assert enrollment.demographics.cnic == "35202-1234567-1"
    assert enrollment.demographics.mobile == "+923001234567"
    # the purpose label is the policy's for the chosen kind (the built-in policy here)
    assert enrollment.demographics.purpose == BUILTIN.rules(ApplicationKind.NEW).purpose.en
    assert enrollment.policy_version == 0
    assert isinstance(enrollment.fingers[FingerPosition.LEFT_LITTLE], FingerException)
    assert len(enrollment.fingers) == 10
    with pytest.raises(WizardError):
        w.set("name_en", "Someone Else")
    key = ec.generate_private_key(ec.SECP256R1())
    receipt = make_receipt(
        "0197a000-0000-7000-8000-000000000001",
        "uc-test-01",
        1_750_000_000,
        w.purpose,
        lambda data: key.sign(data, ec.ECDSA(hashes.SHA256())),
    )
    w.committed(receipt)
    assert w.step is Step.RECEIPT and not w.holds_pii
    pid, sid, created, sig = parse_qr_payload(receipt.qr_payload)
    key.public_key().verify(sig, receipt_statement(pid, sid, created), ec.ECDSA(hashes.SHA256()))
    assert receipt.tracking_number == tracking_number(pid)
    w.clear()
    assert w.step is Step.KIND_CONSENT and w.receipt is None


def test_consent_is_required() -> None:
    w = new_wizard()
    w.set("kind", "new")
    with pytest.raises(StepBlocked) as exc:
        w.advance()
    assert [p.field for p in exc.value.problems] == ["consent"]
    assert exc.value.urdu


def test_invalid_cnic_blocks_with_the_field_message() -> None:
    w = new_wizard()
    fill(w, ("kind", "consent"))
    w.advance()
    fill(w, tuple(n for n in ALL_FIELDS if n not in ("kind", "consent", "purpose")))
    problem = w.set("cnic", "35202-123")
    assert problem is not None and problem.field == "cnic"
    with pytest.raises(StepBlocked) as exc:
        w.advance()
    assert exc.value.problems[0].field == "cnic"
    assert exc.value.message == problem.en
    assert w.step is Step.DEMOGRAPHICS


def test_gender_parity_is_rechecked_through_dependents() -> None:
    w = new_wizard()
    assert w.set("gender", "male") is None
    assert w.set("cnic", "35202-1234567-1") is None
    w.set("gender", "female")
    assert w.dependents("gender") == ("cnic",)
    problem = w.check("cnic")
    assert problem is not None and problem.code == "cnic.gender"
    assert w.set("cnic", "3520212345672") is None  # normalised, even for a woman


def test_parent_cnic_cannot_be_own() -> None:
    w = new_wizard()
    w.set("cnic", "35202-1234567-1")
    problem = w.set("parent_cnic", "35202-1234567-1")
    assert problem is not None and problem.code == "parent_cnic.same"


def test_finger_attempts_keep_best_and_stop_at_three() -> None:
    w = new_wizard()
    pos = FingerPosition.RIGHT_INDEX
    assert not w.finger_attempt(pos, b"a", 10).accepted
    assert not w.finger_attempt(pos, b"b", 30).accepted
    out = w.finger_attempt(pos, b"c", 20)
    assert out.needs_exception and out.attempts == 3
    with pytest.raises(WizardError):
        w.finger_attempt(pos, b"d", 90)
    kept = w.keep_best(pos)
    assert isinstance(kept, FingerCapture) and kept.wsq == b"b" and kept.attempts == 3
    w.retake(pos)
    assert w.attempts(pos) == 0 and pos not in w.fingers
    out = w.finger_attempt(pos, b"e", 75)
    assert out.accepted and w.current_finger() is FingerPosition.RIGHT_THUMB


def test_other_exception_needs_a_note() -> None:
    w = new_wizard()
    with pytest.raises(WizardError):
        w.set_exception(FingerPosition.LEFT_RING, FingerExceptionReason.OTHER, "  ")
    w.set_exception(FingerPosition.LEFT_RING, FingerExceptionReason.OTHER, "henna")


def test_review_edit_returns_to_review() -> None:
    w = new_wizard()
    to_review(w)
    w.edit(Step.DEMOGRAPHICS)
    assert w.step is Step.DEMOGRAPHICS
    w.set("name_en", "Ahmed Raza Khan")
    assert w.advance() is Step.REVIEW
    assert w.build().demographics.name_en == "Ahmed Raza Khan"
    w.edit(Step.FACE)
    w.clear_face()
    with pytest.raises(StepBlocked):
        w.advance()
    w.set_face(JPEG, {})
    assert w.advance() is Step.REVIEW
    with pytest.raises(WizardError):
        w.edit(Step.RECEIPT)


def test_commit_failure_returns_to_review_with_reason() -> None:
    w = new_wizard()
    to_review(w)
    w.begin_commit()
    w.commit_failed(StationError("Disk almost full", code="store.disk_low"))
    assert w.step is Step.REVIEW and w.commit_error is not None and w.holds_pii


def test_clear_forgets_everything() -> None:
    w = new_wizard()
    to_review(w)
    assert w.holds_pii
    w.clear()
    assert not w.holds_pii and w.face is None and w.fingers == {} and w.values == {"purpose": "Identity card"}
    assert w.step is Step.KIND_CONSENT


def test_face_must_be_jpeg() -> None:
    w = new_wizard()
    with pytest.raises(WizardError):
        w.set_face(b"\x89PNG", {})


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([n for n in ALL_FIELDS if n != "consent"]), st.text(max_size=40))
def test_set_never_raises_on_typed_text(name: str, text: str) -> None:
    w = new_wizard()
    problem = w.set(name, text)
    if problem is not None:
        assert problem.en and problem.ur and problem.field in (name, "cnic", "parent_cnic")


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_tracking_number_shape(pid: str) -> None:
    pid = pid.encode("ascii", "ignore").decode() or "x"
    tn = tracking_number(pid)
    assert len(tn) == 14 and tn[4] == tn[9] == "-"
