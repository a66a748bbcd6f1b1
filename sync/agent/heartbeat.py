"""The heartbeat: what central ops see of a station every few minutes.

Counts per packet state, the age of the oldest packet not yet acked, the last successful sync, free
disk, device presence, software version, certificate expiry and the audit chain head (so central
can tell a rewritten history). Device presence is read from the system (device nodes, sysfs) without
opening anything: the kiosk owns the devices. No personal data goes in a heartbeat.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from station import __version__
from sync.agent.uploader import iso_utc
from sync.common import wire


class HeartbeatStore(Protocol):
    def counts(self) -> dict[str, int]: ...
    def oldest_pending_created_at(self) -> float | None: ...
    def meta_get(self, key: str) -> str | None: ...


def iso(ts: float) -> str:
    return iso_utc(ts)


def _usb_present(vid: str, pid: str, sysfs: Path) -> bool:
    root = sysfs / "bus" / "usb" / "devices"
    if not root.is_dir():
        return False
    for dev in root.iterdir():
        try:
            v = (dev / "idVendor").read_text().strip().lower()
            p = (dev / "idProduct").read_text().strip().lower()
        except OSError:
            continue
        if v == vid.lower() and p == pid.lower():
            return True
    return False


def device_state(url: str, *, sysfs: Path = Path("/sys")) -> str:
    """``ok``, ``missing``, ``simulated``, ``unconfigured`` or ``unknown`` for a device URL."""
    if not url:
        return "unconfigured"
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme == "sim":
        return "simulated"
    if scheme in ("serial", "camera"):
        path = Path(parts.path)
        return "ok" if path.exists() else "missing"
    if scheme == "usb":
        ids = parts.netloc.split(":")
        if len(ids) == 2 and all(len(i) == 4 for i in ids):
            return "ok" if _usb_present(ids[0], ids[1], sysfs) else "missing"
    return "unknown"


def build_heartbeat(
    *,
    store: HeartbeatStore,
    station_id: str,
    now: float,
    disk_path: Path,
    devices: dict[str, str],
    cert_not_after: dt.datetime | None,
    audit_head: tuple[int, str],
    version: str = __version__,
    disk_free: Callable[[Path], int] = lambda p: shutil.disk_usage(p).free,
) -> wire.Heartbeat:
    counts = store.counts()
    oldest = store.oldest_pending_created_at()
    seq, head = audit_head
    return wire.Heartbeat(
        station_id=station_id,
        sent_at=iso(now),
        counts={state: int(counts.get(state, 0)) for state in wire.PACKET_STATES},
        oldest_pending_age_s=None if oldest is None else max(0.0, now - oldest),
        last_sync_at=store.meta_get("last_sync_at"),
        disk_free_bytes=disk_free(disk_path),
        devices=dict(devices),
        version=version,
        cert_not_after=""
        if cert_not_after is None
        else cert_not_after.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        audit_head=head,
        audit_seq=seq,
    )


CENTRAL_AUDIT_SEQ = "central_audit_seq"  # meta: the audit head central last accepted


def signed_audit(beat: wire.Heartbeat, audit: Any, store: HeartbeatStore, key: Any) -> wire.Heartbeat:
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
