"""The station's encrypted queue: one SQLCipher 4 database shared by the kiosk and the sync agent.

Settings follow DESIGN.md: a raw 256-bit key (no passphrase KDF), WAL, ``synchronous=FULL``,
``secure_delete=ON`` and a ``busy_timeout`` so two processes can write; every page's HMAC is
checked when the database is opened. Opening never changes anything on disk before the key and
the integrity check have passed: a wrong key, a missing file or a tampered page raise
:class:`~station.errors.StoreError` with the file exactly as it was.

Packets move ``sealed -> uploading -> acked -> purged`` (``uploading -> sealed`` is allowed when an
upload is abandoned); a trigger refuses any other transition, so nothing is overwritten in place.
The schema is versioned with ``PRAGMA user_version`` and migrated in one transaction.

Envelopes stay in the SQLCipher pages by default. ``Store.open(inline_max=N)`` puts every envelope
of more than N bytes outside them instead, one file each in ``<queue>.envelopes/<packet_id>.env``
beside ``queue.db``: the file is written and ``fdatasync``'d (and its directory fsync'd) inside the
write transaction, before the row that names it (with its size and SHA-256, checked on every read)
commits with its audit entry; a crash in between leaves a file no row names, which the next open
wipes; a purge zeroes the file in place, syncs and unlinks it after its commit. The envelope is
HPKE-sealed and signed, so a file costs no secrecy, but the folder shows how many packets are queued,
their sizes and commit times. Measured side by side (bench/commit.py), the file costs two more
fsyncs than it saves in page encryption: on this project's machine it was no faster when the disk
was quiet and two to three times slower when it was busy, so it is not the default.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlcipher3

from station.errors import StoreError

KEY_BYTES = 32
PLAINTEXT_HEADER = b"SQLite format 3\x00"
STATES = ("sealed", "uploading", "acked", "purged")
PENDING_STATES = ("sealed", "uploading")
INLINE_MAX = 1 << 40  # by default every envelope stays in the database (see the module's docstring)
ENVELOPE_SUFFIX = ".env"
_SAFE_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,63}")

# Each entry moves the schema from version i to i + 1. Never edit a released entry: append one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE packets (
        packet_id   TEXT PRIMARY KEY,
        created_at  REAL NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('sealed', 'uploading', 'acked', 'purged')),
        size        INTEGER NOT NULL CHECK (size > 0),
        sha256      TEXT NOT NULL CHECK (length(sha256) = 64),
        envelope    BLOB,
        receipt     BLOB,
        acked_at    REAL,
        purged_at   REAL,
        CHECK ((state = 'purged') = (envelope IS NULL)),
        CHECK ((state IN ('acked', 'purged')) = (receipt IS NOT NULL))
    ) WITHOUT ROWID;
    CREATE INDEX packets_by_state ON packets (state, created_at);
    CREATE TRIGGER packets_state_machine BEFORE UPDATE OF state ON packets
    WHEN NOT (
           (OLD.state = 'sealed'    AND NEW.state IN ('sealed', 'uploading', 'acked'))
        OR (OLD.state = 'uploading' AND NEW.state IN ('uploading', 'sealed', 'acked'))
        OR (OLD.state = 'acked'     AND NEW.state = 'purged')
    )
    BEGIN SELECT RAISE(ABORT, 'illegal packet state change'); END;
    CREATE TRIGGER packets_keep_content BEFORE UPDATE OF packet_id, created_at, size, sha256 ON packets
    BEGIN SELECT RAISE(ABORT, 'packet content is immutable'); END;
    CREATE TRIGGER packets_no_delete BEFORE DELETE ON packets
    BEGIN SELECT RAISE(ABORT, 'packets are purged, never deleted'); END;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE audit (
        seq     INTEGER PRIMARY KEY,
        at      REAL NOT NULL,
        event   TEXT NOT NULL,
        fields  TEXT NOT NULL,
        prev    TEXT NOT NULL,
        hash    TEXT NOT NULL
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
    # 1 -> 2: policy bundles from central (append-only history; the newest is in force) and the
    # processing outcomes central reports per packet (no PII: codes and a short note).
    """
    CREATE TABLE policy_bundles (
        version         INTEGER NOT NULL CHECK (version >= 1),
        roster_version  INTEGER NOT NULL CHECK (roster_version >= 0),
        bundle          BLOB NOT NULL,
        installed_at    REAL NOT NULL,
        PRIMARY KEY (version, roster_version)
    ) WITHOUT ROWID;
    CREATE TRIGGER policy_bundles_no_update BEFORE UPDATE ON policy_bundles
    BEGIN SELECT RAISE(ABORT, 'policy bundles are kept as received'); END;
    CREATE TRIGGER policy_bundles_no_delete BEFORE DELETE ON policy_bundles
    BEGIN SELECT RAISE(ABORT, 'policy bundles are kept as received'); END;
    CREATE TABLE outcomes (
        packet_id    TEXT PRIMARY KEY,
        tracking     TEXT NOT NULL,
        seq          INTEGER NOT NULL,
        outcome      TEXT NOT NULL CHECK (outcome IN ('accepted', 're-enroll', 'rejected')),
        reason       TEXT NOT NULL,
        note         TEXT NOT NULL,
        decided_at   TEXT NOT NULL,
        received_at  REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX outcomes_by_kind ON outcomes (outcome, decided_at);
    """,
    # 2 -> 3: an envelope may live in a file beside the database (``in_file``, placed before the blob so a
    # scan never reads a blob's overflow pages to reach it). SQLite cannot change a CHECK in place: the
    # table is rebuilt (DROP TABLE fires no delete trigger) and its index and triggers made again.
    """
    CREATE TABLE packets_v2 (
        packet_id   TEXT PRIMARY KEY,
        created_at  REAL NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('sealed', 'uploading', 'acked', 'purged')),
        size        INTEGER NOT NULL CHECK (size > 0),
        sha256      TEXT NOT NULL CHECK (length(sha256) = 64),
        in_file     INTEGER NOT NULL DEFAULT 0 CHECK (in_file IN (0, 1)),
        envelope    BLOB,
        receipt     BLOB,
        acked_at    REAL,
        purged_at   REAL,
        CHECK (NOT (in_file = 1 AND envelope IS NOT NULL)),
        CHECK ((state = 'purged') = (envelope IS NULL AND in_file = 0)),
        CHECK ((state IN ('acked', 'purged')) = (receipt IS NOT NULL))
    ) WITHOUT ROWID;
    INSERT INTO packets_v2
        (packet_id, created_at, state, size, sha256, envelope, receipt, acked_at, purged_at)
        SELECT packet_id, created_at, state, size, sha256, envelope, receipt, acked_at, purged_at
        FROM packets;
    DROP TABLE packets;
    ALTER TABLE packets_v2 RENAME TO packets;
    CREATE INDEX packets_by_state ON packets (state, created_at);
    CREATE TRIGGER packets_state_machine BEFORE UPDATE OF state ON packets
    WHEN NOT (
           (OLD.state = 'sealed'    AND NEW.state IN ('sealed', 'uploading', 'acked'))
        OR (OLD.state = 'uploading' AND NEW.state IN ('uploading', 'sealed', 'acked'))
        OR (OLD.state = 'acked'     AND NEW.state = 'purged')
    )
    BEGIN SELECT RAISE(ABORT, 'illegal packet state change'); END;
    CREATE TRIGGER packets_keep_content BEFORE UPDATE OF packet_id, created_at, size, sha256 ON packets
    BEGIN SELECT RAISE(ABORT, 'packet content is immutable'); END;
    CREATE TRIGGER packets_file_only_freed BEFORE UPDATE OF in_file ON packets
    WHEN NEW.in_file != OLD.in_file AND NOT (OLD.in_file = 1 AND NEW.state = 'purged')
    BEGIN SELECT RAISE(ABORT, 'an envelope file is only released by a purge'); END;
    CREATE TRIGGER packets_no_delete BEFORE DELETE ON packets
    BEGIN SELECT RAISE(ABORT, 'packets are purged, never deleted'); END;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class QueuedPacket:
    packet_id: str
    created_at: float
    size: int
    sha256: str
    state: str


@dataclass(frozen=True)
class PacketRow(QueuedPacket):
    acked_at: float | None
    purged_at: float | None
    has_receipt: bool


# SQLite's primary result codes that say something about the disk rather than the key.
SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 10, 13, 14
# Below this much free space an I/O error while writing is the disk being full.
DISK_FULL_FREE_BYTES = 8 * 1024 * 1024


def disk_full_error(path: Path) -> StoreError:
    return StoreError(
        f"The disk holding {path} is full: the queue cannot write, so nothing new was saved (what was"
        " saved before is intact, and the key is fine: do not re-provision or replace the disk). Free"
        " space: let the station sync and run 'station purge', or remove other files; then try again.",
        urdu="ڈسک بھر چکی ہے: اندراج محفوظ نہیں ہوا۔ ٹیکنیشن کو بلائیں۔",
        code="store.disk_full",
    )


def _free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path.parent).free
    except OSError:
        return None


def disk_problem(exc: BaseException, path: Path) -> StoreError | None:
    """The :class:`StoreError` for an SQLite error caused by the disk (full, or failing), else None."""
    code = int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if code not in (SQLITE_FULL, SQLITE_IOERR, SQLITE_CANTOPEN):
        return None
    free = _free_bytes(path)
    if code == SQLITE_FULL or (free is not None and free < DISK_FULL_FREE_BYTES):
        return disk_full_error(path)
    return StoreError(
        f"The disk holding {path} gave an I/O error ({exc}): nothing was changed. Check the disk"
        " ('station doctor', the system log) before anything else; the key is not the problem.",
        urdu="ڈسک میں خرابی ہے: ٹیکنیشن کو بلائیں۔",
        code="store.io",
    )


def _check_access(path: Path) -> None:
    if os.access(path, os.R_OK | os.W_OK):
        return
    st = path.stat()
    raise StoreError(
        f"This user (uid {os.geteuid()}) cannot read and write {path} (owner uid {st.st_uid}, mode"
        f" {stat.S_IMODE(st.st_mode):04o}): run the command as the station's user, or let"
        " 'station provision' set the owners again.",
        code="store.permissions",
    )


def _is_encrypted_file(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(len(PLAINTEXT_HEADER))
    return head != PLAINTEXT_HEADER


class Store:
    """An open queue database. One connection per process; safe across two processes (WAL)."""

    def __init__(self, conn: Any, path: Path, *, inline_max: int = INLINE_MAX) -> None:
        self._conn = conn
        self.path = path
        self.envelope_dir = envelope_dir(path)
        self.inline_max = inline_max  # envelopes over this many bytes go to files
        self._lock = threading.RLock()
        self._depth = 0
        self._written: list[Path] = []  # envelope files this transaction created (removed on rollback)
        self._after_commit: list[Callable[[], None]] = []  # run once the transaction is durable
        self.anchor_key: bytes | None = None  # set by open_station: the audit head's rollback anchor

    # -- opening -----------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: Path,
        key: bytes,
        *,
        create: bool = False,
        busy_timeout_ms: int = 10_000,
        integrity_check: bool = True,
        inline_max: int = INLINE_MAX,
    ) -> Store:
        """Open (or with ``create``, create) the queue at ``path`` with the raw 32-byte ``key``."""
        path = Path(path)
        if len(key) != KEY_BYTES:
            raise StoreError("The database key is not 256 bits: the key file is damaged. Call a technician.")
        exists = path.exists()
        if not exists and not create:
            raise StoreError(
                f"No queue database at {path}: run 'station init' (or restore the station's data).",
                code="store.missing",
            )
        if exists:
            if path.stat().st_size == 0 or path.stat().st_size % 512:
                raise StoreError(
                    f"The queue database {path} is truncated or damaged: do not delete it;"
                    " call a technician.",
                    code="store.damaged",
                )
            _check_access(path)
            if not _is_encrypted_file(path):
                raise StoreError(
                    f"{path} is an unencrypted database, not a station queue: refusing to use it.",
                    code="store.plaintext",
                )
        # Open read-only first: a wrong key or a damaged file must not make SQLite touch anything
        # (no WAL recovery, no journal, no new files).
        if exists:
            cls._probe(path, key, integrity_check=integrity_check)
        conn = sqlcipher3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
        )
        try:
            cls._key(conn, key)
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError("The queue database cannot use WAL mode: check the disk.", code="store.wal")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("PRAGMA foreign_keys = ON")
            # cipher_memory_security stays OFF on purpose: it wipes every SQLite allocation (3-4x slower
            # commits, measured in bench/commit.py) but the rows hold only sealed envelopes, ids and
            # codes; SQLCipher wipes its key material regardless.
            store = cls(conn, path, inline_max=inline_max)
            store._migrate()
            store._envelope_dir_ready()
            store.clean_envelope_files()
        except sqlcipher3.DatabaseError as exc:
            conn.close()
            raise disk_problem(exc, path) or StoreError(
                f"The queue database could not be opened ({exc}): call a technician.", code="store.open"
            ) from exc
        except BaseException:
            conn.close()
            raise
        if not exists:
            os.chmod(path, 0o600)
        return store

    @staticmethod
    def _key(conn: Any, key: bytes) -> None:
        # SQLCipher would print its own errors (a wrong key's HMAC failures) to stderr: we report them.
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
        conn.execute("PRAGMA cipher_compatibility = 4")

    @classmethod
    def _probe(cls, path: Path, key: bytes, *, integrity_check: bool) -> None:
        # With no WAL beside it (no other process has the queue open), read it as immutable: SQLite
        # then creates no -wal/-shm files. Otherwise read-only through the existing WAL.
        wal = path.with_name(path.name + "-wal")
        uri = f"file:{path}?mode=ro" if wal.exists() else f"file:{path}?immutable=1"
        try:
            conn = sqlcipher3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        except sqlcipher3.DatabaseError as exc:
            raise StoreError(f"The queue database cannot be read ({exc}): check permissions.") from exc
        try:
            cls._key(conn, key)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlcipher3.DatabaseError as exc:
                raise disk_problem(exc, path) or StoreError(
                    "The queue database does not open with this station's key (wrong key, or the file was"
                    " replaced or damaged). Nothing was changed: call a technician.",
                    code="store.wrong_key",
                ) from exc
            if integrity_check:
                try:
                    problems = conn.execute("PRAGMA cipher_integrity_check").fetchall()
                    if not problems:
                        problems = [r for r in conn.execute("PRAGMA quick_check").fetchall() if r[0] != "ok"]
                except sqlcipher3.DatabaseError as exc:
                    problems = [(str(exc),)]
                if problems:
                    raise StoreError(
                        f"The queue database failed its integrity check ({len(problems)} problem(s)): it was"
                        " tampered with or damaged. Nothing was changed: call a technician.",
                        code="store.tampered",
                    )
        finally:
            conn.close()

    def _migrate(self) -> None:
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The queue database is from a newer version of the software (schema {version} >"
                f" {SCHEMA_VERSION}): install the newer version again.",
                code="store.newer_schema",
            )
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])  # another process?
            for number in range(version, SCHEMA_VERSION):
                for statement in _split_sql(MIGRATIONS[number]):
                    self._conn.execute(statement)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlcipher3.DatabaseError):
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """A write transaction (``BEGIN IMMEDIATE``); nested calls join the outer one."""
        with self._lock:
            if self._conn is None:
                raise StoreError("The queue database is closed.", code="store.closed")
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
                if self._written:  # the new files' names are durable before the rows naming them
                    _fsync_dir(self.envelope_dir)
                self._depth = 0
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._depth = 0
                written, self._written, self._after_commit = self._written, [], []
                with contextlib.suppress(sqlcipher3.Error):
                    self._conn.execute("ROLLBACK")
                for file in written:  # no row names them: they are wiped now, not left to the next open
                    _wipe(file)
                problem = disk_problem(exc, self.path)
                if problem is None:
                    raise
                raise problem from exc
            self._written = []
            after, self._after_commit = self._after_commit, []
            for action in after:
                action()

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the open transaction has committed (never if it rolls back)."""
        with self._lock:
            if not self._depth:
                raise StoreError("after_commit needs an open transaction.", code="store.no_transaction")
            self._after_commit.append(action)

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            if self._conn is None:
                raise StoreError("The queue database is closed.", code="store.closed")
            try:
                return list(self._conn.execute(sql, args).fetchall())
            except sqlcipher3.OperationalError as exc:
                problem = disk_problem(exc, self.path)
                if problem is None:
                    raise
                raise problem from exc

    def select(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query, for the station's own modules that keep tables here (policy)."""
        return self._query(sql, args)

    # -- packets -----------------------------------------------------------------------------------
    def add_packet(self, packet_id: str, envelope: bytes, sha256: str, created_at: float) -> None:
        """Queue a sealed packet (call inside :meth:`transaction` to commit it with its audit event).

        An envelope over ``inline_max`` bytes goes to its own file, synced inside the transaction
        before the row that names it commits."""
        in_file = len(envelope) > self.inline_max and _SAFE_ID.fullmatch(packet_id) is not None
        inline = None if in_file else envelope
        with self.transaction() as conn:
            try:
                conn.execute(
                    "INSERT INTO packets (packet_id, created_at, state, size, sha256, in_file, envelope)"
                    " VALUES (?, ?, 'sealed', ?, ?, ?, ?)",
                    (packet_id, created_at, len(envelope), sha256, int(in_file), inline),
                )
            except sqlcipher3.IntegrityError as exc:
                raise StoreError(f"Packet {packet_id} is already queued.", code="store.duplicate") from exc
            if in_file:
                # the row is not committed yet, so no reader sees it before its file is complete
                path = self._envelope_path(packet_id)
                _write_synced(path, envelope)
                self._written.append(path)

    def pending(self, limit: int = 100) -> list[QueuedPacket]:
        """Packets not yet acknowledged, oldest first."""
        rows = self._query(
            "SELECT packet_id, created_at, size, sha256, state FROM packets"
            " WHERE state IN ('sealed', 'uploading') ORDER BY created_at, packet_id LIMIT ?",
            (limit,),
        )
        return [QueuedPacket(r[0], float(r[1]), int(r[2]), str(r[3]), str(r[4])) for r in rows]

    def packet(self, packet_id: str) -> PacketRow:
        rows = self._query(
            "SELECT packet_id, created_at, size, sha256, state, acked_at, purged_at, receipt IS NOT NULL"
            " FROM packets WHERE packet_id = ?",
            (packet_id,),
        )
        if not rows:
            raise StoreError(f"No packet {packet_id} in the queue.", code="store.no_packet")
        r = rows[0]
        return PacketRow(r[0], float(r[1]), int(r[2]), r[3], r[4], r[5], r[6], bool(r[7]))

    def envelope(self, packet_id: str) -> bytes:
        rows = self._query(
            "SELECT envelope, in_file, size, sha256 FROM packets WHERE packet_id = ?", (packet_id,)
        )
        if not rows:
            raise StoreError(f"No packet {packet_id} in the queue.", code="store.no_packet")
        blob, in_file, size, sha256 = rows[0]
        if in_file:
            return self._read_envelope_file(packet_id, int(size), str(sha256))
        if blob is None:
            raise StoreError(
                f"Packet {packet_id} was purged after its retention period.", code="store.purged"
            )
        return bytes(blob)

    def _envelope_path(self, packet_id: str) -> Path:
        return self.envelope_dir / f"{packet_id}{ENVELOPE_SUFFIX}"

    def _read_envelope_file(self, packet_id: str, size: int, sha256: str) -> bytes:
        path = self._envelope_path(packet_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            raise StoreError(
                f"The envelope file of packet {packet_id} cannot be read ({exc.strerror}): check the disk"
                f" and the permissions of {self.envelope_dir}.",
                code="store.envelope_unreadable",
            ) from exc
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            raise StoreError(
                f"The envelope file of packet {packet_id} is missing or damaged ({path}): do not delete"
                " anything; call a technician.",
                code="store.envelope_damaged",
            )
        return data

    def _envelope_dir_ready(self) -> None:
        try:
            self.envelope_dir.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"The envelope folder {self.envelope_dir} cannot be made ({exc.strerror}): check the disk.",
                code="store.envelope_dir",
            ) from exc

    def clean_envelope_files(self) -> list[str]:
        """Wipe envelope files no live row names: left by a crash between file and row, or by a crash
        between a purge's commit and its wipe. Runs at open, under the write lock, so no other
        process is between writing a file and committing its row. Returns the names wiped."""
        try:
            names = sorted(entry.name for entry in os.scandir(self.envelope_dir) if entry.is_file())
        except FileNotFoundError:
            return []
        if not names:
            return []
        wiped: list[str] = []
        with self.transaction() as conn:
            for name in names:
                packet_id = name[: -len(ENVELOPE_SUFFIX)] if name.endswith(ENVELOPE_SUFFIX) else ""
                row = conn.execute("SELECT in_file FROM packets WHERE packet_id = ?", (packet_id,)).fetchone()
                if row is None or not row[0]:
                    _wipe(self.envelope_dir / name)
                    wiped.append(name)
            if wiped:
                _fsync_dir(self.envelope_dir)
        return wiped

    def receipt(self, packet_id: str) -> bytes | None:
        rows = self._query("SELECT receipt FROM packets WHERE packet_id = ?", (packet_id,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def _set_state(self, packet_id: str, sql: str, args: tuple[Any, ...]) -> None:
        with self.transaction() as conn:
            try:
                cur = conn.execute(sql, (*args, packet_id))
            except sqlcipher3.IntegrityError as exc:
                state = self.packet(packet_id).state
                raise StoreError(
                    f"Packet {packet_id} cannot change state from {state!r}: {exc}.", code="store.state"
                ) from exc
            if cur.rowcount != 1:
                raise StoreError(f"No packet {packet_id} in the queue.", code="store.no_packet")

    def mark_uploading(self, packet_id: str) -> None:
        self._set_state(packet_id, "UPDATE packets SET state = 'uploading' WHERE packet_id = ?", ())

    def mark_sealed(self, packet_id: str) -> None:
        """Back to the queue after an abandoned upload."""
        self._set_state(packet_id, "UPDATE packets SET state = 'sealed' WHERE packet_id = ?", ())

    def record_ack(self, packet_id: str, receipt: bytes, acked_at: float) -> None:
        """The central office has the packet: keep its signed receipt with the ack, in one transaction.

        A second ack of an acked packet keeps the first receipt (the server returns the same one)."""
        with self.transaction():
            row = self.packet(packet_id)
            if row.state in ("acked", "purged"):
                return
            self._set_state(
                packet_id,
                "UPDATE packets SET state = 'acked', receipt = ?, acked_at = ? WHERE packet_id = ?",
                (receipt, acked_at),
            )

    def purge_acked(self, older_than: float, *, now: float | None = None) -> list[str]:
        """Drop the envelopes of packets acked before ``older_than`` (epoch seconds); keep the row.

        With ``secure_delete`` the freed pages are zeroed; :meth:`checkpoint` then moves them
        into the main file and truncates the WAL, so no byte of a purged envelope remains. An envelope
        file is zeroed in place, synced and unlinked once the purge has committed."""
        now = time.time() if now is None else now
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT packet_id, in_file FROM packets WHERE state = 'acked' AND acked_at < ?"
                " ORDER BY acked_at",
                (older_than,),
            ).fetchall()
            ids = [str(r[0]) for r in rows]
            files = [self._envelope_path(str(r[0])) for r in rows if r[1]]
            for packet_id in ids:
                conn.execute(
                    "UPDATE packets SET state = 'purged', envelope = NULL, in_file = 0, purged_at = ?"
                    " WHERE packet_id = ?",
                    (now, packet_id),
                )
            if files:
                self._after_commit.append(lambda: self._wipe_all(files))
        return ids

    def _wipe_all(self, files: list[Path]) -> None:
        for file in files:
            _wipe(file)
        _fsync_dir(self.envelope_dir)

    def checkpoint(self) -> None:
        """Copy the WAL into the main file and truncate it (after a purge)."""
        rows = self._query("PRAGMA wal_checkpoint(TRUNCATE)")
        if rows and int(rows[0][0]) != 0:
            raise StoreError(
                "The queue is busy (another process is reading it): the purge checkpoint will be retried.",
                code="store.busy",
            )

    def counts(self) -> dict[str, int]:
        result = dict.fromkeys(STATES, 0)
        for state, n in self._query("SELECT state, count(*) FROM packets GROUP BY state"):
            result[str(state)] = int(n)
        return result

    def oldest_pending_created_at(self) -> float | None:
        rows = self._query("SELECT min(created_at) FROM packets WHERE state IN ('sealed', 'uploading')")
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    # -- meta --------------------------------------------------------------------------------------
    def meta_get(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def meta_set(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])


def envelope_dir(db_path: Path) -> Path:
    """Where the envelope files of the queue at ``db_path`` live (``queue.db`` -> ``queue.envelopes``)."""
    return db_path.with_name(db_path.stem + ".envelopes")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    """A new file holding ``data``, on disk when this returns (the directory entry: see the caller)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError as exc:
        raise StoreError(
            f"An envelope file {path.name} already exists: the packet id is reused.", code="store.duplicate"
        ) from exc
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full_error(path) from exc
        raise StoreError(f"The envelope file {path} cannot be written ({exc.strerror}).") from exc
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fdatasync(fd)
    except OSError as exc:
        os.close(fd)
        _wipe(path)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise disk_full_error(path) from exc
        raise StoreError(f"The envelope file {path} cannot be written ({exc.strerror}).") from exc
    os.close(fd)


def _wipe(path: Path) -> None:
    """Overwrite a file with zeros in place, sync it, then unlink it; a missing file is fine."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        size = os.fstat(fd).st_size
        zeros = bytes(min(size, 1 << 20))
        done = 0
        while done < size:
            done += os.pwrite(fd, zeros[: size - done], done)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _split_sql(script: str) -> list[str]:
    """Statements of a migration (triggers keep their inner ``;`` up to ``END;``)."""
    statements: list[str] = []
    buf: list[str] = []
    in_trigger = False
    for line in script.strip().splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        buf.append(line)
        if stripped.upper().startswith("CREATE TRIGGER"):
            in_trigger = True
        if (in_trigger and stripped.upper().endswith("END;")) or (not in_trigger and stripped.endswith(";")):
            statements.append("\n".join(buf))
            buf = []
            in_trigger = False
    if buf:
        statements.append("\n".join(buf))
    return statements
