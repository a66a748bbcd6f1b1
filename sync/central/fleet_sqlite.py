"""The fleet half of the embedded SQLite backend: station registry, fleet queries, per-day counts.

Mixed into :class:`sync.central.storage.SqliteStorage` (which owns the connection and its lock).
The ``stations`` table has the registry columns (district, tehsil, union council, label,
registration and retirement) and the latest heartbeat's numbers in columns (migration
``0003_fleet``), so the fleet views are SQL over one table (:mod:`sync.central.fleet_sql`);
``ingest_days`` keeps packets and bytes per UTC day, written in the same transaction as each
packet row.
"""

from __future__ import annotations

import sqlite3
import threading

from sync.central import fleet_sql
from sync.central.fleet import (
    DistrictRow,
    FleetSummary,
    Location,
    StationFilter,
    StationPage,
    StationStatus,
    Thresholds,
    last_days,
    utc_day,
)
from sync.central.fleet_sql import rollup_from_rows, status_from_row, summary_from_row


class SqliteFleet:
    """Fleet methods of the :class:`~sync.central.storage.Storage` Protocol for SQLite."""

    _conn: sqlite3.Connection
    _lock: threading.RLock

    def register_station(self, station_id: str, location: Location, now: float) -> None:
        """Create the station's registry entry, or set its location if it has one (token new)."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO stations(station_id, created_at, district, tehsil, union_council, label,"
                " registered_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT(station_id) DO UPDATE SET"
                " district=excluded.district, tehsil=excluded.tehsil, union_council=excluded.union_council,"
                " label=excluded.label,"
                " registered_at=coalesce(stations.registered_at, excluded.registered_at)",
                (
                    station_id,
                    now,
                    location.district,
                    location.tehsil,
                    location.union_council,
                    location.label,
                    now,
                ),
            )

    def move_station(self, station_id: str, location: Location, now: float) -> bool:
        with self._lock:
            cur = self._conn.execute(
                "UPDATE stations SET district=?, tehsil=?, union_council=?, label=?, moved_at=?,"
                " registered_at=coalesce(registered_at, ?) WHERE station_id=?",
                (
                    location.district,
                    location.tehsil,
                    location.union_council,
                    location.label,
                    now,
                    now,
                    station_id,
                ),
            )
            return cur.rowcount == 1

    def retire_station(self, station_id: str, reason: str, now: float) -> bool:
        with self._lock:
            cur = self._conn.execute(
                "UPDATE stations SET retired_at=?, retire_reason=?, revoked_at=coalesce(revoked_at, ?)"
                " WHERE station_id=? AND retired_at IS NULL",
                (now, reason, now, station_id),
            )
            return cur.rowcount == 1

    def record_certificate(self, station_id: str, not_after: float, now: float) -> None:
        """A certificate was issued to the station (enroll, renew, offline issue): expiry, not revoked."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO stations(station_id, created_at, cert_not_after) VALUES (?,?,?)"
                " ON CONFLICT(station_id) DO UPDATE SET cert_not_after=excluded.cert_not_after,"
                " revoked_at=CASE WHEN stations.retired_at IS NULL THEN NULL ELSE stations.revoked_at END",
                (station_id, now, not_after),
            )

    def mark_revoked(self, station_id: str, now: float) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE stations SET revoked_at=coalesce(revoked_at, ?) WHERE station_id=?", (now, station_id)
            )

    def station_state(self, station_id: str) -> str | None:
        """``retired``, ``registered`` (in the registry), ``known`` (seen or certified only) or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT retired_at, registered_at FROM stations WHERE station_id=?", (station_id,)
            ).fetchone()
        if row is None:
            return None
        if row[0] is not None:
            return "retired"
        return "registered" if row[1] is not None else "known"

    def fleet_summary(self, th: Thresholds, flt: StationFilter, now: float) -> FleetSummary:
        sql, params = fleet_sql.summary(th, flt, now, "?")
        osql, oparams = fleet_sql.oldest(th, flt, now, "?")
        with self._lock:
            row = self._conn.execute(sql, params).fetchone()
            oldest = self._conn.execute(osql, oparams).fetchone()
            today = self._conn.execute(
                "SELECT packets FROM ingest_days WHERE day=?", (utc_day(now),)
            ).fetchone()
        return summary_from_row(tuple(row), int(today[0]) if today else 0, oldest)

    def station_page(
        self, th: Thresholds, flt: StationFilter, now: float, offset: int, limit: int
    ) -> StationPage:
        sql, params = fleet_sql.page(th, flt, now, "?", offset, limit)
        csql, cparams = fleet_sql.count(th, flt, now, "?")
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
            total = int(self._conn.execute(csql, cparams).fetchone()[0])
        return StationPage(total, offset, [status_from_row(tuple(r)) for r in rows])

    def station_status(self, th: Thresholds, station_id: str, now: float) -> StationStatus | None:
        sql, _ = fleet_sql.page(th, StationFilter(), now, "?", 0, 1)
        sql = sql.replace(" ORDER BY", " WHERE t.station_id = ? ORDER BY", 1)
        with self._lock:
            row = self._conn.execute(sql, (station_id,)).fetchone()
        return None if row is None else status_from_row(tuple(row))

    def district_rollup(self, th: Thresholds, now: float, max_districts: int) -> list[DistrictRow]:
        with self._lock:
            rows = self._conn.execute(fleet_sql.rollup(th, now, max_districts)).fetchall()
        return rollup_from_rows([tuple(r) for r in rows])

    def ingest_per_day(self, now: float, days: int) -> list[tuple[str, int]]:
        keys = last_days(now, days)
        with self._lock:
            rows = self._conn.execute(
                "SELECT day, sum(packets) FROM ingest_days WHERE day >= ? AND day <= ? GROUP BY day",
                (keys[0], keys[-1]),
            ).fetchall()
        got = {str(d): int(n) for d, n in rows}
        return [(d, got.get(d, 0)) for d in keys]

    def station_alert_log(self, station_id: str, limit: int) -> list[tuple[str, str, float]]:
        """The stored alerts (conflict, audit) of one station, newest first: (kind, detail, time)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT kind, detail, created_at FROM alerts WHERE station_id=? ORDER BY id DESC LIMIT ?",
                (station_id, limit),
            ).fetchall()
        return [(str(k), str(d), float(t)) for k, d, t in rows]
