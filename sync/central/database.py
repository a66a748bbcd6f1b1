"""Choosing and opening central's storage backend: embedded SQLite or PostgreSQL.

The backend comes from ``$CENTRAL_DATABASE_URL`` if set, else ``[storage] url`` in
``central.toml``, else the embedded SQLite database in the home. A ``postgresql://`` URL is a libpq
URL; it never carries a password in the config: the password comes from a libpq passfile
(``~/.pgpass`` or ``$PGPASSFILE``), a service file (``postgresql:///?service=central``) or
``$PGPASSWORD``/``$CENTRAL_DATABASE_URL`` in the service's environment.

Every failure to open is one :class:`~sync.central.home.CentralError` line with a dotted code:
a bad URL, an unreachable server, a schema older or newer than this code. Nothing starts
half-working.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sync.central.home import CentralError, CentralHome
from sync.central.storage import SqliteStorage, Storage, UploadLimits
from sync.pki.issue import CertBackend, CertRegistry
from sync.pki.tokens import TokenBackend, TokenStore

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from sync.central.pg_storage import Conn

ENV_URL = "CENTRAL_DATABASE_URL"
SCHEMES = ("postgresql://", "postgres://")
DEFAULT_POOL_SIZE = 10
CONNECT_TIMEOUT_S = 10
POOL_WAIT_S = 10.0  # a request waits at most this for a connection, then it is 503 (retry later)


class DatabaseError(CentralError):
    code = "storage.database"


def is_storage_outage(exc: BaseException) -> bool:
    """True for a lost or unreachable PostgreSQL (connection refused or closed, pool timeout)."""
    import sys

    psycopg = sys.modules.get("psycopg")  # not imported at all: cannot be a PostgreSQL error
    return psycopg is not None and isinstance(exc, psycopg.OperationalError)


def configured_url(home: CentralHome) -> str | None:
    """The database URL in force: ``$CENTRAL_DATABASE_URL``, then ``[storage] url``; None = SQLite."""
    env = os.environ.get(ENV_URL, "").strip()
    if env:
        return env
    url = storage_config(home).get("url")
    return str(url).strip() or None if url else None


def storage_config(home: CentralHome) -> dict[str, Any]:
    if not home.config_path.exists():
        return {}
    section = home.config().get("storage", {})
    return dict(section) if isinstance(section, dict) else {}


def upload_limits(home: CentralHome) -> UploadLimits:
    cfg, base = storage_config(home), UploadLimits()
    try:
        return UploadLimits(
            max_partials_per_station=int(cfg.get("max_partials_per_station", base.max_partials_per_station)),
            partial_expiry_s=float(cfg.get("partial_expiry_s", base.partial_expiry_s)),
            disk_reserve_bytes=int(cfg.get("disk_reserve_mb", base.disk_reserve_bytes // 2**20)) * 2**20,
        )
    except (TypeError, ValueError) as exc:
        raise CentralError(
            f"[storage] limits in {home.config_path} must be numbers: {exc}", code="config.invalid"
        ) from exc


def describe_url(url: str) -> str:
    """Where a URL points, for messages: host, port and database, never a password."""
    params = parse_url(url)
    host = params.get("host") or "the local socket"
    port = f":{params['port']}" if params.get("port") else ""
    return f"database {params.get('dbname') or params.get('service') or '(default)'} on {host}{port}"


def parse_url(url: str) -> dict[str, Any]:
    """The libpq parameters of a ``postgresql://`` URL; :class:`DatabaseError` if it is not one."""
    if not url.startswith(SCHEMES):
        raise DatabaseError(
            "the database URL must start with postgresql:// (or leave it out for the embedded SQLite"
            " database)",
            code="storage.bad_url",
        )
    from psycopg.conninfo import conninfo_to_dict

    try:
        return dict(conninfo_to_dict(url))
    except Exception as exc:  # psycopg.ProgrammingError: a malformed URL
        raise DatabaseError(
            "the database URL is malformed: use postgresql://USER@HOST:PORT/DBNAME",
            code="storage.bad_url",
        ) from exc


def check_config_url(url: str) -> None:
    """A URL fit to be written into ``central.toml``: valid and without a clear-text password."""
    params = parse_url(url)
    if params.get("password"):
        raise DatabaseError(
            "the URL holds a password, and central.toml never does: put the password in a libpq"
            " passfile (~/.pgpass, mode 0600) or a service file, or give the full URL through"
            f" ${ENV_URL} in the service's environment",
            code="storage.password_in_config",
        )


def connect_pool(url: str, *, max_size: int = DEFAULT_POOL_SIZE) -> ConnectionPool[Conn]:
    """A pool of autocommit connections; the server must answer first (clear error otherwise)."""
    import psycopg
    from psycopg_pool import ConnectionPool

    parse_url(url)
    where = describe_url(url)
    try:
        probe = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or ["no answer"])[-1]
        raise DatabaseError(
            f"cannot reach the {where}: {first.removeprefix('FATAL:').strip()} (check [storage] url or"
            f" ${ENV_URL}, that PostgreSQL runs, and the passfile)",
            code="storage.unreachable",
        ) from exc
    probe.close()
    pool: ConnectionPool[Conn] = ConnectionPool(
        url,
        min_size=1,
        max_size=max(1, max_size),
        kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
        open=False,
        timeout=POOL_WAIT_S,
        name="central",
    )
    pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    return pool


def claim_identity(conn: Conn, home: CentralHome) -> None:
    """Bind the database to this home's CA on first use; refuse a database of another central."""
    from sync.pki.ca import fingerprint, load_cert

    mine = fingerprint(load_cert(home.ca_cert))
    conn.execute(
        "INSERT INTO central_identity(id, central_id, ca_fingerprint) VALUES (1, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (home.central_id, mine),
    )
    row = conn.execute("SELECT central_id, ca_fingerprint FROM central_identity WHERE id = 1").fetchone()
    if row is not None and str(row[1]) != mine:
        raise DatabaseError(
            f"the database belongs to central {row[0]} (CA SHA256:{row[1]}), not to this home's CA: a new"
            " node needs a copy of that central's home, and a new central needs its own database",
            code="storage.other_central",
        )


def database_is_claimed(conn: Conn) -> bool:
    return conn.execute("SELECT 1 FROM central_identity WHERE id = 1").fetchone() is not None


@dataclass
class Backend:
    """What a central process opens once: the storage, the token store and the cert registry."""

    url: str | None
    storage: Storage
    tokens: TokenBackend
    registry: CertBackend
    _pool: Any = field(default=None, repr=False)

    @property
    def dialect(self) -> str:
        return "sqlite" if self.url is None else "postgresql"

    def close(self) -> None:
        self.storage.close()


def open_backend(home: CentralHome, *, migrate: bool = False, pool_size: int | None = None) -> Backend:
    """Open the configured backend. PostgreSQL's schema must be current unless ``migrate``."""
    url = configured_url(home)
    limits = upload_limits(home)
    storage: Storage
    if url is None:
        storage = SqliteStorage(home.db, home.blobs, home.uploads, limits=limits)
        return Backend(None, storage, TokenStore(home.pki_db), CertRegistry(home.pki_db))
    from sync.central.migrate import migrate_pg, require_current_pg
    from sync.central.pg_pki import PgCertRegistry, PgTokenStore
    from sync.central.pg_storage import PgStorage

    size = pool_size or int(storage_config(home).get("pool_size", DEFAULT_POOL_SIZE))
    pool = connect_pool(url, max_size=size)
    try:
        with pool.connection() as conn:
            if migrate:
                migrate_pg(conn)
            else:
                require_current_pg(conn)
            claim_identity(conn, home)
        storage = PgStorage(pool, limits=limits)
    except BaseException:
        pool.close()
        raise
    return Backend(url, storage, PgTokenStore(pool), PgCertRegistry(pool), pool)


def open_pki(home: CentralHome) -> tuple[TokenBackend, CertBackend, Any]:
    """Token store, cert registry and the pool to close (None for SQLite), for ``Authority``."""
    url = configured_url(home)
    if url is None:
        return TokenStore(home.pki_db), CertRegistry(home.pki_db), None
    from sync.central.migrate import require_current_pg
    from sync.central.pg_pki import PgCertRegistry, PgTokenStore

    pool = connect_pool(url, max_size=2)
    try:
        with pool.connection() as conn:
            require_current_pg(conn)
            claim_identity(conn, home)
    except BaseException:
        pool.close()
        raise
    return PgTokenStore(pool), PgCertRegistry(pool), pool


def open_storage(home: CentralHome) -> Storage:
    """Just the storage (ops views, back office); close it when done."""
    backend = open_backend(home)
    return backend.storage
