"""Operators and their login: roles, argon2id PINs, fingerprint templates, lockout and the idle lock.

Qt-free. The kiosk and ``station operator`` call this module; it decides, they show.

* A login is three factors checked in order: a known, enabled operator id; the PIN (argon2id,
  ``argon2-cffi``); then the operator's own finger, matched 1:1 on the host against one of their
  enrolled templates (``drivers/match.py``, injected as a :class:`FingerMatcher`).
* Lockout: after ``max_failures`` wrong PINs or fingers in a row an operator is locked for
  ``lock_seconds``. The counters live in the encrypted operators file, so a restart does not reset them.
* Idle lock: :class:`IdleLock` says when the kiosk must lock (``idle_lock_seconds`` from the
  station configuration, default 120 s); locking clears every screen holding PII.

Operators' records hold biometric templates, so they are kept encrypted at rest: one file
``<home>/operators/operators.sealed`` (AES-256-GCM, key ``operators`` in the station's
:class:`station.keys.KeyStore`), written atomically. Nothing here logs an id's PIN, template or finger.
"""

from __future__ import annotations

import enum
import itertools
import json
import os
import re
import secrets
import time
from base64 import b64decode, b64encode
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from station.errors import ConfigError, KeyProblem, StationError

OPERATOR_KEY_NAME = "operators"
OPERATORS_FILE = "operators.sealed"
FILE_MAGIC = b"STOP1"  # STation OPerators, format 1
PIN_MIN, PIN_MAX = 4, 12
OPERATOR_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MAX_TEMPLATES = 4
DEFAULT_IDLE_LOCK_SECONDS = 120

# OWASP's argon2id minimum (19 MiB, t=2, p=1): ~40 ms here, off the GUI thread in the kiosk.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)


class Role(enum.StrEnum):
    """What an operator may do. A supervisor onboards operators; a technician may leave the kiosk."""

    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    TECHNICIAN = "technician"

    @property
    def label_en(self) -> str:
        return {"operator": "Operator", "supervisor": "Supervisor", "technician": "Technician"}[self.value]

    @property
    def label_ur(self) -> str:
        return {"operator": "آپریٹر", "supervisor": "نگران", "technician": "ٹیکنیشن"}[self.value]


class AuthError(StationError):
    """A login or onboarding step failed; ``message``/``urdu`` are for the person at the counter."""

    code = "auth.failed"


class LockedOut(AuthError):
    code = "auth.locked"

    def __init__(self, seconds_left: int) -> None:
        minutes = max(1, (seconds_left + 59) // 60)
        super().__init__(
            f"Too many failed attempts: this operator is locked for {minutes} more minute(s)."
            " Wait, or ask a supervisor.",
            urdu=f"بہت زیادہ غلط کوششیں: یہ آپریٹر مزید \u2066{minutes}\u2069 منٹ کے لیے بند ہے۔"
            " انتظار کریں یا نگران سے رابطہ کریں۔",
        )
        self.seconds_left = seconds_left


def check_operator_id(operator_id: str) -> str:
    """Operator ids are short lowercase staff codes (``op-0421``): never a name or a CNIC."""
    if not OPERATOR_ID_RE.fullmatch(operator_id):
        raise AuthError(
            "An operator id is 2-32 lowercase letters, digits, '.', '_' or '-' (e.g. op-0421).",
            urdu="آپریٹر شناخت \u20662-32\u2069 چھوٹے انگریزی حروف، ہندسے، '.'، '_' یا '-' ہو"
            " (مثلاً op-0421)۔",
            code="auth.bad_id",
        )
    return operator_id


def check_pin(pin: str) -> str:
    """A PIN is 4-12 digits, not all the same digit, not a plain run (1234, 9876)."""
    if not (pin.isascii() and pin.isdigit() and PIN_MIN <= len(pin) <= PIN_MAX):
        raise AuthError(
            f"A PIN is {PIN_MIN}-{PIN_MAX} digits: enter digits only.",
            urdu=f"پن \u2066{PIN_MIN}-{PIN_MAX}\u2069 ہندسوں کا ہو: صرف ہندسے درج کریں۔",
            code="auth.bad_pin",
        )
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(pin)}
    if len(set(pin)) == 1 or steps in ({1}, {9}):
        raise AuthError(
            "This PIN is too easy to guess (repeated or running digits): choose another.",
            urdu="یہ پن آسانی سے اندازہ ہو سکتا ہے (دہرائے یا ترتیب وار ہندسے): کوئی اور چنیں۔",
            code="auth.weak_pin",
        )
    return pin


def hash_pin(pin: str) -> str:
    """argon2id hash of a checked PIN (PHC string with its own salt and parameters)."""
    return _HASHER.hash(check_pin(pin))


def verify_pin(pin_hash: str, pin: str) -> bool:
    try:
        return _HASHER.verify(pin_hash, pin)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Operator:
    """One staff member. ``templates`` are enrolled finger templates (opaque bytes of the matcher)."""

    operator_id: str
    role: Role
    pin_hash: str
    templates: tuple[bytes, ...] = ()
    enabled: bool = True
    created_at: float = 0.0
    created_by: str = ""
    failures: int = 0
    locked_until: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "operator_id": self.operator_id,
            "role": self.role.value,
            "pin_hash": self.pin_hash,
            "templates": [b64encode(t).decode("ascii") for t in self.templates],
            "enabled": self.enabled,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "failures": self.failures,
            "locked_until": self.locked_until,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Operator:
        return cls(
            operator_id=str(data["operator_id"]),
            role=Role(data["role"]),
            pin_hash=str(data["pin_hash"]),
            templates=tuple(b64decode(t) for t in data.get("templates", [])),
            enabled=bool(data.get("enabled", True)),
            created_at=float(data.get("created_at", 0.0)),
            created_by=str(data.get("created_by", "")),
            failures=int(data.get("failures", 0)),
            locked_until=float(data.get("locked_until", 0.0)),
        )


class FingerMatcher(Protocol):
    """Host-side 1:1 verification: does ``live`` (a capture's template) match ``enrolled``?"""

    def __call__(self, enrolled: bytes, live: bytes) -> bool: ...


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    lock_seconds: int = 300


class OperatorFile:
    """The operators' records, sealed with AES-256-GCM in one file under the station home."""

    def __init__(self, path: Path, key: bytes) -> None:
        if len(key) != 32:
            raise KeyProblem("The operators key must be 32 bytes: it is damaged. Call a technician.")
        self.path = path
        self._aead = AESGCM(key)

    @classmethod
    def for_home(cls, home: Any, *, backend: str = "file") -> OperatorFile:
        """Open (creating the key on first use) the operators file of a :class:`StationHome`."""
        from station.keys import KeyStore

        keys = KeyStore(home, backend)
        key = keys.get(OPERATOR_KEY_NAME) if keys.has(OPERATOR_KEY_NAME) else None
        if key is None:
            key = secrets.token_bytes(32)
            keys.put(OPERATOR_KEY_NAME, key)
        return cls(Path(home.operators_dir) / OPERATORS_FILE, key)

    def load(self) -> dict[str, Operator]:
        if not self.path.exists():
            return {}
        blob = self.path.read_bytes()
        if not blob.startswith(FILE_MAGIC) or len(blob) < len(FILE_MAGIC) + 12 + 16:
            raise KeyProblem(
                f"The operators file {self.path} is damaged. Call a technician.", code="auth.file_damaged"
            )
        nonce = blob[len(FILE_MAGIC) : len(FILE_MAGIC) + 12]
        try:
            plain = self._aead.decrypt(nonce, blob[len(FILE_MAGIC) + 12 :], FILE_MAGIC)
        except InvalidTag:
            raise KeyProblem(
                f"The operators file {self.path} does not open with this station's key (damaged or"
                " from another station). Call a technician.",
                code="auth.file_key",
            ) from None
        data = json.loads(plain)
        return {op["operator_id"]: Operator.from_json(op) for op in data["operators"]}

    def save(self, operators: Iterable[Operator]) -> None:
        plain = json.dumps(
            {"operators": [op.to_json() for op in sorted(operators, key=lambda o: o.operator_id)]},
            sort_keys=True,
        ).encode("utf-8")
        nonce = secrets.token_bytes(12)
        blob = FILE_MAGIC + nonce + self._aead.encrypt(nonce, plain, FILE_MAGIC)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, blob)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


@dataclass
class PendingLogin:
    """A PIN that was right: the operator must now put their own finger on the scanner."""

    operator: Operator


class OperatorDirectory:
    """Onboarding and the three-factor login over an :class:`OperatorFile`.

    ``clock`` returns seconds (``time.time`` by default; tests pass their own).
    """

    def __init__(
        self,
        storage: OperatorFile,
        *,
        policy: LockoutPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.policy = policy or LockoutPolicy()
        self.clock = clock

    # -- records -------------------------------------------------------------------------------
    def all(self) -> list[Operator]:
        return sorted(self.storage.load().values(), key=lambda o: o.operator_id)

    def get(self, operator_id: str) -> Operator | None:
        return self.storage.load().get(operator_id)

    def _put(self, op: Operator) -> None:
        ops = self.storage.load()
        ops[op.operator_id] = op
        self.storage.save(ops.values())

    def add(
        self,
        operator_id: str,
        pin: str,
        role: Role = Role.OPERATOR,
        *,
        templates: Iterable[bytes] = (),
        created_by: str = "",
    ) -> Operator:
        """Onboard an operator. The first operator of a station must be a supervisor or technician."""
        check_operator_id(operator_id)
        ops = self.storage.load()
        if operator_id in ops:
            raise AuthError(
                f"Operator {operator_id} already exists: choose another id or reset that operator's PIN.",
                urdu=f"آپریٹر \u2066{operator_id}\u2069 پہلے سے موجود ہے: کوئی اور شناخت چنیں۔",
                code="auth.exists",
            )
        if not ops and role is Role.OPERATOR:
            raise AuthError(
                "The first operator of a station must be a supervisor (who then adds the others).",
                urdu="اسٹیشن کا پہلا آپریٹر نگران ہونا چاہیے (جو پھر دوسروں کو شامل کرے)۔",
                code="auth.first_supervisor",
            )
        tpl = tuple(templates)
        if len(tpl) > MAX_TEMPLATES:
            raise AuthError(f"At most {MAX_TEMPLATES} fingers per operator.", code="auth.too_many_fingers")
        op = Operator(
            operator_id=operator_id,
            role=role,
            pin_hash=hash_pin(pin),
            templates=tpl,
            created_at=self.clock(),
            created_by=created_by,
        )
        ops[operator_id] = op
        self.storage.save(ops.values())
        return op

    def set_pin(self, operator_id: str, pin: str) -> None:
        op = self._require(operator_id)
        self._put(replace(op, pin_hash=hash_pin(pin), failures=0, locked_until=0.0))

    def add_template(self, operator_id: str, template: bytes) -> int:
        """Enroll one more finger; returns how many the operator now has."""
        op = self._require(operator_id)
        if len(op.templates) >= MAX_TEMPLATES:
            raise AuthError(f"At most {MAX_TEMPLATES} fingers per operator.", code="auth.too_many_fingers")
        self._put(replace(op, templates=(*op.templates, template)))
        return len(op.templates) + 1

    def set_enabled(self, operator_id: str, enabled: bool) -> None:
        op = self._require(operator_id)
        self._put(replace(op, enabled=enabled, failures=0, locked_until=0.0))

    def unlock(self, operator_id: str) -> None:
        op = self._require(operator_id)
        self._put(replace(op, failures=0, locked_until=0.0))

    def _require(self, operator_id: str) -> Operator:
        op = self.get(operator_id)
        if op is None:
            raise AuthError(
                f"No operator {operator_id} on this station.",
                urdu=f"اس اسٹیشن پر \u2066{operator_id}\u2069 نام کا کوئی آپریٹر نہیں۔",
                code="auth.unknown",
            )
        return op

    # -- login -----------------------------------------------------------------------------------
    def _check_not_locked(self, op: Operator) -> None:
        left = op.locked_until - self.clock()
        if left > 0:
            raise LockedOut(int(left + 0.999))

    def _fail(self, op: Operator, en: str, ur: str, code: str) -> AuthError:
        failures = op.failures + 1
        locked_until = 0.0
        if failures >= self.policy.max_failures:
            locked_until = self.clock() + self.policy.lock_seconds
            failures = 0
        self._put(replace(op, failures=failures, locked_until=locked_until))
        if locked_until:
            return LockedOut(self.policy.lock_seconds)
        left = self.policy.max_failures - failures
        return AuthError(
            f"{en} {left} attempt(s) left before this operator is locked.",
            urdu=f"{ur} آپریٹر کے بند ہونے سے پہلے \u2066{left}\u2069 کوششیں باقی ہیں۔",
            code=code,
        )

    def check_pin(self, operator_id: str, pin: str) -> PendingLogin:
        """First two factors. Unknown ids and wrong PINs give the same message (no id probing)."""
        op = self.get(operator_id) if OPERATOR_ID_RE.fullmatch(operator_id) else None
        if op is None or not op.enabled:
            # Same cost as a real check, so timing does not reveal which ids exist.
            verify_pin(_dummy_hash(), pin)
            raise AuthError(
                "Operator id or PIN is wrong: try again.",
                urdu="آپریٹر شناخت یا پن غلط ہے: دوبارہ کوشش کریں۔",
                code="auth.bad_credentials",
            )
        self._check_not_locked(op)
        if not verify_pin(op.pin_hash, pin):
            raise self._fail(
                op, "Operator id or PIN is wrong.", "آپریٹر شناخت یا پن غلط ہے۔", "auth.bad_credentials"
            )
        return PendingLogin(self._require(operator_id))

    def check_finger(self, pending: PendingLogin, live: bytes, matcher: FingerMatcher) -> Operator:
        """Third factor: the live finger must match one of the operator's own templates."""
        op = self._require(pending.operator.operator_id)
        self._check_not_locked(op)
        if not op.templates:
            raise AuthError(
                "This operator has no enrolled finger: ask a supervisor to enroll one.",
                urdu="اس آپریٹر کی کوئی انگلی درج نہیں: نگران سے انگلی درج کروائیں۔",
                code="auth.no_finger",
            )
        if not any(matcher(t, live) for t in op.templates):
            raise self._fail(
                op,
                "The finger does not match this operator.",
                "انگلی اس آپریٹر سے میل نہیں کھاتی۔",
                "auth.finger_mismatch",
            )
        if op.failures:
            self._put(replace(op, failures=0))
        return op


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    """A hash to verify against for unknown ids (made on first use: argon2 costs ~50 ms at import)."""
    if not _DUMMY:
        _DUMMY.append(_HASHER.hash("0000000000"))
    return _DUMMY[0]


@dataclass
class IdleLock:
    """When to lock the kiosk: ``seconds`` after the last input. ``touch`` on every user event."""

    seconds: float = DEFAULT_IDLE_LOCK_SECONDS
    last_input: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ConfigError("idle_lock_seconds must be more than 0.")

    def touch(self, now: float) -> None:
        self.last_input = now

    def remaining(self, now: float) -> float:
        return max(0.0, self.seconds - (now - self.last_input))

    def due(self, now: float) -> bool:
        return self.remaining(now) <= 0.0


def idle_lock_seconds(config: Any) -> int:
    """``idle_lock_seconds`` from a :class:`StationConfig`, checked (10 s to 1 h)."""
    value = getattr(config, "idle_lock_seconds", DEFAULT_IDLE_LOCK_SECONDS)
    if not isinstance(value, int) or not 10 <= value <= 3600:
        raise ConfigError("idle_lock_seconds must be a whole number from 10 to 3600.")
    return value
