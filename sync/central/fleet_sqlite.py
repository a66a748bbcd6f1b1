"""The fleet half of the embedded SQLite backend: station registry, fleet queries, per-day counts.

Mixed into :class:`sync.central.storage.SqliteStorage` (which owns the connection and its lock).
The ``stations`` table gains the registry columns (district, tehsil, union council, label,
registration and retirement) and the latest heartbeat's numbers in columns, so the fleet views are
SQL over one table (:mod:`sync.central.fleet_sql`); ``ingest_days`` keeps packets and bytes per
UTC day, written in the same transaction as each packet row.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sync.central import fleet_sql
from sync.central.fleet import (
    ALERT_KINDS,
    STATES,
    DistrictRow,
    FleetSummary,
    Location,
    StationFilter,
    StationPage,
    StationStatus,
    Thresholds,
    last_days,
    skew_of,
    utc_day,
)
from sync.common.wire import Heartbeat

# Columns added to ``stations`` (name, SQLite type); existing homes get them by ALTER TABLE.
STATION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("created_at", "REAL"),
    ("district", "TEXT"),
    ("tehsil", "TEXT"),
    ("union_council", "TEXT"),
    ("label", "TEXT"),
    ("registered_at", "REAL"),
    ("moved_at", "REAL"),
    ("retired_at", "REAL"),
    ("retire_reason", "TEXT"),
    ("cert_not_after", "REAL"),
    ("revoked_at", "REAL"),
    ("heartbeat_at", "REAL"),
    ("pending", "INTEGER"),
    ("oldest_pending_age_s", "REAL"),
    ("disk_free_bytes", "INTEGER"),
    ("scanner", "TEXT"),
    ("camera", "TEXT"),
    ("clock_skew_s", "REAL"),
    ("version", "TEXT"),
    ("packets_stored", "INTEGER NOT NULL DEFAULT 0"),
    ("last_packet_at", "REAL"),
)
FLEET_INDEXES = """
CREATE TABLE IF NOT EXISTS ingest_days (
    day TEXT PRIMARY KEY, packets INTEGER NOT NULL, bytes INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS stations_district ON stations(district);
CREATE INDEX IF NOT EXISTS alerts_station_kind ON alerts(station_id, kind);
"""


def migrate_fleet(conn: sqlite3.Connection) -> None:
    """Add the fleet columns and tables to an existing (or new) ``central.db``; idempotent."""
    have = {str(r[1]) for r in conn.execute("PRAGMA table_info(stations)")}
    missing = [(n, t) for n, t in STATION_COLUMNS if n not in have]
    if not missing:
        conn.executescript(FLEET_INDEXES)
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for name, kind in missing:
            conn.execute(f"ALTER TABLE stations ADD COLUMN {name} {kind}")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS ingest_days"
            " (day TEXT PRIMARY KEY, packets INTEGER NOT NULL, bytes INTEGER NOT NULL)"
        )
        if "packets_stored" in dict(missing):  # a home from before the fleet columns: backfill once
            conn.execute("UPDATE stations SET created_at = last_seen WHERE created_at IS NULL")
            conn.execute(
                "UPDATE stations SET packets_stored ="
                " (SELECT count(*) FROM packets p WHERE p.station_id = stations.station_id)"
            )
            conn.execute(
                "INSERT OR REPLACE INTO ingest_days(day, packets, bytes)"
                " SELECT substr(received_at, 1, 10), count(*), coalesce(sum(size), 0) FROM packets"
                " GROUP BY substr(received_at, 1, 10)"
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.executescript(FLEET_INDEXES)


def heartbeat_columns(hb: Heartbeat, now: float) -> dict[str, Any]:
    """The heartbeat's numbers as ``stations`` columns."""
    counts = hb.counts
    cert_end = skew_of(hb.cert_not_after, 0.0) if hb.cert_not_after else None  # as a POSIX time
    skew = skew_of(hb.sent_at, now)
    return {
        "heartbeat_at": now,
        "pending": int(counts.get("sealed", 0)) + int(counts.get("uploading", 0)),
        "oldest_pending_age_s": hb.oldest_pending_age_s,
        "disk_free_bytes": hb.disk_free_bytes,
        "scanner": (hb.devices.get("scanner") or None),
        "camera": (hb.devices.get("camera") or None),
        "clock_skew_s": skew,
        "version": hb.version or None,
        "cert_not_after": cert_end,
    }


def status_from_row(row: tuple[Any, ...]) -> StationStatus:
    """A :func:`fleet_sql.page` row as a :class:`StationStatus`."""
    n = len(ALERT_KINDS)
    flags, state, rest = row[:n], str(row[n]), row[n + 1 :]
    cols = dict(zip(fleet_sql.ROW_COLUMNS, rest, strict=True))

    def opt_f(v: Any) -> float | None:
        return None if v is None else float(v)

    def opt_i(v: Any) -> int | None:
        return None if v is None else int(v)

    def opt_s(v: Any) -> str | None:
        return None if v is None else str(v)

    return StationStatus(
        station_id=str(cols["station_id"]),
        state=state,
        district=opt_s(cols["district"]),
        tehsil=opt_s(cols["tehsil"]),
        union_council=opt_s(cols["union_council"]),
        label=opt_s(cols["label"]),
        last_seen=opt_f(cols["last_seen"]),
        pending=opt_i(cols["pending"]),
        oldest_pending_age_s=opt_f(cols["oldest_now"]),
        cert_not_after=opt_f(cols["cert_not_after"]),
        packets_stored=int(cols["packets_stored"] or 0),
        version=opt_s(cols["version"]),
        disk_free_bytes=opt_i(cols["disk_free_bytes"]),
        scanner=opt_s(cols["scanner"]),
        camera=opt_s(cols["camera"]),
        clock_skew_s=opt_f(cols["clock_skew_s"]),
        registered_at=opt_f(cols["registered_at"]),
        retired_at=opt_f(cols["retired_at"]),
        alerts=[k for k, f in zip(ALERT_KINDS, flags, strict=True) if int(f)],
    )


def summary_from_row(
    row: tuple[Any, ...], packets_today: int, oldest: tuple[Any, ...] | None
) -> FleetSummary:
    ns = len(STATES)
    return FleetSummary(
        stations=int(row[0]),
        by_state={s: int(v) for s, v in zip(STATES, row[1 : 1 + ns], strict=True)},
        alerts={k: int(v) for k, v in zip(ALERT_KINDS, row[1 + ns :], strict=True)},
        packets_today=packets_today,
        oldest_pending_age_s=None if oldest is None else float(oldest[1]),
        oldest_pending_station=None if oldest is None else str(oldest[0]),
    )


def rollup_from_rows(rows: list[tuple[Any, ...]]) -> list[DistrictRow]:
    ns = len(STATES)
    out = []
    for r in rows:
        out.append(
            DistrictRow(
                district=str(r[0]),
                stations=int(r[1]),
                by_state={s: int(v) for s, v in zip(STATES, r[2 : 2 + ns], strict=True)},
                silent=int(r[2 + ns]),
                pending=int(r[3 + ns]),
                oldest_pending_age_s=None if r[4 + ns] is None else float(r[4 + ns]),
            )
        )
    return out


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
                "SELECT day, packets FROM ingest_days WHERE day >= ? AND day <= ?", (keys[0], keys[-1])
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
