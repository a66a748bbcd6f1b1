"""Central storage: packet metadata in SQLite and envelopes in a content-addressed blob directory.

:class:`Storage` is the interface the server, ops views and back office use; :class:`SqliteStorage`
is the embedded default (a PostgreSQL backend would implement the same Protocol).

Durability order for a packet: the envelope is written to a temporary file in the blob directory,
fsync'd, renamed to ``blobs/<sha[:2]>/<sha256>``, the directory fsync'd; only then is the metadata
row (with the receipt) committed (``synchronous=FULL``). A crash between the two leaves an orphan
blob, never a row pointing at nothing; the retry stores the same bytes under the same name.
Partial uploads live in ``uploads/<station_id>/<packet_id>.part``; every chunk is fsync'd before
its new offset is acknowledged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sync.central.fleet import (
    DistrictRow,
    FleetSummary,
    Location,
    StationFilter,
    StationPage,
    StationStatus,
    Thresholds,
)
from sync.central.fleet_sqlite import SqliteFleet, heartbeat_columns, migrate_fleet
from sync.central.home import fsync_dir
from sync.common.wire import Heartbeat

SCHEMA = """
CREATE TABLE IF NOT EXISTS packets (
    packet_id TEXT PRIMARY KEY, station_id TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    received_at TEXT NOT NULL, receipt BLOB NOT NULL, cert_der BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS packets_station ON packets(station_id);
CREATE TABLE IF NOT EXISTS uploads (
    station_id TEXT NOT NULL, packet_id TEXT NOT NULL, size INTEGER NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (station_id, packet_id));
CREATE TABLE IF NOT EXISTS stations (
    station_id TEXT PRIMARY KEY, last_seen REAL, heartbeat TEXT, audit_seq INTEGER, audit_head TEXT);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, station_id TEXT NOT NULL, kind TEXT NOT NULL,
    detail TEXT NOT NULL, created_at REAL NOT NULL);
"""


class OffsetMismatch(Exception):
    def __init__(self, current: int) -> None:
        super().__init__(f"the stored offset is {current}")
        self.current = current


class SizeMismatch(Exception):
    """A chunk that would run past the packet's declared size, or a changed declared size."""


@dataclass(frozen=True)
class StoredPacket:
    packet_id: str
    station_id: str
    sha256: str
    size: int
    received_at: str
    receipt: bytes
    cert_der: bytes


@dataclass(frozen=True)
class StationRow:
    station_id: str
    last_seen: float | None
    heartbeat: dict[str, Any] | None
    packets_stored: int


@dataclass(frozen=True)
class Alert:
    station_id: str
    kind: str
    detail: str
    created_at: float


class Storage(Protocol):
    def upload_offset(self, station_id: str, packet_id: str) -> int: ...
    def append_chunk(self, station_id: str, packet_id: str, offset: int, data: bytes, size: int) -> int: ...
    def partial(self, station_id: str, packet_id: str) -> bytes: ...
    def discard_partial(self, station_id: str, packet_id: str) -> None: ...
    def stored(self, packet_id: str) -> StoredPacket | None: ...
    def commit_packet(self, packet: StoredPacket, envelope: bytes) -> StoredPacket: ...
    def envelope(self, sha256: str) -> bytes: ...
    def record_heartbeat(self, heartbeat: Heartbeat, now: float) -> list[Alert]: ...
    def touch(self, station_id: str, now: float) -> None: ...
    def add_alert(self, station_id: str, kind: str, detail: str, now: float) -> Alert: ...
    def alerts(self) -> list[Alert]: ...
    def stations(self) -> list[StationRow]: ...
    def totals(self) -> dict[str, int]: ...
    def close(self) -> None: ...
    # -- the fleet: registry and ops views, computed in the database (sync/central/fleet.py) --
    def register_station(self, station_id: str, location: Location, now: float) -> None: ...
    def move_station(self, station_id: str, location: Location, now: float) -> bool: ...
    def retire_station(self, station_id: str, reason: str, now: float) -> bool: ...
    def record_certificate(self, station_id: str, not_after: float, now: float) -> None: ...
    def mark_revoked(self, station_id: str, now: float) -> None: ...
    def station_state(self, station_id: str) -> str | None: ...
    def fleet_summary(self, th: Thresholds, flt: StationFilter, now: float) -> FleetSummary: ...
    def station_page(
        self, th: Thresholds, flt: StationFilter, now: float, offset: int, limit: int
    ) -> StationPage: ...
    def station_status(self, th: Thresholds, station_id: str, now: float) -> StationStatus | None: ...
    def district_rollup(self, th: Thresholds, now: float, max_districts: int) -> list[DistrictRow]: ...
    def ingest_per_day(self, now: float, days: int) -> list[tuple[str, int]]: ...
    def station_alert_log(self, station_id: str, limit: int) -> list[tuple[str, str, float]]: ...


class SqliteStorage(SqliteFleet):
    """The embedded default. Thread-safe: one connection behind a lock."""

    def __init__(self, db_path: Path, blob_dir: Path, upload_dir: Path) -> None:
        self.blob_dir = blob_dir
        self.upload_dir = upload_dir
        blob_dir.mkdir(parents=True, exist_ok=True)
        upload_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}
        self._conn = sqlite3.connect(db_path, timeout=30, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)
        migrate_fleet(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- partial uploads -------------------------------------------------------------------
    def _part(self, station_id: str, packet_id: str) -> Path:
        return self.upload_dir / station_id / f"{packet_id}.part"

    def upload_offset(self, station_id: str, packet_id: str) -> int:
        try:
            return self._part(station_id, packet_id).stat().st_size
        except FileNotFoundError:
            return 0

    def _key_lock(self, station_id: str, packet_id: str) -> threading.Lock:
        with self._lock:
            lock = self._key_locks.get((station_id, packet_id))
            if lock is None:
                lock = self._key_locks[(station_id, packet_id)] = threading.Lock()
            return lock

    def append_chunk(self, station_id: str, packet_id: str, offset: int, data: bytes, size: int) -> int:
        """Write ``data`` at ``offset`` (which must be the stored offset); returns the new offset.

        File work (write, fsync) holds only this upload's lock, so uploads of different packets
        fsync in parallel; the shared connection is locked only around its statements.
        """
        with self._key_lock(station_id, packet_id):
            with self._lock:
                row = self._conn.execute(
                    "SELECT size FROM uploads WHERE station_id=? AND packet_id=?", (station_id, packet_id)
                ).fetchone()
            current = self.upload_offset(station_id, packet_id)
            if row is not None and int(row[0]) != size:
                if current == 0 or offset == 0:
                    self._discard_file(station_id, packet_id)
                    current = 0
                else:
                    raise SizeMismatch(f"this upload was started with size {row[0]}, not {size}")
            if offset != current:
                raise OffsetMismatch(current)
            if offset + len(data) > size:
                raise SizeMismatch("the chunk runs past the declared packet size")
            path = self._part(station_id, packet_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not path.exists()
            with open(path, "ab") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if fresh:
                fsync_dir(path.parent)
            with self._lock:
                self._conn.execute(
                    "INSERT INTO uploads(station_id, packet_id, size, updated_at) VALUES (?,?,?,?)"
                    " ON CONFLICT(station_id, packet_id) DO UPDATE SET size=excluded.size,"
                    " updated_at=excluded.updated_at",
                    (station_id, packet_id, size, time.time()),
                )
            return offset + len(data)

    def partial(self, station_id: str, packet_id: str) -> bytes:
        try:
            return self._part(station_id, packet_id).read_bytes()
        except FileNotFoundError:
            return b""

    def _discard_file(self, station_id: str, packet_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._part(station_id, packet_id).unlink()

    def discard_partial(self, station_id: str, packet_id: str) -> None:
        with self._key_lock(station_id, packet_id):
            self._discard_file(station_id, packet_id)
            with self._lock:
                self._conn.execute(
                    "DELETE FROM uploads WHERE station_id=? AND packet_id=?", (station_id, packet_id)
                )
                self._key_locks.pop((station_id, packet_id), None)

    # -- stored packets --------------------------------------------------------------------
    def _blob_path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.blob_dir / sha256[:2] / sha256

    def stored(self, packet_id: str) -> StoredPacket | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT packet_id, station_id, sha256, size, received_at, receipt, cert_der"
                " FROM packets WHERE packet_id=?",
                (packet_id,),
            ).fetchone()
        if row is None:
            return None
        return StoredPacket(
            str(row[0]), str(row[1]), str(row[2]), int(row[3]), str(row[4]), bytes(row[5]), bytes(row[6])
        )

    def _write_blob(self, sha256: str, envelope: bytes) -> None:
        path = self._blob_path(sha256)
        if path.exists() and path.stat().st_size == len(envelope):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{sha256}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(envelope)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)

    def commit_packet(self, packet: StoredPacket, envelope: bytes) -> StoredPacket:
        """Blob durable first, then the metadata row; returns the row now stored (first one wins)."""
        if hashlib.sha256(envelope).hexdigest() != packet.sha256:
            raise ValueError("envelope does not match its sha256")
        existing = self.stored(packet.packet_id)
        if existing is not None:
            return existing
        self._write_blob(packet.sha256, envelope)  # outside the shared lock: fsyncs run in parallel
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._insert_packet(packet)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
        except sqlite3.IntegrityError:
            winner = self.stored(packet.packet_id)  # a concurrent finalise of the same id won
            if winner is None:
                raise
            return winner
        self.discard_partial(packet.station_id, packet.packet_id)
        return packet

    def _insert_packet(self, packet: StoredPacket) -> None:
        """The packet row, its station's count and the day's count: one transaction (the caller's)."""
        self._conn.execute(
            "INSERT INTO packets(packet_id, station_id, sha256, size, received_at, receipt, cert_der)"
            " VALUES (?,?,?,?,?,?,?)",
            (
                packet.packet_id,
                packet.station_id,
                packet.sha256,
                packet.size,
                packet.received_at,
                packet.receipt,
                packet.cert_der,
            ),
        )
        now = time.time()
        self._conn.execute(
            "INSERT INTO stations(station_id, created_at, last_seen, packets_stored, last_packet_at)"
            " VALUES (?,?,?,1,?) ON CONFLICT(station_id) DO UPDATE SET"
            " packets_stored=stations.packets_stored + 1, last_packet_at=excluded.last_packet_at",
            (packet.station_id, now, now, now),
        )
        self._conn.execute(
            "INSERT INTO ingest_days(day, packets, bytes) VALUES (?,1,?) ON CONFLICT(day) DO UPDATE SET"
            " packets=ingest_days.packets + 1, bytes=ingest_days.bytes + excluded.bytes",
            (packet.received_at[:10], packet.size),
        )

    def envelope(self, sha256: str) -> bytes:
        data = self._blob_path(sha256).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(f"blob {sha256[:12]}… is damaged (hash mismatch)")
        return data

    # -- stations, heartbeats, alerts --------------------------------------------------------
    def touch(self, station_id: str, now: float) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO stations(station_id, created_at, last_seen) VALUES (?,?,?)"
                " ON CONFLICT(station_id) DO UPDATE SET last_seen=excluded.last_seen",
                (station_id, now, now),
            )

    def add_alert(self, station_id: str, kind: str, detail: str, now: float) -> Alert:
        with self._lock:
            self._conn.execute(
                "INSERT INTO alerts(station_id, kind, detail, created_at) VALUES (?,?,?,?)",
                (station_id, kind, detail, now),
            )
        return Alert(station_id, kind, detail, now)

    def record_heartbeat(self, heartbeat: Heartbeat, now: float) -> list[Alert]:
        """Store the heartbeat; raise audit alerts when the chain went back or forked."""
        raised: list[Alert] = []
        with self._lock:
            row = self._conn.execute(
                "SELECT audit_seq, audit_head FROM stations WHERE station_id=?", (heartbeat.station_id,)
            ).fetchone()
            if row is not None and row[0] is not None:
                prev_seq, prev_head = int(row[0]), str(row[1] or "")
                if heartbeat.audit_seq < prev_seq:
                    raised.append(
                        self.add_alert(
                            heartbeat.station_id,
                            "audit_rewound",
                            f"audit sequence went back from {prev_seq} to {heartbeat.audit_seq}",
                            now,
                        )
                    )
                elif heartbeat.audit_seq == prev_seq and heartbeat.audit_head != prev_head:
                    raised.append(
                        self.add_alert(
                            heartbeat.station_id,
                            "audit_broken",
                            f"audit head changed at sequence {prev_seq}",
                            now,
                        )
                    )
            # The new head is kept: the alert stays in the table and is raised once per event.
            keep_seq, keep_head = heartbeat.audit_seq, heartbeat.audit_head
            cols = heartbeat_columns(heartbeat, now)
            names = ", ".join(cols)
            marks = ",".join("?" * len(cols))
            updates = ", ".join(
                f"{c}=coalesce(excluded.{c}, stations.{c})" if c == "cert_not_after" else f"{c}=excluded.{c}"
                for c in cols
            )
            self._conn.execute(
                "INSERT INTO stations(station_id, created_at, last_seen, heartbeat, audit_seq, audit_head,"
                f" {names}) VALUES (?,?,?,?,?,?,{marks})"
                " ON CONFLICT(station_id) DO UPDATE SET last_seen=excluded.last_seen,"
                " heartbeat=excluded.heartbeat, audit_seq=excluded.audit_seq, audit_head=excluded.audit_head,"
                f" {updates}",
                (
                    heartbeat.station_id,
                    now,
                    now,
                    json.dumps(heartbeat.to_json()),
                    keep_seq,
                    keep_head,
                    *cols.values(),
                ),
            )
        return raised

    def alerts(self) -> list[Alert]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT station_id, kind, detail, created_at FROM alerts ORDER BY id"
            ).fetchall()
        return [Alert(str(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    def stations(self) -> list[StationRow]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT s.station_id, s.last_seen, s.heartbeat,"
                " (SELECT count(*) FROM packets p WHERE p.station_id = s.station_id)"
                " FROM stations s ORDER BY s.station_id"
            ).fetchall()
        out = []
        for sid, seen, hb, n in rows:
            out.append(
                StationRow(
                    str(sid), None if seen is None else float(seen), json.loads(hb) if hb else None, int(n)
                )
            )
        return out

    def totals(self) -> dict[str, int]:
        with self._lock:
            # The per-day counts are written with each packet row: no scan of the packets table.
            n, total = self._conn.execute(
                "SELECT coalesce(sum(packets), 0), coalesce(sum(bytes), 0) FROM ingest_days"
            ).fetchone()
            partial = self._conn.execute("SELECT count(*) FROM uploads").fetchone()[0]
        return {"packets": int(n), "bytes": int(total), "partial_uploads": int(partial)}
