"""Central storage on PostgreSQL: the :class:`~sync.central.storage.Storage` protocol for many nodes.

Everything a node needs to answer a station lives in the database, so any node can answer any
request: packet rows (partitioned by receipt day), envelopes (table ``envelopes``, written in the
same transaction as the row), partial uploads (``uploads`` + ``upload_chunks``: an upload begun
on node A resumes on node B at the stored offset), stations, heartbeats and alerts.

Concurrency rules, each a single transaction that commits before the node answers:

- ``append_chunk`` locks the upload row (``SELECT ... FOR UPDATE``): two nodes appending the same
  packet serialise, and the loser sees the new offset (409 with the offset, as on one node);
- ``commit_packet`` claims ``packet_keys`` (station id, packet id) with ``ON CONFLICT DO NOTHING``:
  of two nodes finalising the same packet at once exactly one inserts; the other waits for that
  commit, inserts nothing and returns the winner's row, so both answers carry the same receipt;
- new partitions are created under an advisory lock, so several nodes may do it at once.

psycopg 3 with a ``psycopg_pool.ConnectionPool``: the protocol is synchronous and the server
already calls storage through ``asyncio.to_thread``, off the event loop (``docs/scale.md``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from sync.central.envelopes import StorageFull, check_sha256
from sync.central.fleet_pg import PgFleet, count_packet_in
from sync.central.fleet_sql import heartbeat_columns
from sync.central.migrate import latest, pg_version
from sync.central.storage import (
    Alert,
    OffsetMismatch,
    OutcomeRow,
    PartialUpload,
    PolicyRow,
    SizeMismatch,
    StationRow,
    StoredPacket,
    TooManyUploads,
    UploadLimits,
    VersionNotNewer,
    audit_alerts,
    stored_heartbeat,
)
from sync.common.wire import Heartbeat

PARTITION_LOCK = 0x70617274  # advisory lock id for partition creation
DAYS_AHEAD = 7
DAYS_BACK = 1
Conn = psycopg.Connection[tuple[Any, ...]]


# An unfinished upload's row and its chunks (chunks outlive the row only as a stored envelope).
_DROP_UPLOADS = (
    "WITH gone AS (DELETE FROM uploads {} RETURNING upload_id)"
    " DELETE FROM upload_chunks WHERE upload_id IN (SELECT upload_id FROM gone)"
)


class ChunkedPartial(bytes):
    """An unfinished upload's bytes as :meth:`PgStorage.partial` read them, and which upload they are."""

    upload_id: int

    def __new__(cls, data: bytes, upload_id: int) -> ChunkedPartial:
        obj = super().__new__(cls, data)
        obj.upload_id = upload_id
        return obj


def received_day(received_at: str) -> dt.date:
    """The UTC day of an ISO-8601 receipt time (``2026-12-03T12:00:00Z``)."""
    return dt.date.fromisoformat(received_at[:10])


def partition_name(day: dt.date) -> str:
    return f"packets_{day:%Y%m%d}"


@contextmanager
def full_as_storage_full() -> Iterator[None]:
    try:
        yield
    except pg_errors.DiskFull as exc:
        raise StorageFull("the database server's disk is full") from exc


class PgEnvelopeStore:
    """Envelopes in table ``envelopes``; ``put_in`` writes inside a caller's transaction."""

    def __init__(self, pool: ConnectionPool[Conn]) -> None:
        self.pool = pool

    def put_in(self, conn: Conn, sha256: str, data: bytes) -> None:
        conn.execute(
            "INSERT INTO envelopes(sha256, data) VALUES (%s, %s) ON CONFLICT (sha256) DO NOTHING",
            (check_sha256(sha256), data),
        )

    @staticmethod
    def adopt_in(conn: Conn, sha256: str, upload_id: int) -> bool:
        """Make the complete chunks of upload ``upload_id`` the envelope ``sha256`` (no bytes move).

        False when an envelope with that digest is stored already (the caller drops the chunks)."""
        row = conn.execute(
            "INSERT INTO envelopes(sha256, upload_id) VALUES (%s, %s) ON CONFLICT (sha256) DO NOTHING"
            " RETURNING 1",
            (check_sha256(sha256), upload_id),
        ).fetchone()
        return row is not None

    def put(self, sha256: str, data: bytes) -> None:
        with self.pool.connection() as conn, conn.transaction(), full_as_storage_full():
            self.put_in(conn, sha256, data)

    def has(self, sha256: str) -> bool:
        with self.pool.connection() as conn:
            return conn.execute("SELECT 1 FROM envelopes WHERE sha256=%s", (sha256,)).fetchone() is not None

    def get(self, sha256: str) -> bytes:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT data, upload_id FROM envelopes WHERE sha256=%s", (check_sha256(sha256),)
            ).fetchone()
            if row is not None and row[0] is None:  # kept as the chunks it was uploaded in
                chunks = conn.execute(
                    'SELECT data FROM upload_chunks WHERE upload_id=%s ORDER BY "offset"', (row[1],)
                ).fetchall()
                row = (b"".join(bytes(c[0]) for c in chunks), row[1])
        if row is None:
            raise FileNotFoundError(f"no envelope {sha256[:12]}… in the database")
        data = bytes(row[0])
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(f"envelope {sha256[:12]}… is damaged (hash mismatch)")
        return data


class PgStorage(PgFleet):
    """The PostgreSQL backend; thread-safe (one pooled connection per call)."""

    dialect = "postgresql"

    def __init__(
        self,
        pool: ConnectionPool[Conn],
        *,
        limits: UploadLimits | None = None,
        create_partitions: bool = True,
    ) -> None:
        self.pool = pool
        self.limits = limits or UploadLimits()
        self.envelopes = PgEnvelopeStore(pool)
        if create_partitions:
            self.ensure_partitions()

    def close(self) -> None:
        self.pool.close()

    def ready(self) -> dict[str, Any]:
        with self.pool.connection(timeout=5) as conn:
            found = pg_version(conn)
        known = latest("postgresql")
        if found != known:
            raise RuntimeError(f"schema version {found}, this central needs {known}")
        return {"backend": self.dialect, "schema": found}

    # -- partitions ------------------------------------------------------------------------
    def ensure_partitions(self, *, today: dt.date | None = None, ahead: int = DAYS_AHEAD) -> list[str]:
        """Create the daily partitions from yesterday to ``ahead`` days on; returns those created."""
        day0 = today or dt.datetime.now(dt.UTC).date()
        wanted = [day0 + dt.timedelta(days=d) for d in range(-DAYS_BACK, ahead + 1)]
        created: list[str] = []
        with self.pool.connection() as conn:
            have = set(self._partitions(conn))
            missing = [d for d in wanted if partition_name(d) not in have]
            if not missing:
                return created
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
                have = set(self._partitions(conn))
                for day in missing:
                    name = partition_name(day)
                    if name in have:
                        continue
                    nxt = day + dt.timedelta(days=1)
                    conn.execute(
                        f"CREATE TABLE {name} PARTITION OF packets"
                        f" FOR VALUES FROM ('{day.isoformat()}') TO ('{nxt.isoformat()}')"
                    )
                    created.append(name)
        return created

    @staticmethod
    def _partitions(conn: Conn) -> list[str]:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'packets' ORDER BY c.relname"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def partition_health(self, *, today: dt.date | None = None) -> dict[str, Any]:
        """Partitions present, how far ahead they reach, and rows that fell into the default one."""
        day0 = today or dt.datetime.now(dt.UTC).date()
        with self.pool.connection() as conn:
            names = [n for n in self._partitions(conn) if n != "packets_default"]
            row = conn.execute("SELECT count(*) FROM packets_default").fetchone()
        days = sorted(dt.datetime.strptime(n, "packets_%Y%m%d").date() for n in names)
        ahead = 0
        while day0 + dt.timedelta(days=ahead + 1) in set(days):
            ahead += 1
        return {
            "partitions": len(days),
            "first_day": days[0].isoformat() if days else None,
            "last_day": days[-1].isoformat() if days else None,
            "today_present": day0 in set(days),
            "days_ahead": ahead if day0 in set(days) else 0,
            "rows_in_default": int(row[0]) if row else 0,
        }

    def maintain(self, now: float) -> dict[str, int]:
        created = self.ensure_partitions()
        expired = self.expire_partials(now - self.limits.partial_expiry_s)
        return {"partitions_created": len(created), "partials_expired": expired}

    # -- partial uploads -------------------------------------------------------------------
    def upload_offset(self, station_id: str, packet_id: str) -> int:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT received FROM uploads WHERE station_id=%s AND packet_id=%s", (station_id, packet_id)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def append_chunk(self, station_id: str, packet_id: str, offset: int, data: bytes, size: int) -> int:
        """Append ``data`` at ``offset`` (the stored offset) in one transaction; returns the new offset."""
        now = time.time()
        with self.pool.connection() as conn, full_as_storage_full(), conn.transaction():
            row = conn.execute(
                "SELECT size, received, upload_id FROM uploads WHERE station_id=%s AND packet_id=%s"
                " FOR UPDATE",
                (station_id, packet_id),
            ).fetchone()
            if row is None:
                if offset != 0:
                    raise OffsetMismatch(0)
                if offset + len(data) > size:
                    raise SizeMismatch("the chunk runs past the declared packet size")
                # One new upload per station at a time, so the cap holds across nodes.
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (station_id,))
                count = conn.execute(
                    "SELECT count(*) FROM uploads WHERE station_id=%s", (station_id,)
                ).fetchone()
                open_now = int(count[0]) if count else 0
                if open_now >= self.limits.max_partials_per_station:
                    raise TooManyUploads(
                        f"this station already has {open_now} unfinished uploads"
                        f" (at most {self.limits.max_partials_per_station})"
                    )
                inserted = conn.execute(
                    "INSERT INTO uploads(station_id, packet_id, size, received, started_at, updated_at)"
                    " VALUES (%s,%s,%s,0,%s,%s) ON CONFLICT DO NOTHING RETURNING upload_id",
                    (station_id, packet_id, size, now, now),
                ).fetchone()
                if inserted is None:  # another node created it a moment ago: it holds chunk 0
                    raise OffsetMismatch(self._locked_offset(conn, station_id, packet_id))
                current, upload_id = 0, int(inserted[0])
            else:
                stored_size, current, upload_id = int(row[0]), int(row[1]), int(row[2])
                if stored_size != size:
                    if current == 0 or offset == 0:
                        # A fresh id: the chunks of one id only ever grow (commit_packet relies on it).
                        conn.execute("DELETE FROM upload_chunks WHERE upload_id=%s", (upload_id,))
                        fresh = conn.execute(
                            "UPDATE uploads SET"
                            " upload_id=nextval(pg_get_serial_sequence('uploads', 'upload_id'))"
                            " WHERE station_id=%s AND packet_id=%s RETURNING upload_id",
                            (station_id, packet_id),
                        ).fetchone()
                        assert fresh is not None
                        current, upload_id = 0, int(fresh[0])
                    else:
                        raise SizeMismatch(f"this upload was started with size {stored_size}, not {size}")
                if offset != current:
                    raise OffsetMismatch(current)
                if offset + len(data) > size:
                    raise SizeMismatch("the chunk runs past the declared packet size")
            conn.execute(
                'INSERT INTO upload_chunks(upload_id, "offset", data) VALUES (%s,%s,%s)',
                (upload_id, offset, data),
            )
            conn.execute(
                "UPDATE uploads SET received=%s, size=%s, updated_at=%s WHERE station_id=%s AND packet_id=%s",
                (offset + len(data), size, now, station_id, packet_id),
            )
        return offset + len(data)

    @staticmethod
    def _locked_offset(conn: Conn, station_id: str, packet_id: str) -> int:
        row = conn.execute(
            "SELECT received FROM uploads WHERE station_id=%s AND packet_id=%s", (station_id, packet_id)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def partial(self, station_id: str, packet_id: str) -> bytes:
        """The bytes received so far; a :class:`ChunkedPartial` that names its upload, for commit."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                'SELECT u.upload_id, c."offset", c.data FROM uploads u'
                " JOIN upload_chunks c ON c.upload_id = u.upload_id"
                ' WHERE u.station_id=%s AND u.packet_id=%s ORDER BY c."offset"',
                (station_id, packet_id),
            ).fetchall()
        parts: list[bytes] = []
        length = 0
        for _, off, data in rows:
            if int(off) != length:  # cannot happen (offsets are checked under the row lock)
                break
            parts.append(data)
            length += len(data)
        return ChunkedPartial(b"".join(parts), int(rows[0][0]) if rows else 0)

    def discard_partial(self, station_id: str, packet_id: str) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                _DROP_UPLOADS.format("WHERE station_id=%s AND packet_id=%s"), (station_id, packet_id)
            )

    def partials(self) -> list[PartialUpload]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT station_id, packet_id, size, received, started_at, updated_at FROM uploads"
                " ORDER BY station_id, packet_id"
            ).fetchall()
        return [
            PartialUpload(str(a), str(b), int(c), int(d), float(e), float(f)) for a, b, c, d, e, f in rows
        ]

    def expire_partials(self, older_than: float) -> int:
        with self.pool.connection() as conn:
            row = conn.execute(
                "WITH gone AS (DELETE FROM uploads WHERE updated_at < %s RETURNING upload_id),"
                " chunks AS (DELETE FROM upload_chunks WHERE upload_id IN (SELECT upload_id FROM gone))"
                " SELECT count(*) FROM gone",
                (older_than,),
            ).fetchone()
            return int(row[0]) if row else 0

    # -- stored packets --------------------------------------------------------------------
    _COLUMNS = "packet_id, station_id, sha256, size, received_at, receipt, cert_der"

    @staticmethod
    def _row(row: tuple[Any, ...]) -> StoredPacket:
        return StoredPacket(
            str(row[0]), str(row[1]), str(row[2]), int(row[3]), str(row[4]), bytes(row[5]), bytes(row[6])
        )

    def stored(self, station_id: str, packet_id: str) -> StoredPacket | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                f"SELECT {', '.join('p.' + c.strip() for c in self._COLUMNS.split(','))}"
                " FROM packet_keys k JOIN packets p ON p.station_id = k.station_id"
                " AND p.packet_id = k.packet_id AND p.received_day = k.received_day"
                " WHERE k.station_id=%s AND k.packet_id=%s",
                (station_id, packet_id),
            ).fetchone()
        return None if row is None else self._row(row)

    def find_packet(self, packet_id: str) -> list[StoredPacket]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {', '.join('p.' + c.strip() for c in self._COLUMNS.split(','))}"
                " FROM packet_keys k JOIN packets p ON p.station_id = k.station_id"
                " AND p.packet_id = k.packet_id AND p.received_day = k.received_day"
                " WHERE k.packet_id=%s ORDER BY p.received_at, p.station_id",
                (packet_id,),
            ).fetchall()
        return [self._row(r) for r in rows]

    def packets_received(self, since: str, until: str) -> list[tuple[str, str]]:
        """(station id, packet id) of the packets received in [since, until) (ISO 8601 UTC with ``Z``).

        The day bounds let PostgreSQL scan only the partitions of those days.
        """
        first = received_day(since)
        last = received_day(until)
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT station_id, packet_id FROM packets WHERE received_day >= %s AND received_day <= %s"
                " AND received_at >= %s AND received_at < %s ORDER BY received_at, station_id, packet_id",
                (first, last, since, until),
            ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def commit_packet(self, packet: StoredPacket, envelope: bytes, *, verified: bool = False) -> StoredPacket:
        """Key, envelope, row and the end of the partial upload in ONE transaction; first one wins.

        When ``envelope`` is this upload's :meth:`partial` and the upload is still that one (same
        upload id, complete), its chunks become the stored envelope: the bytes are not sent back nor
        written again. Otherwise the bytes are stored in the envelope row. ``verified=True``: the
        caller has checked the bytes against ``packet.sha256`` already (central's verifier has).
        """
        if not verified and hashlib.sha256(envelope).hexdigest() != packet.sha256:
            raise ValueError("envelope does not match its sha256")
        day = received_day(packet.received_at)
        ref = envelope.upload_id if isinstance(envelope, ChunkedPartial) else 0
        with self.pool.connection() as conn, full_as_storage_full(), conn.transaction():
            claimed = conn.execute(
                "INSERT INTO packet_keys(station_id, packet_id, received_day) VALUES (%s,%s,%s)"
                " ON CONFLICT DO NOTHING RETURNING 1",
                (packet.station_id, packet.packet_id, day),
            ).fetchone()
            if claimed is not None:
                upload = conn.execute(
                    "DELETE FROM uploads WHERE station_id=%s AND packet_id=%s RETURNING upload_id, received",
                    (packet.station_id, packet.packet_id),
                ).fetchone()
                if upload is not None and ref and int(upload[0]) == ref and int(upload[1]) == len(envelope):
                    # The very chunks that were read and verified (an upload id's chunks only grow, and
                    # these are complete): they are the envelope now.
                    if not self.envelopes.adopt_in(conn, packet.sha256, ref):
                        conn.execute("DELETE FROM upload_chunks WHERE upload_id=%s", (ref,))
                else:
                    if upload is not None:
                        conn.execute("DELETE FROM upload_chunks WHERE upload_id=%s", (int(upload[0]),))
                    self.envelopes.put_in(conn, packet.sha256, bytes(envelope))
                conn.execute(
                    "INSERT INTO packets(station_id, packet_id, received_day, sha256, size, received_at,"
                    " receipt, cert_der) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
                    (
                        packet.station_id,
                        packet.packet_id,
                        day,
                        packet.sha256,
                        packet.size,
                        packet.received_at,
                        packet.receipt,
                        packet.cert_der,
                    ),
                )
                count_packet_in(conn, packet.station_id, packet.received_at, packet.size, time.time())
        if claimed is not None:
            return packet
        winner = self.stored(packet.station_id, packet.packet_id)
        if winner is None:  # cannot happen: the key row is only ever written with its packet row
            raise RuntimeError("packet key without its row")
        return winner

    def envelope(self, sha256: str) -> bytes:
        return self.envelopes.get(sha256)

    # -- stations, heartbeats, alerts --------------------------------------------------------
    def touch(self, station_id: str, now: float) -> None:
        with self.pool.connection() as conn, full_as_storage_full():
            conn.execute(
                "INSERT INTO stations(station_id, created_at, last_seen) VALUES (%s,%s,%s)"
                " ON CONFLICT (station_id) DO UPDATE"
                " SET last_seen=greatest(stations.last_seen, excluded.last_seen)",
                (station_id, now, now),
            )

    def _add_alert(self, conn: Conn, station_id: str, kind: str, detail: str, now: float) -> Alert:
        conn.execute(
            "INSERT INTO alerts(station_id, kind, detail, created_at) VALUES (%s,%s,%s,%s)",
            (station_id, kind, detail, now),
        )
        return Alert(station_id, kind, detail, now)

    def add_alert(self, station_id: str, kind: str, detail: str, now: float) -> Alert:
        with self.pool.connection() as conn, full_as_storage_full():
            return self._add_alert(conn, station_id, kind, detail, now)

    def record_heartbeat(self, heartbeat: Heartbeat, now: float) -> list[Alert]:
        """Store the heartbeat and raise audit alerts, under the station row's lock (any node).

        Two round trips (pipeline): BEGIN, the commit mode and one ``UPDATE`` that locks the row and
        returns the head stored before; then the alerts, if any, and COMMIT. A station's first
        heartbeat inserts its row first.
        """
        sid = heartbeat.station_id
        cols = heartbeat_columns(heartbeat, now)
        sets = ", ".join(f"{c}=coalesce(%s, s.{c})" if c == "cert_not_after" else f"{c}=%s" for c in cols)
        update = (
            "UPDATE stations s SET last_seen=%s, heartbeat=%s, audit_seq=%s, audit_head=%s,"
            f" {sets} FROM (SELECT station_id, audit_seq, audit_head FROM stations"
            " WHERE station_id=%s FOR UPDATE) old WHERE s.station_id = old.station_id"
            " RETURNING old.audit_seq, old.audit_head"
        )
        args = (now, json.dumps(heartbeat.to_json()), heartbeat.audit_seq, heartbeat.audit_head)
        args += (*cols.values(), sid)
        with self.pool.connection() as conn, full_as_storage_full(), conn.pipeline(), conn.transaction():
            # A heartbeat is not acknowledged data: its commit need not wait for the WAL flush (a
            # crash loses at most the last fraction of a second of heartbeats; the next one comes in
            # a minute, and an audit rewind is still seen against the head stored before).
            conn.execute("SET LOCAL synchronous_commit = off")
            old = conn.execute(update, args).fetchone()
            if old is None:  # the station's first heartbeat (or a row another node is inserting)
                conn.execute(
                    "INSERT INTO stations(station_id, created_at) VALUES (%s,%s) ON CONFLICT DO NOTHING",
                    (sid, now),
                )
                old = conn.execute(update, args).fetchone()
            previous = None if old is None else (old[0], old[1])
            return [
                self._add_alert(conn, sid, kind, detail, now)
                for kind, detail in audit_alerts(previous, heartbeat)
            ]

    def heartbeat_answer(self, station_id: str) -> tuple[int, int, int]:
        """(policy version, roster version, outcome seq) for the heartbeat's answer: one query."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT (SELECT coalesce(max(version), 0) FROM policies),"
                " (SELECT coalesce(max(seq), 0) FROM roster WHERE station_id=%s),"
                " (SELECT coalesce(max(seq), 0) FROM outcomes WHERE station_id=%s)",
                (station_id, station_id),
            ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])

    def alerts(self) -> list[Alert]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT station_id, kind, detail, created_at FROM alerts ORDER BY id"
            ).fetchall()
        return [Alert(str(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    def stations(self) -> list[StationRow]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT s.station_id, s.last_seen, s.heartbeat::text,"
                " (SELECT count(*) FROM packet_keys k WHERE k.station_id = s.station_id)"
                " FROM stations s ORDER BY s.station_id"
            ).fetchall()
        return [
            StationRow(str(sid), None if seen is None else float(seen), stored_heartbeat(hb), int(n))
            for sid, seen, hb, n in rows
        ]

    def totals(self) -> dict[str, int]:
        with self.pool.connection() as conn:
            # Counted with each packet's commit: no scan of the partitions.
            row = conn.execute(
                "SELECT coalesce(sum(packets), 0), coalesce(sum(bytes), 0) FROM ingest_days"
            ).fetchone()
            part = conn.execute("SELECT count(*), coalesce(sum(received), 0) FROM uploads").fetchone()
        assert row is not None and part is not None
        return {
            "packets": int(row[0]),
            "bytes": int(row[1]),
            "partial_uploads": int(part[0]),
            "partial_bytes": int(part[1]),
        }

    # -- policy, roster, outcomes -------------------------------------------------------------------
    def policy_add(self, row: PolicyRow) -> None:
        """Store a new policy version (any node); :class:`VersionNotNewer` unless above every stored one."""
        with self.pool.connection() as conn, full_as_storage_full(), conn.transaction():
            conn.execute("LOCK TABLE policies IN EXCLUSIVE MODE")
            top = conn.execute("SELECT max(version) FROM policies").fetchone()
            if top is not None and top[0] is not None and row.version <= int(top[0]):
                raise VersionNotNewer(f"version {row.version} is not above {top[0]}")
            conn.execute(
                "INSERT INTO policies(version, document, set_at, set_by) VALUES (%s,%s,%s,%s)",
                (row.version, row.document, row.set_at, row.set_by),
            )

    def _policy_rows(self, where: str, args: tuple[Any, ...]) -> list[PolicyRow]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT version, document, set_at, set_by FROM policies {where}", args
            ).fetchall()
        return [PolicyRow(int(r[0]), str(r[1]), float(r[2]), str(r[3])) for r in rows]

    def policy_latest(self) -> PolicyRow | None:
        rows = self._policy_rows("ORDER BY version DESC LIMIT 1", ())
        return rows[0] if rows else None

    def policy_get(self, version: int) -> PolicyRow | None:
        rows = self._policy_rows("WHERE version=%s", (version,))
        return rows[0] if rows else None

    def policy_rows(self) -> list[PolicyRow]:
        return self._policy_rows("ORDER BY version", ())

    def roster_set(self, station_id: str, operator_id: str, state: str, now: float) -> int:
        with self.pool.connection() as conn, full_as_storage_full(), conn.transaction():
            seq_row = conn.execute("SELECT nextval('roster_seq')").fetchone()
            assert seq_row is not None
            seq = int(seq_row[0])
            conn.execute(
                "INSERT INTO roster(station_id, operator_id, state, seq, changed_at) VALUES (%s,%s,%s,%s,%s)"
                " ON CONFLICT (station_id, operator_id) DO UPDATE SET state=excluded.state,"
                " seq=excluded.seq, changed_at=excluded.changed_at",
                (station_id, operator_id, state, seq, now),
            )
        return seq

    def roster(self, station_id: str) -> tuple[int, dict[str, str]]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT operator_id, state, seq FROM roster WHERE station_id=%s ORDER BY operator_id",
                (station_id,),
            ).fetchall()
        return max((int(r[2]) for r in rows), default=0), {str(r[0]): str(r[1]) for r in rows}

    def outcome_set(self, row: OutcomeRow) -> OutcomeRow:
        with self.pool.connection() as conn, full_as_storage_full(), conn.transaction():
            conn.execute(
                "DELETE FROM outcomes WHERE station_id=%s AND packet_id=%s", (row.station_id, row.packet_id)
            )
            got = conn.execute(
                "INSERT INTO outcomes(packet_id, station_id, outcome, reason, note, decided_at, decided_by)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s) RETURNING seq",
                (
                    row.packet_id,
                    row.station_id,
                    row.outcome,
                    row.reason,
                    row.note,
                    row.decided_at,
                    row.decided_by,
                ),
            ).fetchone()
        assert got is not None
        return OutcomeRow(
            int(got[0]),
            row.packet_id,
            row.station_id,
            row.outcome,
            row.reason,
            row.note,
            row.decided_at,
            row.decided_by,
        )

    def outcomes_after(self, station_id: str, after: int, limit: int) -> list[OutcomeRow]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT seq, packet_id, station_id, outcome, reason, note, decided_at, decided_by"
                " FROM outcomes WHERE station_id=%s AND seq>%s ORDER BY seq LIMIT %s",
                (station_id, after, limit),
            ).fetchall()
        return [OutcomeRow(int(r[0]), *(str(x) for x in r[1:])) for r in rows]

    def outcome_seq(self, station_id: str) -> int:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT coalesce(max(seq), 0) FROM outcomes WHERE station_id=%s", (station_id,)
            ).fetchone()
        assert row is not None
        return int(row[0])

    def row_counts(self) -> dict[str, int]:
        tables = (
            "packet_keys",
            "envelopes",
            "uploads",
            "upload_chunks",
            "stations",
            "alerts",
            "tokens",
            "certificates",
        )
        with self.pool.connection() as conn:
            out = {}
            for t in tables:
                row = conn.execute(f"SELECT count(*) FROM {t}").fetchone()
                out[t] = int(row[0]) if row else 0
        out["packets"] = out.pop("packet_keys")
        return out
