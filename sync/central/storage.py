"""Central storage: the :class:`Storage` protocol and its embedded SQLite implementation.

:class:`Storage` is the interface the server, ops views and back office use. Two backends
implement it: :class:`SqliteStorage` (embedded default: metadata in ``central.db``, envelopes in a
content-addressed directory, partial uploads in files) and ``PgStorage``
(``sync.central.pg_storage``: everything in PostgreSQL, shared by any number of central nodes).
:func:`sync.central.database.open_storage` picks one from the home's ``[storage] url``.

Packets are keyed by (station id, packet id): a station cannot take another station's packet id
(issue 13, finding 4). Partial uploads are bounded: at most ``UploadLimits.max_partials_per_station``
at once per station, expired after ``partial_expiry_s`` without a chunk, and never allowed to eat the
last ``disk_reserve_bytes`` of the disk (finding 5): :class:`TooManyUploads` and
:class:`StorageFull` say so, and the server answers 429 and 507.

Durability order for a packet (SQLite): the envelope is written to a temporary file in the blob
directory, fsync'd, renamed to ``blobs/<sha[:2]>/<sha256>``, the directory fsync'd; only then is
the metadata row (with the receipt) committed (``synchronous=FULL``). A crash between the two
leaves an orphan blob, never a row pointing at nothing; the retry stores the same bytes under the
same name. Partial uploads live in ``uploads/<station_id>/<packet_id>.part``; every chunk is
fsync'd before its new offset is acknowledged.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from packetformat.auditchain import segment_problem
from sync.central.envelopes import DirectoryEnvelopeStore, EnvelopeStore, StorageFull
from sync.central.fleet import (
    DistrictRow,
    FleetSummary,
    Location,
    StationFilter,
    StationPage,
    StationStatus,
    Thresholds,
)
from sync.central.fleet_sql import heartbeat_columns
from sync.central.fleet_sqlite import SqliteFleet
from sync.central.home import CentralError, fsync_dir
from sync.central.migrate import migrate_sqlite
from sync.common.wire import Heartbeat

__all__ = [
    "Alert",
    "OffsetMismatch",
    "OutcomeRow",
    "PartialUpload",
    "PolicyRow",
    "SizeMismatch",
    "SqliteStorage",
    "StationRow",
    "Storage",
    "StorageFull",
    "StoredPacket",
    "TooManyUploads",
    "UploadLimits",
    "VersionNotNewer",
]


class OffsetMismatch(CentralError):
    """The chunk's offset is not where the stored upload ends; ``current`` is where it does."""

    code = "storage.offset_mismatch"

    def __init__(self, current: int) -> None:
        super().__init__(f"the stored offset is {current}: resume from there")
        self.current = current


class SizeMismatch(CentralError):
    """A chunk that would run past the packet's declared size, or a changed declared size."""

    code = "storage.size_mismatch"


class TooManyUploads(CentralError):
    """The station already has its maximum of unfinished uploads; finish or wait for expiry."""

    code = "storage.too_many_uploads"


@dataclass(frozen=True)
class UploadLimits:
    """Bounds on unfinished uploads (``[storage]`` keys of the same names in ``central.toml``)."""

    max_partials_per_station: int = 16  # the agent uploads at most 16 packets at once
    partial_expiry_s: float = 3 * 86400.0
    disk_reserve_bytes: int = 256 * 1024 * 1024


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
class PartialUpload:
    station_id: str
    packet_id: str
    size: int
    received: int
    started_at: float
    updated_at: float


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


@dataclass(frozen=True)
class PolicyRow:
    """One policy version as set at central (the document as canonical JSON text)."""

    version: int
    document: str
    set_at: float
    set_by: str


@dataclass(frozen=True)
class OutcomeRow:
    """What became of one packet downstream; ``seq`` orders the changes a station pulls."""

    seq: int
    packet_id: str
    station_id: str
    outcome: str
    reason: str
    note: str
    decided_at: str
    decided_by: str


class VersionNotNewer(CentralError):
    """A policy version that is not above the newest one stored."""

    code = "policy.not_newer"


class Storage(Protocol):
    # partial uploads
    def upload_offset(self, station_id: str, packet_id: str) -> int: ...
    def append_chunk(self, station_id: str, packet_id: str, offset: int, data: bytes, size: int) -> int: ...
    def partial(self, station_id: str, packet_id: str) -> bytes: ...
    def discard_partial(self, station_id: str, packet_id: str) -> None: ...
    def partials(self) -> list[PartialUpload]: ...
    def expire_partials(self, older_than: float) -> int: ...
    # stored packets
    def stored(self, station_id: str, packet_id: str) -> StoredPacket | None: ...
    def find_packet(self, packet_id: str) -> list[StoredPacket]: ...
    def packets_received(self, since: str, until: str) -> list[tuple[str, str]]: ...
    def commit_packet(self, packet: StoredPacket, envelope: bytes, *, verified: bool = False) -> StoredPacket:
        """Store ``envelope`` and its row once (first one wins; returns the row stored). ``envelope``
        is best what :meth:`partial` returned (a backend may then keep the received bytes as they
        lie); ``verified``: the caller has checked it against ``packet.sha256`` (skips a hash pass)."""

    def envelope(self, sha256: str) -> bytes: ...
    # stations, heartbeats, alerts
    def record_heartbeat(self, heartbeat: Heartbeat, now: float) -> list[Alert]: ...
    def touch(self, station_id: str, now: float) -> None: ...
    def add_alert(self, station_id: str, kind: str, detail: str, now: float) -> Alert: ...
    def alerts(self) -> list[Alert]: ...
    def stations(self) -> list[StationRow]: ...
    def totals(self) -> dict[str, int]: ...
    # lifecycle
    def ready(self) -> dict[str, Any]: ...
    def maintain(self, now: float) -> dict[str, int]: ...
    # policy, roster, outcomes (sync/central/policy.py)
    def policy_add(self, row: PolicyRow) -> None: ...
    def policy_latest(self) -> PolicyRow | None: ...
    def policy_get(self, version: int) -> PolicyRow | None: ...
    def policy_rows(self) -> list[PolicyRow]: ...
    def roster_set(self, station_id: str, operator_id: str, state: str, now: float) -> int: ...
    def roster(self, station_id: str) -> tuple[int, dict[str, str]]: ...
    def outcome_set(self, row: OutcomeRow) -> OutcomeRow: ...
    def outcomes_after(self, station_id: str, after: int, limit: int) -> list[OutcomeRow]: ...
    def outcome_seq(self, station_id: str) -> int: ...
    def heartbeat_answer(self, station_id: str) -> tuple[int, int, int]:
        """(latest policy version, the station's roster version, its outcome seq): one read."""

    def close(self) -> None: ...
    # the fleet: registry and ops views, computed in the database (sync/central/fleet.py)
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


def stored_heartbeat(text: Any) -> dict[str, Any] | None:
    """A station row's heartbeat column as a dict, or None when it is empty or not a JSON object
    (the views must survive any stored value; ``ops`` re-checks the fields themselves)."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except (ValueError, TypeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.OperationalError):
        return exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_FULL  # the primary code of an extended one
    return False


@contextlib.contextmanager
def full_as_storage_full() -> Iterator[None]:
    """Turn "disk full" from SQLite or the file system into :class:`StorageFull`."""
    try:
        yield
    except StorageFull:
        raise
    except (OSError, sqlite3.OperationalError) as exc:
        if is_disk_full(exc):
            raise StorageFull("central's disk is full") from exc
        raise


class SqliteStorage(SqliteFleet):
    """The embedded default. Thread-safe: one connection behind a lock; one process at a time."""

    dialect = "sqlite"

    def __init__(
        self,
        db_path: Path,
        blob_dir: Path,
        upload_dir: Path,
        *,
        limits: UploadLimits | None = None,
        envelopes: EnvelopeStore | None = None,
    ) -> None:
        self.blob_dir = blob_dir
        self.upload_dir = upload_dir
        self.limits = limits or UploadLimits()
        self.envelopes: EnvelopeStore = envelopes or DirectoryEnvelopeStore(blob_dir)
        upload_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}
        self._conn = sqlite3.connect(db_path, timeout=30, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self.schema = migrate_sqlite(self._conn)[1]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def ready(self) -> dict[str, Any]:
        with self._lock:
            self._conn.execute("SELECT 1").fetchone()
        return {"backend": self.dialect, "schema": self.schema}

    def maintain(self, now: float) -> dict[str, int]:
        """Periodic upkeep (the server runs it): expire abandoned uploads."""
        return {"partials_expired": self.expire_partials(now - self.limits.partial_expiry_s)}

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

    def _check_reserve(self, incoming: int) -> None:
        free = shutil.disk_usage(self.upload_dir).free
        if free - incoming < self.limits.disk_reserve_bytes:
            raise StorageFull(
                f"central keeps {self.limits.disk_reserve_bytes} bytes of disk in reserve and has {free} free"
            )

    def append_chunk(self, station_id: str, packet_id: str, offset: int, data: bytes, size: int) -> int:
        """Write ``data`` at ``offset`` (which must be the stored offset); returns the new offset.

        File work (write, fsync) holds only this upload's lock, so uploads of different packets
        fsync in parallel; the shared connection is locked only around its statements.
        """
        with self._key_lock(station_id, packet_id), full_as_storage_full():
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
            if row is None:
                with self._lock:
                    (open_now,) = self._conn.execute(
                        "SELECT count(*) FROM uploads WHERE station_id=?", (station_id,)
                    ).fetchone()
                if int(open_now) >= self.limits.max_partials_per_station:
                    raise TooManyUploads(
                        f"this station already has {open_now} unfinished uploads"
                        f" (at most {self.limits.max_partials_per_station})"
                    )
            self._check_reserve(len(data))
            path = self._part(station_id, packet_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not path.exists()
            now = time.time()
            if row is None:  # the row first: a crash after it leaves an upload that expires
                with self._lock:
                    self._conn.execute(
                        "INSERT INTO uploads(station_id, packet_id, size, updated_at, started_at)"
                        " VALUES (?,?,?,?,?) ON CONFLICT(station_id, packet_id) DO NOTHING",
                        (station_id, packet_id, size, now, now),
                    )
            try:
                with open(path, "ab") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError:
                with open(path, "ab") as fh:  # never keep a torn chunk: back to the acknowledged offset
                    fh.truncate(offset)
                raise
            if fresh:
                fsync_dir(path.parent)
            with self._lock:
                self._conn.execute(
                    "UPDATE uploads SET size=?, updated_at=? WHERE station_id=? AND packet_id=?",
                    (size, now, station_id, packet_id),
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

    def partials(self) -> list[PartialUpload]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT station_id, packet_id, size, coalesce(started_at, updated_at), updated_at"
                " FROM uploads ORDER BY station_id, packet_id"
            ).fetchall()
        return [
            PartialUpload(
                str(r[0]),
                str(r[1]),
                int(r[2]),
                self.upload_offset(str(r[0]), str(r[1])),
                float(r[3]),
                float(r[4]),
            )
            for r in rows
        ]

    def expire_partials(self, older_than: float) -> int:
        """Drop every unfinished upload without a chunk since ``older_than``; returns how many."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT station_id, packet_id FROM uploads WHERE updated_at < ?", (older_than,)
            ).fetchall()
        for sid, pid in rows:
            self.discard_partial(str(sid), str(pid))
        return len(rows)

    # -- stored packets --------------------------------------------------------------------
    _COLUMNS = "packet_id, station_id, sha256, size, received_at, receipt, cert_der"

    @staticmethod
    def _row(row: tuple[Any, ...]) -> StoredPacket:
        return StoredPacket(
            str(row[0]), str(row[1]), str(row[2]), int(row[3]), str(row[4]), bytes(row[5]), bytes(row[6])
        )

    def stored(self, station_id: str, packet_id: str) -> StoredPacket | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {self._COLUMNS} FROM packets WHERE station_id=? AND packet_id=?",
                (station_id, packet_id),
            ).fetchone()
        return None if row is None else self._row(row)

    def find_packet(self, packet_id: str) -> list[StoredPacket]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {self._COLUMNS} FROM packets WHERE packet_id=? ORDER BY received_at, station_id",
                (packet_id,),
            ).fetchall()
        return [self._row(r) for r in rows]

    def packets_received(self, since: str, until: str) -> list[tuple[str, str]]:
        """(station id, packet id) of the packets received in [since, until) (ISO 8601 UTC with ``Z``)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT station_id, packet_id FROM packets WHERE received_at >= ? AND received_at < ?"
                " ORDER BY received_at, station_id, packet_id",
                (since, until),
            ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def commit_packet(self, packet: StoredPacket, envelope: bytes, *, verified: bool = False) -> StoredPacket:
        """Blob durable first, then the metadata row; returns the row now stored (first one wins)."""
        if not verified and hashlib.sha256(envelope).hexdigest() != packet.sha256:
            raise ValueError("envelope does not match its sha256")
        existing = self.stored(packet.station_id, packet.packet_id)
        if existing is not None:
            return existing
        with full_as_storage_full():
            self.envelopes.put(packet.sha256, envelope)  # outside the shared lock: fsyncs run in parallel
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
                winner = self.stored(packet.station_id, packet.packet_id)  # a concurrent finalise won
                if winner is None:
                    raise
                return winner
        self.discard_partial(packet.station_id, packet.packet_id)
        return packet

    def _insert_packet(self, packet: StoredPacket) -> None:
        """The packet row, its station's count and the day's count: one transaction (the caller's)."""
        self._conn.execute(
            f"INSERT INTO packets({self._COLUMNS}) VALUES (?,?,?,?,?,?,?)",
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
        return self.envelopes.get(sha256)

    # -- stations, heartbeats, alerts --------------------------------------------------------
    def touch(self, station_id: str, now: float) -> None:
        with self._lock, full_as_storage_full():
            self._conn.execute(
                "INSERT INTO stations(station_id, created_at, last_seen) VALUES (?,?,?)"
                " ON CONFLICT(station_id) DO UPDATE SET last_seen=excluded.last_seen",
                (station_id, now, now),
            )

    def add_alert(self, station_id: str, kind: str, detail: str, now: float) -> Alert:
        with self._lock, full_as_storage_full():
            self._conn.execute(
                "INSERT INTO alerts(station_id, kind, detail, created_at) VALUES (?,?,?,?)",
                (station_id, kind, detail, now),
            )
        return Alert(station_id, kind, detail, now)

    def record_heartbeat(self, heartbeat: Heartbeat, now: float) -> list[Alert]:
        """Store the heartbeat; raise audit alerts when the chain went back or forked."""
        with self._lock, full_as_storage_full():
            row = self._conn.execute(
                "SELECT audit_seq, audit_head FROM stations WHERE station_id=?", (heartbeat.station_id,)
            ).fetchone()
            raised = [
                self.add_alert(heartbeat.station_id, kind, detail, now)
                for kind, detail in audit_alerts(None if row is None else (row[0], row[1]), heartbeat)
            ]
            # The new head is kept: the alert stays in the table and is raised once per event.
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
                    heartbeat.audit_seq,
                    heartbeat.audit_head,
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
                StationRow(str(sid), None if seen is None else float(seen), stored_heartbeat(hb), int(n))
            )
        return out

    def totals(self) -> dict[str, int]:
        with self._lock:
            # The per-day counts are written with each packet row: no scan of the packets table.
            n, total = self._conn.execute(
                "SELECT coalesce(sum(packets), 0), coalesce(sum(bytes), 0) FROM ingest_days"
            ).fetchone()
            partial = self._conn.execute("SELECT count(*) FROM uploads").fetchone()[0]
        partial_bytes = sum(p.received for p in self.partials())
        return {
            "packets": int(n),
            "bytes": int(total),
            "partial_uploads": int(partial),
            "partial_bytes": int(partial_bytes),
        }

    # -- policy, roster, outcomes -------------------------------------------------------------------
    def policy_add(self, row: PolicyRow) -> None:
        """Store a new policy version; :class:`VersionNotNewer` unless it is above every stored one."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                top = self._conn.execute("SELECT max(version) FROM policies").fetchone()[0]
                if top is not None and row.version <= int(top):
                    raise VersionNotNewer(f"version {row.version} is not above {top}")
                self._conn.execute(
                    "INSERT INTO policies(version, document, set_at, set_by) VALUES (?,?,?,?)",
                    (row.version, row.document, row.set_at, row.set_by),
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _policy_rows(self, where: str, args: tuple[Any, ...]) -> list[PolicyRow]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT version, document, set_at, set_by FROM policies {where}", args
            ).fetchall()
        return [PolicyRow(int(r[0]), str(r[1]), float(r[2]), str(r[3])) for r in rows]

    def policy_latest(self) -> PolicyRow | None:
        rows = self._policy_rows("ORDER BY version DESC LIMIT 1", ())
        return rows[0] if rows else None

    def policy_get(self, version: int) -> PolicyRow | None:
        rows = self._policy_rows("WHERE version=?", (version,))
        return rows[0] if rows else None

    def policy_rows(self) -> list[PolicyRow]:
        return self._policy_rows("ORDER BY version", ())

    def roster_set(self, station_id: str, operator_id: str, state: str, now: float) -> int:
        """Allow or disable an operator at a station; returns the station's new roster version."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                seq = int(self._conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM roster").fetchone()[0])
                self._conn.execute(
                    "INSERT INTO roster(station_id, operator_id, state, seq, changed_at) VALUES (?,?,?,?,?)"
                    " ON CONFLICT(station_id, operator_id) DO UPDATE SET state=excluded.state,"
                    " seq=excluded.seq, changed_at=excluded.changed_at",
                    (station_id, operator_id, state, seq, now),
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        return seq

    def roster(self, station_id: str) -> tuple[int, dict[str, str]]:
        """(roster version, operator id -> state) for a station; version 0 when central set nothing."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT operator_id, state, seq FROM roster WHERE station_id=? ORDER BY operator_id",
                (station_id,),
            ).fetchall()
        return max((int(r[2]) for r in rows), default=0), {str(r[0]): str(r[1]) for r in rows}

    def outcome_set(self, row: OutcomeRow) -> OutcomeRow:
        """Record (or replace) a packet's outcome under a new, higher sequence number."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "DELETE FROM outcomes WHERE station_id=? AND packet_id=?", (row.station_id, row.packet_id)
                )
                cur = self._conn.execute(
                    "INSERT INTO outcomes(packet_id, station_id, outcome, reason, note, decided_at,"
                    " decided_by) VALUES (?,?,?,?,?,?,?)",
                    (
                        row.packet_id,
                        row.station_id,
                        row.outcome,
                        row.reason,
                        row.note,
                        row.decided_at,
                        row.decided_by,
                    ),
                )
                seq = int(cur.lastrowid or 0)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        return OutcomeRow(
            seq,
            row.packet_id,
            row.station_id,
            row.outcome,
            row.reason,
            row.note,
            row.decided_at,
            row.decided_by,
        )

    def outcomes_after(self, station_id: str, after: int, limit: int) -> list[OutcomeRow]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, packet_id, station_id, outcome, reason, note, decided_at, decided_by"
                " FROM outcomes WHERE station_id=? AND seq>? ORDER BY seq LIMIT ?",
                (station_id, after, limit),
            ).fetchall()
        return [OutcomeRow(int(r[0]), *(str(x) for x in r[1:])) for r in rows]

    def heartbeat_answer(self, station_id: str) -> tuple[int, int, int]:
        with self._lock:
            row = self._conn.execute(
                "SELECT (SELECT coalesce(max(version), 0) FROM policies),"
                " (SELECT coalesce(max(seq), 0) FROM roster WHERE station_id=?),"
                " (SELECT coalesce(max(seq), 0) FROM outcomes WHERE station_id=?)",
                (station_id, station_id),
            ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def outcome_seq(self, station_id: str) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT coalesce(max(seq), 0) FROM outcomes WHERE station_id=?", (station_id,)
            ).fetchone()
        return int(row[0])


def audit_alerts(previous: tuple[Any, Any] | None, heartbeat: Heartbeat) -> list[tuple[str, str]]:
    """(kind, detail) of the audit alerts a heartbeat raises against the previous (seq, head)."""
    if previous is None or previous[0] is None:
        return []
    prev_seq, prev_head = int(previous[0]), str(previous[1] or "")
    if heartbeat.audit_seq < prev_seq:
        return [("audit_rewound", f"audit sequence went back from {prev_seq} to {heartbeat.audit_seq}")]
    if heartbeat.audit_seq == prev_seq and heartbeat.audit_head != prev_head:
        return [("audit_broken", f"audit head changed at sequence {prev_seq}")]
    if heartbeat.audit_sig and heartbeat.audit_seq > prev_seq:
        # A signed head must come with the chain from the head central holds (packetformat.auditchain).
        problem = segment_problem(
            prev_seq, prev_head, list(heartbeat.audit_segment), heartbeat.audit_seq, heartbeat.audit_head
        )
        if problem is not None:
            return [("audit_broken", f"the new audit head does not extend the previous one: {problem}")]
    return []
