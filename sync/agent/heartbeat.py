"""The heartbeat: what central ops see of a station every few minutes.

The station's status snapshot (``station.status.StationStatus``, the same one ``station status``,
the kiosk and the doctor show) rendered for the wire: counts per packet state, the age of the oldest
packet not yet acked, the last successful sync, free disk, device presence, software version,
certificate expiry and the audit chain head (so central can tell a rewritten history). Device
presence is read from the system (``drivers.discovery.presence``) without opening anything: the
kiosk owns the devices. No personal data goes in a heartbeat.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from station.status import StationStatus
from sync.agent.uploader import iso_utc
from sync.common import wire


def iso(ts: float) -> str:
    return iso_utc(ts)


def build_heartbeat(status: StationStatus) -> wire.Heartbeat:
    """The heartbeat rendering of the station's status snapshot (``station.status``), sent at the
    moment it was taken. A snapshot without its queue has no heartbeat (the agent holds the queue)."""
    queue = status.queue
    if queue is None:
        raise ValueError("a heartbeat needs the queue's part of the status")
    not_after = status.certificate.not_after
    return wire.Heartbeat(
        station_id=status.station_id,
        sent_at=iso(status.taken_at),
        counts={state: int(queue.counts.get(state, 0)) for state in wire.PACKET_STATES},
        oldest_pending_age_s=queue.oldest_pending_age_s,
        last_sync_at=queue.last_sync_at,
        disk_free_bytes=status.disk.free_bytes,
        devices=dict(status.devices),
        version=status.version,
        cert_not_after=""
        if not_after is None
        else not_after.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        audit_head=queue.audit_head,
        audit_seq=queue.audit_seq,
    )


CENTRAL_AUDIT_SEQ = "central_audit_seq"  # meta: the audit head central last accepted


class MetaStore(Protocol):
    def meta_get(self, key: str) -> str | None: ...


def signed_audit(beat: wire.Heartbeat, audit: Any, store: MetaStore, key: Any) -> wire.Heartbeat:
    """``beat`` with the audit head signed by the identity key and the chain segment since the head
    central last accepted (at most ``MAX_SEGMENT`` entries: the head sent is the segment's end, and
    the next heartbeats catch up)."""
    from dataclasses import replace

    from packetformat.auditchain import MAX_SEGMENT, sign_head

    try:
        accepted = int(store.meta_get(CENTRAL_AUDIT_SEQ) or -1)
    except ValueError:
        accepted = -1
    if not 0 <= accepted <= beat.audit_seq:
        # Unknown (first signed heartbeat) or ahead of us (the queue was rolled back): the newest
        # entries, which central checks against the head it holds.
        accepted = max(0, beat.audit_seq - MAX_SEGMENT)
    entries = list(audit.entries(after=accepted, limit=MAX_SEGMENT))
    segment = tuple(
        (
            e.seq,
            repr(e.at),
            e.event,
            json.dumps(e.fields, sort_keys=True, separators=(",", ":")),
            e.prev,
            e.hash,
        )
        for e in entries
    )
    seq, head = (entries[-1].seq, entries[-1].hash) if entries else (beat.audit_seq, beat.audit_head)
    signature = sign_head(key, beat.station_id, seq, head)
    return replace(
        beat, audit_seq=seq, audit_head=head, audit_sig=wire.b64e(signature), audit_segment=segment
    )
