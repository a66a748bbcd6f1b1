"""The policy bundle: one station's signed policy and operator roster, as central sends it.

Payload of the ``es-policy-bundle/1`` signed document (``station/policy/signed.py``)::

    {"station_id": "uc-lhr-0421-01", "issued_at": 1767225600,
     "policy": {...policy document, with its version...},
     "roster_version": 3,
     "roster": [{"operator_id": "op-1", "state": "allowed"}, {"operator_id": "op-7", "state": "disabled"}]}

The bundle names its station, so a bundle of another station is refused; the policy version and the
roster version each only go up (a station refuses a bundle lower in either).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from station.policy.model import Policy, PolicyError
from station.policy.parse import policy_from_document
from station.policy.signed import POLICY_BUNDLE, open_document, read_unverified, sign_document

ROSTER_STATES = ("allowed", "disabled")
MAX_ROSTER = 1000
_OPERATOR_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_BUNDLE_KEYS = {"station_id", "issued_at", "policy", "roster_version", "roster"}


@dataclass(frozen=True)
class Bundle:
    station_id: str
    issued_at: int
    policy: Policy
    roster_version: int
    roster: Mapping[str, str] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        return {
            "station_id": self.station_id,
            "issued_at": self.issued_at,
            "policy": self.policy.to_document(),
            "roster_version": self.roster_version,
            "roster": [{"operator_id": o, "state": self.roster[o]} for o in sorted(self.roster)],
        }


def valid_operator_id(operator_id: Any) -> bool:
    return isinstance(operator_id, str) and bool(_OPERATOR_ID_RE.match(operator_id))


def _bad(what: str) -> PolicyError:
    return PolicyError(
        f"The policy bundle from central is malformed ({what}): it was not installed.",
        code="policy.malformed",
    )


def bundle_from_document(doc: dict[str, Any]) -> Bundle:
    if set(doc) != _BUNDLE_KEYS:
        raise _bad("wrong set of fields")
    sid, issued, rv, roster = doc["station_id"], doc["issued_at"], doc["roster_version"], doc["roster"]
    if not isinstance(sid, str) or not 0 < len(sid) <= 64:
        raise _bad("station_id")
    if type(issued) is not int or not 0 <= issued < 2**40:
        raise _bad("issued_at")
    if type(rv) is not int or not 0 <= rv < 2**53:
        raise _bad("roster_version")
    if not isinstance(roster, list) or len(roster) > MAX_ROSTER:
        raise _bad("roster")
    entries: dict[str, str] = {}
    for item in roster:
        if not isinstance(item, dict) or set(item) != {"operator_id", "state"}:
            raise _bad("a roster entry")
        if not valid_operator_id(item["operator_id"]) or item["state"] not in ROSTER_STATES:
            raise _bad("a roster entry")
        if item["operator_id"] in entries:
            raise _bad("an operator listed twice")
        entries[item["operator_id"]] = item["state"]
    policy = policy_from_document(doc["policy"])
    if policy.version < 1:
        raise _bad("a central policy has version 1 or more")
    return Bundle(sid, issued, policy, rv, entries)


def sign_bundle(bundle: Bundle, key: ed25519.Ed25519PrivateKey) -> bytes:
    return sign_document(POLICY_BUNDLE, bundle.to_document(), key)


def open_bundle(envelope: bytes, public_key: ed25519.Ed25519PublicKey, *, station_id: str) -> Bundle:
    """Verify and parse a bundle for ``station_id``; :class:`PolicyError` on anything wrong."""
    bundle = bundle_from_document(open_document(POLICY_BUNDLE, envelope, public_key))
    if bundle.station_id != station_id:
        raise PolicyError(
            "The policy bundle is for another station: it was not installed. Call a technician.",
            code="policy.other_station",
        )
    return bundle


def read_stored_bundle(envelope: bytes) -> Bundle:
    """A bundle the station verified when it installed it (read back from its encrypted database)."""
    return bundle_from_document(read_unverified(POLICY_BUNDLE, envelope))
