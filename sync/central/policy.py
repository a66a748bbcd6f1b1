"""Central's side of the policy loop: the policy key, policy versions, rosters, outcomes, packet checks.

* The **policy key** (Ed25519, ``keys/policy.key`` and ``.pub``) is made at ``central init``, separate
  from the receipt key; stations pin its public half at provisioning. A home made before it existed
  gets one the first time it is needed.
* :meth:`PolicyOffice.set_policy` validates a document strictly, refuses one that would make an
  enrollment impossible, and stores it as the next version (versions only go up).
* :meth:`PolicyOffice.bundle_for` signs one station's bundle: the newest policy plus that station's
  roster; :meth:`PolicyOffice.outcomes_for` signs the outcomes a station has not seen yet.
* :meth:`PolicyOffice.check_packet` checks a finalised packet's capture summary against the policy
  version it names (the receipt is given regardless; a failure is an ops alert).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from station.policy import BUILTIN, Policy, PolicyError, check_summary, ensure_feasible
from station.policy.bundle import ROSTER_STATES, Bundle, sign_bundle, valid_operator_id
from station.policy.parse import policy_from_document
from station.policy.rules import CaptureSummary
from station.policy.signed import OUTCOMES, sign_document
from sync.central.home import CentralError, CentralHome, write_atomic
from sync.central.storage import OutcomeRow, PolicyRow, Storage, VersionNotNewer

OUTCOME_KINDS = ("accepted", "re-enroll", "rejected")
REENROLL_REASONS = ("face_quality", "finger_quality", "missing_document", "other")
MAX_NOTE = 200
MAX_OUTCOMES_PER_ANSWER = 500


def ensure_policy_key(home: CentralHome) -> ed25519.Ed25519PrivateKey:
    """The policy signing key, made (0600, with its public half) when the home has none yet."""
    path, pub = home.root / "keys" / "policy.key", home.root / "keys" / "policy.pub"
    if not path.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        write_atomic(
            path,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            mode=0o600,
        )
        write_atomic(pub, policy_public_pem(key), mode=0o644)
        return key
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, ed25519.Ed25519PrivateKey):
        raise CentralError(
            f"{path} is not an Ed25519 key: restore the policy key from the backup", code="policy.bad_key"
        )
    return loaded


def policy_public_pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def canonical_json(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Outcome:
    outcome: str
    reason: str
    note: str = ""


def check_outcome(outcome: Any, reason: Any, note: Any) -> Outcome:
    """A valid outcome or ``ValueError`` saying what is wrong (codes, no free text but a short note)."""
    if outcome not in OUTCOME_KINDS:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOME_KINDS)}")
    if not isinstance(reason, str) or not isinstance(note, str):
        raise ValueError("reason and note must be text")
    if len(note) > MAX_NOTE or any(ord(c) < 32 for c in note):
        raise ValueError(f"the note must be one line of at most {MAX_NOTE} characters")
    if outcome == "re-enroll":
        if reason not in REENROLL_REASONS:
            raise ValueError(f"a re-enroll reason is one of {', '.join(REENROLL_REASONS)}")
        if reason == "other" and not note.strip():
            raise ValueError("a re-enroll for 'other' needs a note")
    elif outcome == "rejected":
        if not reason.strip() or len(reason) > 40 or not reason.replace("_", "").replace("-", "").isalnum():
            raise ValueError("a rejection needs a reason code (letters, digits, '_' or '-', at most 40)")
    elif reason not in ("", "-"):
        raise ValueError("an accepted packet takes no reason")
    return Outcome(outcome, "" if outcome == "accepted" else reason, note.strip())


class PolicyOffice:
    """Policy, roster and outcomes over one central home and storage."""

    def __init__(self, home: CentralHome, storage: Storage) -> None:
        self.home = home
        self.storage = storage
        self._key: ed25519.Ed25519PrivateKey | None = None
        self._cache: dict[int, Policy] = {}

    @property
    def key(self) -> ed25519.Ed25519PrivateKey:
        if self._key is None:
            self._key = ensure_policy_key(self.home)
        return self._key

    # -- policy versions --------------------------------------------------------------------------
    def current(self) -> Policy:
        """The newest policy set at central, else the built-in one (version 0, never sent)."""
        row = self.storage.policy_latest()
        return BUILTIN if row is None else self._parse(row)

    def policy(self, version: int) -> Policy | None:
        if version == 0:
            return BUILTIN
        if version not in self._cache:
            row = self.storage.policy_get(version)
            if row is None:
                return None
            self._cache[version] = self._parse(row)
        return self._cache[version]

    @staticmethod
    def _parse(row: PolicyRow) -> Policy:
        return policy_from_document(json.loads(row.document))

    def set_policy(self, document: Any, *, by: str = "cli", now: float | None = None) -> Policy:
        """Validate ``document`` and store it as the next version; :class:`PolicyError` if refused."""
        if not isinstance(document, dict):
            raise PolicyError("The policy file must hold one JSON object.", code="policy.invalid")
        current = self.current().version
        given = document.get("version")
        version = current + 1
        if given is not None and given != version:
            raise PolicyError(
                f"The file says version {given!r} but the next version is {version}: versions only go up"
                " by one; remove the version or set it to the next one.",
                code="policy.version",
            )
        policy = policy_from_document({**document, "version": version})
        ensure_feasible(policy)
        try:
            self.storage.policy_add(
                PolicyRow(
                    version, canonical_json(policy.to_document()), time.time() if now is None else now, by
                )
            )
        except VersionNotNewer as exc:
            raise PolicyError(
                f"Another policy was set meanwhile ({exc}): set it again.", code="policy.race"
            ) from exc
        return policy

    # -- bundles ----------------------------------------------------------------------------------
    def versions_for(self, station_id: str) -> tuple[int, int]:
        """(policy version, roster version) a station should hold: what the heartbeat answer names."""
        row = self.storage.policy_latest()
        roster_version, _ = self.storage.roster(station_id)
        return (0 if row is None else row.version), roster_version

    def bundle_for(self, station_id: str, *, now: float | None = None) -> bytes | None:
        """The signed bundle for ``station_id``; None while central has set no policy."""
        policy = self.current()
        if policy.version == 0:
            return None
        roster_version, roster = self.storage.roster(station_id)
        issued = int(time.time() if now is None else now)
        return sign_bundle(Bundle(station_id, issued, policy, roster_version, roster), self.key)

    # -- roster -----------------------------------------------------------------------------------
    def set_operator(self, station_id: str, operator_id: str, state: str) -> int:
        if state not in ROSTER_STATES:
            raise CentralError(
                f"an operator's state is one of {', '.join(ROSTER_STATES)}", code="operator.bad_state"
            )
        if not valid_operator_id(operator_id):
            raise CentralError(
                "an operator id is 1-32 letters, digits, '.', '_' or '-' (as set at the station)",
                code="operator.bad_id",
            )
        return self.storage.roster_set(station_id, operator_id, state, time.time())

    # -- outcomes ---------------------------------------------------------------------------------
    def set_outcome(
        self,
        packet_id: str,
        outcome: Outcome,
        *,
        by: str,
        station_id: str | None = None,
        decided_at: str | None = None,
    ) -> OutcomeRow:
        """Record what became of a stored packet; :class:`CentralError` when no such packet is stored."""
        found = [p for p in self.storage.find_packet(packet_id) if station_id in (None, p.station_id)]
        if not found:
            raise CentralError(
                f"no packet {packet_id} is stored: check the packet id", code="outcome.unknown_packet"
            )
        if len(found) > 1:
            raise CentralError(
                f"packet id {packet_id} is stored for several stations: name the station",
                code="outcome.ambiguous_packet",
            )
        stored = found[0]
        when = decided_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return self.storage.outcome_set(
            OutcomeRow(
                0, packet_id, stored.station_id, outcome.outcome, outcome.reason, outcome.note, when, by
            )
        )

    def outcomes_for(self, station_id: str, after: int) -> bytes:
        """A signed list of the station's outcomes with a sequence number above ``after``."""
        rows = self.storage.outcomes_after(station_id, after, MAX_OUTCOMES_PER_ANSWER)
        document = {
            "station_id": station_id,
            "after": after,
            "outcomes": [
                {
                    "seq": r.seq,
                    "packet_id": r.packet_id,
                    "outcome": r.outcome,
                    "reason": r.reason,
                    "note": r.note,
                    "decided_at": r.decided_at,
                }
                for r in rows
            ],
            "more": len(rows) == MAX_OUTCOMES_PER_ANSWER,
        }
        return sign_document(OUTCOMES, document, self.key)

    # -- packet checks ----------------------------------------------------------------------------
    def check_packet(self, summary: CaptureSummary) -> list[str]:
        """Why a packet with ``summary`` does not satisfy the policy version it names (empty: it does)."""
        policy = self.policy(summary.policy_version)
        if policy is None:
            return [f"names policy version {summary.policy_version}, which central never set"]
        return check_summary(policy, summary)
