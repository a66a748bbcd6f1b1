"""Operators: argon2id PINs, encrypted records, lockout, the finger factor and the idle lock."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from station.auth import (
    AuthError,
    IdleLock,
    LockedOut,
    LockoutPolicy,
    OperatorDirectory,
    OperatorFile,
    Role,
    check_pin,
    hash_pin,
    idle_lock_seconds,
    verify_pin,
)
from station.errors import ConfigError, KeyProblem
from station.home import StationConfig, StationHome


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def exact_matcher(enrolled: bytes, live: bytes) -> bool:
    return enrolled == live


@pytest.fixture
def directory(tmp_path: Path) -> tuple[OperatorDirectory, Clock]:
    clock = Clock()
    home = StationHome(tmp_path / "home")
    d = OperatorDirectory(OperatorFile.for_home(home), policy=LockoutPolicy(3, 300), clock=clock)
    d.add("sup-1", "2580", Role.SUPERVISOR, templates=[b"sup-finger"])
    d.add("op-1", "7391", Role.OPERATOR, templates=[b"op-finger"], created_by="sup-1")
    return d, clock


def test_pin_hash_is_argon2id_and_verifies() -> None:
    h = hash_pin("7391")
    assert h.startswith("$argon2id$")
    assert verify_pin(h, "7391")
    assert not verify_pin(h, "7392")
    assert not verify_pin("not a hash", "7391")


@pytest.mark.parametrize("pin", ["", "12", "1234", "9876", "0000", "12a4", "٧٣٩١", "1" * 13])
def test_weak_or_malformed_pins_are_refused(pin: str) -> None:
    with pytest.raises(AuthError):
        check_pin(pin)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=20))
def test_check_pin_only_raises_auth_error(pin: str) -> None:
    try:
        assert check_pin(pin) == pin
        assert pin.isascii() and pin.isdigit()
    except AuthError as exc:
        assert exc.message and exc.urdu


def test_first_operator_must_be_a_supervisor(tmp_path: Path) -> None:
    d = OperatorDirectory(OperatorFile.for_home(StationHome(tmp_path)))
    with pytest.raises(AuthError, match="supervisor"):
        d.add("op-1", "7391")
    d.add("sup-1", "7391", Role.SUPERVISOR)
    with pytest.raises(AuthError, match="already exists"):
        d.add("sup-1", "7391", Role.SUPERVISOR)


def test_records_are_encrypted_at_rest(directory: tuple[OperatorDirectory, Clock]) -> None:
    d, _ = directory
    raw = d.storage.path.read_bytes()
    for needle in (b"op-1", b"sup-1", b"argon2id", b"op-finger", b"b3AtZmluZ2Vy"):
        assert needle not in raw
    assert oct(d.storage.path.stat().st_mode & 0o777) == "0o600"
    other = OperatorFile(d.storage.path, b"\x01" * 32)
    with pytest.raises(KeyProblem, match="does not open"):
        other.load()


def test_tampered_file_is_refused(directory: tuple[OperatorDirectory, Clock]) -> None:
    d, _ = directory
    raw = bytearray(d.storage.path.read_bytes())
    raw[-1] ^= 1
    d.storage.path.write_bytes(bytes(raw))
    with pytest.raises(KeyProblem):
        d.all()


def test_three_factor_login(directory: tuple[OperatorDirectory, Clock]) -> None:
    d, _ = directory
    pending = d.check_pin("op-1", "7391")
    op = d.check_finger(pending, b"op-finger", exact_matcher)
    assert op.operator_id == "op-1" and op.role is Role.OPERATOR
    with pytest.raises(AuthError, match="does not match"):
        d.check_finger(pending, b"sup-finger", exact_matcher)


def test_unknown_id_and_wrong_pin_look_the_same(directory: tuple[OperatorDirectory, Clock]) -> None:
    d, _ = directory
    with pytest.raises(AuthError) as unknown:
        d.check_pin("nobody", "7391")
    with pytest.raises(AuthError) as wrong:
        d.check_pin("op-1", "7390")
    assert unknown.value.code == wrong.value.code == "auth.bad_credentials"


def test_wrong_pin_locks_out_and_survives_restart(directory: tuple[OperatorDirectory, Clock]) -> None:
    d, clock = directory
    for _ in range(2):
        with pytest.raises(AuthError, match="attempt"):
            d.check_pin("op-1", "0001")
    with pytest.raises(LockedOut):
        d.check_pin("op-1", "0001")
    # The right PIN does not help while locked, even in a new process (fresh directory object).
    again = OperatorDirectory(OperatorFile(d.storage.path, _key(d)), clock=clock)
    with pytest.raises(LockedOut) as exc:
        again.check_pin("op-1", "7391")
    assert 0 < exc.value.seconds_left <= 300
    clock.now += 301
    assert d.check_pin("op-1", "7391").operator.operator_id == "op-1"


def _key(d: OperatorDirectory) -> bytes:
    from station.auth import OPERATOR_KEY_NAME
    from station.keys import KeyStore

    return KeyStore(StationHome(d.storage.path.parent.parent)).get(OPERATOR_KEY_NAME)


def test_wrong_finger_counts_towards_lockout(directory: tuple[OperatorDirectory, Clock]) -> None:
    d, _ = directory
    pending = d.check_pin("op-1", "7391")
    for _ in range(2):
        with pytest.raises(AuthError):
            d.check_finger(pending, b"other", exact_matcher)
    with pytest.raises(LockedOut):
        d.check_finger(pending, b"other", exact_matcher)
    with pytest.raises(LockedOut):
        d.check_finger(pending, b"op-finger", exact_matcher)


def test_supervisor_unlock_and_disable(directory: tuple[OperatorDirectory, Clock]) -> None:
    d, _ = directory
    for _ in range(3):
        with pytest.raises(AuthError):
            d.check_pin("op-1", "0001")
    d.unlock("op-1")
    d.check_pin("op-1", "7391")
    d.set_enabled("op-1", False)
    with pytest.raises(AuthError, match="wrong"):
        d.check_pin("op-1", "7391")
    d.set_enabled("op-1", True)
    d.set_pin("op-1", "4826")
    d.check_pin("op-1", "4826")
    assert d.add_template("op-1", b"second") == 2


def test_operator_without_finger_cannot_finish_login(tmp_path: Path) -> None:
    d = OperatorDirectory(OperatorFile.for_home(StationHome(tmp_path)))
    d.add("sup-1", "2580", Role.SUPERVISOR)
    with pytest.raises(AuthError, match="no enrolled finger"):
        d.check_finger(d.check_pin("sup-1", "2580"), b"x", exact_matcher)


def test_idle_lock_policy() -> None:
    lock = IdleLock(120, last_input=0.0)
    assert not lock.due(119.0)
    assert lock.due(120.0)
    lock.touch(100.0)
    assert lock.remaining(150.0) == 70.0
    with pytest.raises(ConfigError):
        IdleLock(0)
    assert idle_lock_seconds(StationConfig()) == 120
    assert idle_lock_seconds(StationConfig(idle_lock_seconds=30)) == 30
    with pytest.raises(ConfigError):
        idle_lock_seconds(StationConfig(idle_lock_seconds=1))
