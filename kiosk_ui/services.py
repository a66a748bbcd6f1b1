"""Qt-free operations the kiosk runs on its task thread: log in, commit, status, onboarding.

Each function does database, crypto or argon2 work and returns plain values; the pages call them through
:class:`kiosk_ui.workers.TaskRunner` so the GUI thread never waits on them.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from station.auth import (
    AuthError,
    FingerMatcher,
    Operator,
    OperatorDirectory,
    OperatorFile,
    PendingLogin,
    Role,
)
from station.enrollment import Enrollment
from station.errors import StationError
from station.home import StationConfig, StationHome
from station.outcomes import Lookup, Outcome
from station.policy import BUILTIN_IN_FORCE, InForce, policy_in_force
from station.policy.roster import OperatorDisabled, ensure_operator_allowed
from station.wizard import Receipt, make_receipt

log = logging.getLogger("kiosk.services")


@dataclass(frozen=True)
class StatusSnapshot:
    counts: dict[str, int]
    last_sync_at: float | None
    central_reachable: bool | None
    cert_expires: dt.datetime | None
    disk_free_mb: int
    problem: str = ""


class KioskServices:
    """The station behind the kiosk: operators, commit pipeline, status."""

    def __init__(
        self,
        home: StationHome,
        config: StationConfig,
        *,
        matcher: FingerMatcher | None = None,
        committer: Callable[[Enrollment], Any] | None = None,
    ) -> None:
        """``committer`` seals and queues an enrollment (default: ``station.commit.commit_enrollment``)."""
        self.home = home
        self.committer = committer
        self.config = config
        self.operators = OperatorDirectory(OperatorFile.for_home(home, backend=config.key_backend))
        if matcher is None:
            from kiosk_ui import devices

            matcher = devices.finger_matches
        self.matcher = matcher
        self._station: Any = None
        self.last_policy: InForce | None = None  # what the last policy() call found

    # -- audit -------------------------------------------------------------------------------------
    def audit(self, event: str, **fields: str | int) -> None:
        """Append to the station's audit chain (task thread). A failure is logged, never shown."""
        try:
            self.station().audit.append(event, **fields)
        except StationError as exc:
            log.error("audit event %s not recorded: %s", event, exc.code)

    def _known(self, operator_id: str) -> str:
        """The id when it is an operator's (typed text could be anything, even a CNIC), else "unknown"."""
        try:
            return operator_id if self.operators.get(operator_id) is not None else "unknown"
        except StationError:
            return "unknown"

    # -- login -------------------------------------------------------------------------------------
    def check_pin(self, operator_id: str, pin: str) -> PendingLogin:
        try:
            pending = self.operators.check_pin(operator_id, pin)
        except AuthError as exc:
            self.audit("auth.failed", operator=self._known(operator_id), step="pin", code=exc.code)
            raise
        try:  # the roster from central, as of the sync agent's last heartbeat
            ensure_operator_allowed(self.policy(), operator_id)
        except OperatorDisabled as exc:
            self.audit("auth.failed", operator=operator_id, step="roster", code=exc.code)
            raise
        return pending

    def check_finger(self, pending: PendingLogin, live_template: bytes) -> Operator:
        operator_id = pending.operator.operator_id
        try:
            operator = self.operators.check_finger(pending, live_template, self.matcher)
        except AuthError as exc:
            self.audit("auth.failed", operator=operator_id, step="finger", code=exc.code)
            raise
        self.audit("auth.login", operator=operator_id, role=str(operator.role.value))
        return operator

    def add_operator(
        self, operator_id: str, pin: str, role: Role, templates: list[bytes], created_by: str
    ) -> Operator:
        operator = self.operators.add(operator_id, pin, role, templates=templates, created_by=created_by)
        self.audit("operator.add", operator=operator_id, role=str(role.value), by=created_by)
        return operator

    # -- commit ------------------------------------------------------------------------------------
    def station(self) -> Any:
        if self._station is None:
            from station.session import open_station

            self._station = open_station(self.home)
        return self._station

    def close(self) -> None:
        """Close the queue (at exit, after the task threads have stopped)."""
        if self._station is not None:
            self._station.close()
            self._station = None

    def commit(self, enrollment: Enrollment) -> Receipt:
        """Seal and queue the enrollment, then sign its receipt (task thread)."""
        if self.committer is not None:
            sealed = self.committer(enrollment)
        else:
            from station.commit import commit_enrollment

            sealed = commit_enrollment(self.station(), enrollment)
        key = self.identity_key()
        return make_receipt(
            sealed.packet_id,
            enrollment.station_id,
            int(sealed.created_at),
            enrollment.demographics.purpose,
            lambda data: key.sign(data, ec.ECDSA(hashes.SHA256())),
        )

    def identity_key(self) -> ec.EllipticCurvePrivateKey:
        from station.keys import KeyStore

        return KeyStore(self.home, self.config.key_backend).identity_key()

    # -- policy ------------------------------------------------------------------------------------
    def policy(self) -> InForce:
        """The policy in force (the built-in default when the queue cannot be read or none came yet)."""
        try:
            self.last_policy = policy_in_force(self.station().store)
        except StationError as exc:
            log.warning("policy: %s; using the built-in default", exc.code)
            self.last_policy = BUILTIN_IN_FORCE
        return self.last_policy

    # -- outcomes from central -----------------------------------------------------------------------
    def reenroll_list(self) -> list[Outcome]:
        """The applications central sent back for re-enrollment (tracking number, date, reason)."""
        from station.outcomes import to_reenroll

        return to_reenroll(self.station().store)

    def lookup(self, tracking: str) -> Lookup:
        """What became of the application with this tracking number (a packet of this station)."""
        from station.outcomes import lookup

        return lookup(self.station().store, tracking)

    # -- status ------------------------------------------------------------------------------------
    def status(self) -> StatusSnapshot:
        disk = shutil.disk_usage(self.home.root if self.home.root.exists() else "/")
        counts: dict[str, int] = {}
        last_sync: float | None = None
        problem = ""
        try:
            store = self.station().store
            counts = dict(store.counts())
            raw = store.meta_get("last_sync_at")  # ISO 8601 UTC, written by the sync agent
            last_sync = dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp() if raw else None
        except Exception as exc:  # shown on the status screen; the code only is logged
            problem = getattr(exc, "message", str(exc))
            log.warning("status: %s", getattr(exc, "code", type(exc).__name__))
        return StatusSnapshot(
            counts=counts,
            last_sync_at=last_sync,
            central_reachable=self._central_reachable(),
            cert_expires=self._cert_expiry(),
            disk_free_mb=disk.free // (1024 * 1024),
            problem=problem,
        )

    def _cert_expiry(self) -> dt.datetime | None:
        path = self.home.pki.station_cert
        if not path.is_file():
            return None
        try:
            return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc
        except ValueError:
            return None

    def _central_reachable(self) -> bool | None:
        """From the sync agent's last heartbeat result (the kiosk itself never dials out)."""
        try:
            store = self.station().store
            raw = store.meta_get("central_reachable")
        except Exception:
            return None
        if raw in (None, ""):
            return None
        return str(raw) in ("1", "true", "True", "yes")
