"""Retention: keep no more than needed for as long as needed.

An envelope central has acknowledged is kept ``retention_days`` (config, default 7) after its ack,
in case central asks for it again; then its bytes are dropped (the row, with the receipt, stays as
proof of delivery), the WAL is checkpointed and truncated, and ``secure_delete`` has zeroed the
freed pages: no byte of a purged envelope remains in the database or WAL file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from station.session import Station

DAY = 86_400.0


@dataclass(frozen=True)
class PurgeResult:
    purged: list[str]
    retention_days: int


def purge(station: Station, *, retention_days: int | None = None, now: float | None = None) -> PurgeResult:
    days = station.config.retention_days if retention_days is None else retention_days
    now = time.time() if now is None else now
    with station.store.transaction():
        ids = station.store.purge_acked(now - days * DAY, now=now)
        if ids:
            station.audit.append("retention.purge", count=len(ids), days=days)
    station.store.checkpoint()
    return PurgeResult(ids, days)
