"""What ops look at: one status row per station with its alerts (used by CLI, dashboard, metrics).

Alerts: ``silent`` (no contact for more than a day), ``cert_expiring`` (within 7 days) or
``cert_expired``, ``conflict`` (same packet id, other content), ``audit_rewound`` / ``audit_broken``
(the station's audit chain went back or forked), ``revoked``.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sync.central.storage import Storage
from sync.common.wire import STATION_URI_PREFIX
from sync.pki.issue import IssuedCert

SILENT_AFTER_S = 86400.0
CERT_WARN_S = 7 * 86400.0
STORED_ALERTS = ("conflict", "audit_rewound", "audit_broken")


@dataclass
class StationStatus:
    station_id: str
    last_seen: float | None
    pending: int | None
    oldest_pending_age_s: float | None
    cert_not_after: float | None
    packets_stored: int
    version: str | None
    alerts: list[str] = field(default_factory=list)
    partial_uploads: int = 0  # unfinished uploads held at central for this station

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def iso_utc(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = max(0.0, seconds)
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    if s < 172800:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"


def station_statuses(
    storage: Storage, issued: dict[str, IssuedCert], *, now: float | None = None
) -> list[StationStatus]:
    """Every station that was issued a certificate or has been seen, with computed alerts."""
    t = time.time() if now is None else now
    rows = {r.station_id: r for r in storage.stations()}
    certs = {s[len(STATION_URI_PREFIX) :]: c for s, c in issued.items() if s.startswith(STATION_URI_PREFIX)}
    unfinished: dict[str, int] = {}
    for p in storage.partials():
        unfinished[p.station_id] = unfinished.get(p.station_id, 0) + 1
    stored_alerts: dict[str, list[str]] = {}
    for alert in storage.alerts():
        kinds = stored_alerts.setdefault(alert.station_id, [])
        if alert.kind not in kinds:
            kinds.append(alert.kind)
    out: list[StationStatus] = []
    for sid in sorted(set(rows) | set(certs)):
        row = rows.get(sid)
        cert = certs.get(sid)
        hb = (row.heartbeat if row else None) or {}
        counts = hb.get("counts") or {}
        pending = int(counts.get("sealed", 0)) + int(counts.get("uploading", 0)) if hb else None
        age = hb.get("oldest_pending_age_s")
        cert_end = cert.not_after.timestamp() if cert else None
        status = StationStatus(
            station_id=sid,
            last_seen=row.last_seen if row else None,
            pending=pending,
            oldest_pending_age_s=None if age is None else float(age),
            cert_not_after=cert_end,
            packets_stored=row.packets_stored if row else 0,
            version=hb.get("version") if hb else None,
            partial_uploads=unfinished.get(sid, 0),
        )
        if status.last_seen is None or t - status.last_seen > SILENT_AFTER_S:
            status.alerts.append("silent")
        if cert is not None and cert.revoked_at is not None:
            status.alerts.append("revoked")
        elif cert_end is not None and cert_end <= t:
            status.alerts.append("cert_expired")
        elif cert_end is not None and cert_end - t <= CERT_WARN_S:
            status.alerts.append("cert_expiring")
        status.alerts.extend(stored_alerts.get(sid, []))
        out.append(status)
    return out


def format_table(statuses: list[StationStatus], *, now: float | None = None) -> str:
    t = time.time() if now is None else now
    header = ("STATION", "LAST SEEN", "PENDING", "OLDEST", "CERT EXPIRES", "STORED", "UNFINISHED", "ALERTS")
    lines = [header]
    for s in statuses:
        seen = "never" if s.last_seen is None else f"{human_age(t - s.last_seen)} ago"
        lines.append(
            (
                s.station_id,
                seen,
                "-" if s.pending is None else str(s.pending),
                human_age(s.oldest_pending_age_s),
                iso_utc(s.cert_not_after),
                str(s.packets_stored),
                str(s.partial_uploads),
                ",".join(s.alerts) or "ok",
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in lines]
    if len(lines) == 1:
        text.append("(no stations yet: issue a token with 'central token new --station ID')")
    return "\n".join(text)
