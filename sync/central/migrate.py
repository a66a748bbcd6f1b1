"""Versioned schema migrations for central's two backends (SQLite and PostgreSQL).

Migrations are numbered SQL files shipped with the package, ``migrations/<dialect>/NNNN_name.sql``;
table ``schema_version`` records which were applied. Each file runs in its own transaction with
its version row, so a failed migration leaves the previous version intact. A database whose
schema is newer than this code is refused: an older central must not write into it.

To add a migration: add the next numbered file for EVERY dialect (both backends implement the
same ``Storage`` protocol) and bump nothing else; ``LATEST`` follows the files.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sync.central.home import CentralError

if TYPE_CHECKING:
    import psycopg

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# An arbitrary constant: the advisory lock that serialises migrations across nodes.
PG_MIGRATION_LOCK = 0x63656E74


class SchemaError(CentralError):
    code = "storage.schema"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(dialect: str) -> list[Migration]:
    """The migrations for ``"sqlite"`` or ``"postgresql"``, in order (numbers 1..N, no gaps)."""
    out = []
    for path in sorted((MIGRATIONS_DIR / dialect).glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise RuntimeError(f"migration file {path.name} is not named NNNN_name.sql")
        out.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    for i, m in enumerate(out, start=1):
        if m.version != i:
            raise RuntimeError(f"{dialect} migrations are not numbered 1..N (found {m.version} at {i})")
    return out


def latest(dialect: str) -> int:
    return len(migrations(dialect))


def _newer(found: int, known: int) -> SchemaError:
    return SchemaError(
        f"the database schema is version {found} but this central knows only up to {known}:"
        " upgrade central on this machine (never run an older central against a newer database)",
        code="storage.schema_newer",
    )


def _failed(step: Migration, exc: BaseException) -> SchemaError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return SchemaError(
        f"migration {step.version} ({step.name}) failed and was rolled back: {first}; the database keeps"
        " its previous schema (a database changed by hand needs a restore from backup)",
        code="storage.migration_failed",
    )


def older(found: int, known: int) -> SchemaError:
    return SchemaError(
        f"the database schema is version {found}, this central needs {known}: run 'central db migrate' first",
        code="storage.schema_older",
    )


# -- SQLite --------------------------------------------------------------------------------------
def sqlite_version(conn: sqlite3.Connection) -> int:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "schema_version" in tables:
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)
    # A database from before versioned migrations has the version-1 tables without the table.
    return 1 if "packets" in tables else 0


def migrate_sqlite(conn: sqlite3.Connection) -> tuple[int, int]:
    """Bring an (autocommit) SQLite connection to the latest schema; returns (before, after)."""
    steps = migrations("sqlite")
    before = sqlite_version(conn)
    if before > len(steps):
        raise _newer(before, len(steps))
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    if before >= 1:
        conn.execute("INSERT OR IGNORE INTO schema_version VALUES (1, ?)", (time.time(),))
    for step in steps[before:]:
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _statements(step.sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, ?)", (step.version, time.time()))
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _failed(step, exc) from exc
            raise
    return before, len(steps)


def _statements(sql: str) -> list[str]:
    """Split a migration file on ``;`` at line ends (the files hold no procedural code)."""
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";").strip()]


# -- PostgreSQL ----------------------------------------------------------------------------------
def pg_version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return 0
    got = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(str(got[0])) if got is not None else 0


def migrate_pg(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[int, int]:
    """Bring a PostgreSQL database to the latest schema; safe to run from several nodes at once."""
    steps = migrations("postgresql")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PG_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
    before = pg_version(conn)
    if before > len(steps):
        raise _newer(before, len(steps))
    import psycopg

    for step in steps:
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (PG_MIGRATION_LOCK,))
                if pg_version(conn) >= step.version:  # another node applied it meanwhile
                    continue
                conn.execute(step.sql.encode())
                conn.execute("INSERT INTO schema_version(version) VALUES (%s)", (step.version,))
        except psycopg.Error as exc:
            raise _failed(step, exc) from exc
    return before, len(steps)


def require_current_pg(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The schema version if it is exactly the code's; :class:`SchemaError` otherwise."""
    found, known = pg_version(conn), latest("postgresql")
    if found > known:
        raise _newer(found, known)
    if found < known:
        raise older(found, known)
    return found
