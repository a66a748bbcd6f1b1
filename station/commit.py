"""Commit an enrollment: validate, seal for central, sign, and queue it with its audit event.

Validation is against the policy in force (``station.policy.policy_in_force``); the packet records that
policy's version in its document and, with the non-PII capture summary, in its signed header (format 2),
so central can check it against the policy without opening it.

The packet row and the ``enrollment.commit`` audit entry are written in one transaction: after a
power cut either both exist or neither does. Nothing of the plaintext is written anywhere.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from packetformat.packet import PacketSummary, packet_digest, seal
from station.enrollment import Enrollment, ensure_valid
from station.policy import policy_in_force
from station.policy.rules import summary_of
from station.session import Station


@dataclass(frozen=True)
class Committed:
    packet_id: str
    created_at: int
    size: int
    sha256: str


def commit_enrollment(station: Station, enrollment: Enrollment) -> Committed:
    """Seal ``enrollment`` to the central office and queue it. Raises StationError on any problem."""
    station.check_disk()
    if enrollment.station_id != station.station_id:  # the packet always names the station sealing it
        enrollment = dataclasses.replace(enrollment, station_id=station.station_id)
    policy = policy_in_force(station.store).policy  # the kiosk's wizard took the same one at its start
    if enrollment.policy_version != policy.version:
        enrollment = dataclasses.replace(enrollment, policy_version=policy.version)
    ensure_valid(enrollment, policy=policy)
    summary = summary_of(policy, enrollment)
    public, suite = station.central_public_key()
    document = enrollment.to_document()
    sealed = seal(
        document,
        station_id=station.station_id,
        identity_key=station.keys.identity_key(),
        recipient_public_key=public,
        suite=suite,
        created_at=int(time.time()),
        summary=PacketSummary(
            policy_version=summary.policy_version,
            kind=summary.kind,
            age_band=summary.age_band,
            face=int(summary.face),
            fingers_captured=summary.fingers_captured,
            finger_exceptions=summary.finger_exceptions,
            iris=summary.iris,
            signoffs=summary.signoffs,
        ),
    )
    digest = packet_digest(sealed.envelope)
    with station.store.transaction():
        station.store.add_packet(sealed.packet_id, sealed.envelope, digest, float(sealed.created_at))
        station.audit.append(
            "enrollment.commit",
            packet=sealed.packet_id,
            operator=enrollment.operator_id or "-",
            entered_by=enrollment.entered_by,
            fingers=sum(1 for v in enrollment.fingers.values() if not hasattr(v, "reason")),
        )
    return Committed(sealed.packet_id, sealed.created_at, len(sealed.envelope), digest)
