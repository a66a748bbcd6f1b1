"""The policy in force on this station, and installing a newer bundle from central.

:func:`policy_in_force` is the one accessor the wizard, ``station enroll``, the kiosk and the agent use:
the newest bundle in the station's encrypted database, or the built-in default when central has never
sent one. :func:`install_bundle` verifies a bundle against the policy key pinned at provisioning,
refuses one lower than what is held (policy version or roster version), and stores it with its
``policy.installed`` audit entry in one transaction; a replay of what is in force changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from station.home import PkiLayout
from station.policy.bundle import Bundle, open_bundle, read_stored_bundle
from station.policy.default import BUILTIN
from station.policy.model import Policy, PolicyError


class _Store(Protocol):
    def select(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...
    def transaction(self) -> Any: ...


class _Audit(Protocol):
    def append(self, event: str, **fields: Any) -> Any: ...


@dataclass(frozen=True)
class InForce:
    """What this station enforces now: the policy, the roster that came with it, and since when."""

    policy: Policy
    source: str  # "builtin" or "central"
    installed_at: float | None = None
    roster_version: int = 0
    roster: Mapping[str, str] = field(default_factory=dict)
    issued_at: int | None = None

    @property
    def version(self) -> int:
        return self.policy.version

    def operator_disabled(self, operator_id: str) -> bool:
        """Central disabled this operator for this station (unlisted operators stay allowed)."""
        return self.roster.get(operator_id) == "disabled"


BUILTIN_IN_FORCE = InForce(BUILTIN, "builtin")


def policy_in_force(store: _Store) -> InForce:
    """The newest installed bundle, or the built-in default."""
    rows = store.select(
        "SELECT bundle, installed_at FROM policy_bundles ORDER BY version DESC, roster_version DESC LIMIT 1"
    )
    if not rows:
        return BUILTIN_IN_FORCE
    bundle = read_stored_bundle(bytes(rows[0][0]))
    return InForce(
        bundle.policy,
        "central",
        float(rows[0][1]),
        bundle.roster_version,
        dict(bundle.roster),
        bundle.issued_at,
    )


def policy_history(store: _Store) -> list[tuple[int, int, float]]:
    """(policy version, roster version, installed_at) of every bundle installed, oldest first."""
    rows = store.select(
        "SELECT version, roster_version, installed_at FROM policy_bundles ORDER BY installed_at, version"
    )
    return [(int(r[0]), int(r[1]), float(r[2])) for r in rows]


def load_policy_key(pki_dir: Path) -> ed25519.Ed25519PublicKey | None:
    """The policy key pinned at provisioning (``pki/policy.pub``), None on a station provisioned without."""
    path = PkiLayout(pki_dir).policy_pub
    if not path.is_file():
        return None
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise PolicyError(
            f"{path} is not an Ed25519 public key: re-provision the station.", code="policy.key"
        )
    return key


@dataclass(frozen=True)
class Installed:
    changed: bool
    bundle: Bundle
    previous_version: int
    previous_roster_version: int


def install_bundle(
    store: _Store,
    audit: _Audit,
    envelope: bytes,
    public_key: ed25519.Ed25519PublicKey,
    *,
    station_id: str,
    now: float | None = None,
) -> Installed:
    """Verify and store ``envelope``; :class:`PolicyError` (nothing changed) when it must be refused."""
    bundle = open_bundle(envelope, public_key, station_id=station_id)
    with store.transaction():
        current = policy_in_force(store)
        held_v, held_r = (current.version, current.roster_version) if current.source == "central" else (0, 0)
        new_v, new_r = bundle.policy.version, bundle.roster_version
        if new_v < held_v or new_r < held_r:
            raise PolicyError(
                f"Central sent policy {new_v} (roster {new_r}) but this station holds {held_v} (roster"
                f" {held_r}): an older policy is never installed. Nothing was changed.",
                code="policy.older",
            )
        if (new_v, new_r) == (held_v, held_r):
            return Installed(False, bundle, held_v, held_r)
        stamp = time.time() if now is None else now
        with store.transaction() as conn:
            conn.execute(
                "INSERT INTO policy_bundles (version, roster_version, bundle, installed_at)"
                " VALUES (?, ?, ?, ?)",
                (new_v, new_r, envelope, stamp),
            )
        audit.append("policy.installed", version=new_v, roster=new_r, previous=held_v)
    return Installed(True, bundle, held_v, held_r)
