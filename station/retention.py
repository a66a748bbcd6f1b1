"""Retention: keep no more than needed for as long as needed.

An envelope central has acknowledged is kept ``retention_days`` (central's policy once it sent one, else
station.toml, default 7) after its ack,
in case central asks for it again; then its bytes are dropped (the row, with the receipt, stays as
proof of delivery), the WAL is checkpointed and truncated, and ``secure_delete`` has zeroed the
freed pages: no byte of a purged envelope remains in the database or WAL file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from station.policy import policy_in_force
from station.session import Station

DAY = 86_400.0


@dataclass(frozen=True)
class PurgeResult:
    purged: list[str]
    retention_days: int


def purge(station: Station, *, retention_days: int | None = None, now: float | None = None) -> PurgeResult:
    if retention_days is None:  # central's setting once it sent a policy, else station.toml's
        in_force = policy_in_force(station.store)
        central = in_force.source == "central"
        days = in_force.policy.settings.retention_days if central else station.config.retention_days
    else:
        days = retention_days
    now = time.time() if now is None else now
    with station.store.transaction():
        ids = station.store.purge_acked(now - days * DAY, now=now)
        if ids:
            station.audit.append("retention.purge", count=len(ids), days=days)
    station.store.checkpoint()
    return PurgeResult(ids, days)
