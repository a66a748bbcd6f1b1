"""After each heartbeat: fetch what central says is newer (policy bundle, outcomes) and install it.

Central's heartbeat answer names the policy version and roster version this station should hold and
the highest outcome sequence number of its packets. When either version is above what the station
holds, the agent fetches ``GET /v1/policy``, verifies it against the policy key pinned at
provisioning and installs it (``station.policy.install_bundle``: an older or other-station bundle is
refused and nothing changes, a replay is a no-op); when the outcome sequence is above the one held,
it pulls ``GET /v1/outcomes?after=N`` (bounded rounds) and stores them beside the packets. Every
refusal is audited with its code and never stops the agent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519

from station.errors import StationError
from station.outcomes import held_seq, install_outcomes
from station.policy import install_bundle, policy_in_force
from sync.common import wire

log = logging.getLogger("sync.agent.follow")
MAX_OUTCOME_ROUNDS = 20


class FollowClient(Protocol):
    def policy_bundle(self) -> bytes | None: ...
    def outcomes(self, after: int) -> bytes: ...


class _Audit(Protocol):
    def append(self, event: str, **fields: Any) -> Any: ...


@dataclass
class Followed:
    policy_installed: int | None = None  # the policy version installed by this round, if any
    outcomes_stored: int = 0
    refused: list[str] = field(default_factory=list)  # codes


def follow_central(
    client: FollowClient,
    store: Any,
    audit: _Audit,
    *,
    station_id: str,
    policy_key: ed25519.Ed25519PublicKey | None,
    answer: wire.HeartbeatAnswer,
) -> Followed:
    """Bring the station up to what ``answer`` names; :class:`~station.errors.StationError` never escapes
    for a refused document (it is audited and reported in :attr:`Followed.refused`)."""
    done = Followed()
    if policy_key is None:
        if answer.policy_version or answer.outcomes_seq:
            done.refused.append("policy.no_key")
            log.warning("central has a policy but this station has no pinned policy key: re-provision it")
        return done
    current = policy_in_force(store)
    held = (current.version, current.roster_version) if current.source == "central" else (0, 0)
    if (answer.policy_version, answer.roster_version) != held and answer.policy_version > 0:
        if answer.policy_version >= held[0] and answer.roster_version >= held[1]:
            bundle = client.policy_bundle()
            if bundle is not None:
                try:
                    installed = install_bundle(store, audit, bundle, policy_key, station_id=station_id)
                except StationError as exc:
                    audit.append("policy.refused", code=exc.code)
                    log.warning("policy bundle refused: %s", exc.code)
                    done.refused.append(exc.code)
                else:
                    if installed.changed:
                        done.policy_installed = installed.bundle.policy.version
                        log.info(
                            "policy %d (roster %d) installed",
                            installed.bundle.policy.version,
                            installed.bundle.roster_version,
                        )
        else:  # central names something lower than what we hold: never go back
            audit.append("policy.refused", code="policy.older", version=answer.policy_version)
            done.refused.append("policy.older")
    for _ in range(MAX_OUTCOME_ROUNDS):
        after = held_seq(store)
        if answer.outcomes_seq <= after:
            break
        try:
            stored, more = install_outcomes(
                store, audit, client.outcomes(after), policy_key, station_id=station_id
            )
        except StationError as exc:  # the list itself was refused; the client's AgentError propagates
            audit.append("outcomes.refused", code=exc.code)
            log.warning("outcome list refused: %s", exc.code)
            done.refused.append(exc.code)
            break
        done.outcomes_stored += stored
        if not more and stored == 0:
            break
    return done
