"""The fleet half of the PostgreSQL backend: station registry, fleet queries, per-day counts.

Mixed into :class:`sync.central.pg_storage.PgStorage` (which owns the pool). The SQL is the same
as SQLite's (:mod:`sync.central.fleet_sql`) with ``%s`` placeholders; ``ingest_days`` has one row
per day and shard (:func:`ingest_shard`), so commits of different stations on several nodes do
not queue on one counter row.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from sync.central.pg_storage import Conn

INGEST_SHARDS = 16


def ingest_shard(station_id: str) -> int:
    return zlib.crc32(station_id.encode()) % INGEST_SHARDS


def count_packet_in(conn: Conn, station_id: str, received_at: str, size: int, now: float) -> None:
    """Inside a packet's commit transaction: its station's count and the day's count."""
    conn.execute(
        "INSERT INTO stations(station_id, created_at, last_seen, packets_stored, last_packet_at)"
        " VALUES (%s,%s,%s,1,%s) ON CONFLICT (station_id) DO UPDATE SET"
        " packets_stored=stations.packets_stored + 1, last_packet_at=excluded.last_packet_at",
        (station_id, now, now, now),
    )
    conn.execute(
        "INSERT INTO ingest_days(day, shard, packets, bytes) VALUES (%s,%s,1,%s)"
        " ON CONFLICT (day, shard) DO UPDATE SET"
        " packets=ingest_days.packets + 1, bytes=ingest_days.bytes + excluded.bytes",
        (received_at[:10], ingest_shard(station_id), size),
    )


class PgFleet:
    """Fleet methods of the :class:`~sync.central.storage.Storage` Protocol for PostgreSQL."""

    pool: ConnectionPool[Conn]

    def _one(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> tuple[Any, ...] | None:
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def _run(self, sql: str, params: tuple[Any, ...]) -> int:
        with self.pool.connection() as conn:
            return conn.execute(sql, params).rowcount

    def register_station(self, station_id: str, location: Location, now: float) -> None:
        self._run(
            "INSERT INTO stations(station_id, created_at, district, tehsil, union_council, label,"
            " registered_at) VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (station_id) DO UPDATE SET"
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
        return (
            self._run(
                "UPDATE stations SET district=%s, tehsil=%s, union_council=%s, label=%s, moved_at=%s,"
                " registered_at=coalesce(registered_at, %s) WHERE station_id=%s",
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
            == 1
        )

    def retire_station(self, station_id: str, reason: str, now: float) -> bool:
        return (
            self._run(
                "UPDATE stations SET retired_at=%s, retire_reason=%s, revoked_at=coalesce(revoked_at, %s)"
                " WHERE station_id=%s AND retired_at IS NULL",
                (now, reason, now, station_id),
            )
            == 1
        )

    def record_certificate(self, station_id: str, not_after: float, now: float) -> None:
        self._run(
            "INSERT INTO stations(station_id, created_at, cert_not_after) VALUES (%s,%s,%s)"
            " ON CONFLICT (station_id) DO UPDATE SET cert_not_after=excluded.cert_not_after,"
            " revoked_at=CASE WHEN stations.retired_at IS NULL THEN NULL ELSE stations.revoked_at END",
            (station_id, now, not_after),
        )

    def mark_revoked(self, station_id: str, now: float) -> None:
        self._run(
            "UPDATE stations SET revoked_at=coalesce(revoked_at, %s) WHERE station_id=%s", (now, station_id)
        )

    def station_state(self, station_id: str) -> str | None:
        row = self._one("SELECT retired_at, registered_at FROM stations WHERE station_id=%s", (station_id,))
        if row is None:
            return None
        if row[0] is not None:
            return "retired"
        return "registered" if row[1] is not None else "known"

    def fleet_summary(self, th: Thresholds, flt: StationFilter, now: float) -> FleetSummary:
        sql, params = fleet_sql.summary(th, flt, now, "%s")
        osql, oparams = fleet_sql.oldest(th, flt, now, "%s")
        with self.pool.connection() as conn:
            row = conn.execute(sql, params).fetchone()
            oldest = conn.execute(osql, oparams).fetchone()
            today = conn.execute(
                "SELECT coalesce(sum(packets), 0) FROM ingest_days WHERE day=%s", (utc_day(now),)
            ).fetchone()
        assert row is not None
        return summary_from_row(tuple(row), int(today[0]) if today else 0, oldest)

    def station_page(
        self, th: Thresholds, flt: StationFilter, now: float, offset: int, limit: int
    ) -> StationPage:
        sql, params = fleet_sql.page(th, flt, now, "%s", offset, limit)
        csql, cparams = fleet_sql.count(th, flt, now, "%s")
        with self.pool.connection() as conn:
            rows = conn.execute(sql, params).fetchall()
            total = conn.execute(csql, cparams).fetchone()
        assert total is not None
        return StationPage(int(total[0]), offset, [status_from_row(tuple(r)) for r in rows])

    def station_status(self, th: Thresholds, station_id: str, now: float) -> StationStatus | None:
        sql, _ = fleet_sql.page(th, StationFilter(), now, "%s", 0, 1)
        sql = sql.replace(" ORDER BY", " WHERE t.station_id = %s ORDER BY", 1)
        row = self._one(sql, (station_id,))
        return None if row is None else status_from_row(tuple(row))

    def district_rollup(self, th: Thresholds, now: float, max_districts: int) -> list[DistrictRow]:
        return rollup_from_rows(self._all(fleet_sql.rollup(th, now, max_districts)))

    def ingest_per_day(self, now: float, days: int) -> list[tuple[str, int]]:
        keys = last_days(now, days)
        rows = self._all(
            "SELECT day, sum(packets) FROM ingest_days WHERE day >= %s AND day <= %s GROUP BY day",
            (keys[0], keys[-1]),
        )
        got = {str(d): int(n) for d, n in rows}
        return [(d, got.get(d, 0)) for d in keys]

    def station_alert_log(self, station_id: str, limit: int) -> list[tuple[str, str, float]]:
        rows = self._all(
            "SELECT kind, detail, created_at FROM alerts WHERE station_id=%s ORDER BY id DESC LIMIT %s",
            (station_id, limit),
        )
        return [(str(k), str(d), float(t)) for k, d, t in rows]
