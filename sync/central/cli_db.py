"""``central db migrate`` and ``central db check``: the schema and health of central's database.

``migrate`` brings the configured database (``[storage] url`` / ``$CENTRAL_DATABASE_URL``, else the
embedded SQLite file) to this code's schema and creates the packet partitions ahead; it is safe to
run on several nodes at once. ``check`` connects and reports the schema version, row counts and
(PostgreSQL) partition health; it exits 1 when something needs doing, with what to do.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import click

from sync.central.home import CentralError, CentralHome

MIN_DAYS_AHEAD = 2


def _home(ctx: click.Context) -> CentralHome:
    home = ctx.find_root().obj
    assert isinstance(home, CentralHome)
    home.require()
    return home


@click.group("db")
def db_group() -> None:
    """The database: migrate the schema, check its health."""


@db_group.command("migrate")
@click.pass_context
def migrate_cmd(ctx: click.Context) -> None:
    """Bring the database to this central's schema (safe to run on every node)."""
    from sync.central.database import claim_identity, configured_url, connect_pool, describe_url
    from sync.central.migrate import migrate_pg, migrate_sqlite

    home = _home(ctx)
    url = configured_url(home)
    if url is None:
        conn = sqlite3.connect(home.db, timeout=30, isolation_level=None)
        try:
            before, after = migrate_sqlite(conn)
        finally:
            conn.close()
        click.echo(f"embedded SQLite {home.db}: schema {before} -> {after}")
        return
    from sync.central.pg_storage import PgStorage

    pool = connect_pool(url, max_size=2)
    try:
        with pool.connection() as pconn:
            before, after = migrate_pg(pconn)
            claim_identity(pconn, home)
        created = PgStorage(pool, create_partitions=False).ensure_partitions()
    finally:
        pool.close()
    click.echo(f"PostgreSQL {describe_url(url)}: schema {before} -> {after}")
    click.echo(f"partitions created: {len(created)}")


@db_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def check_cmd(ctx: click.Context, as_json: bool) -> None:
    """Connect; show schema version, row counts and partition health; exit 1 if anything is wrong."""
    home = _home(ctx)
    report = _check(home)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"backend:     {report['backend']} ({report['where']})")
        click.echo(f"schema:      {report['schema']} (this central needs {report['schema_needed']})")
        click.echo("rows:        " + " ".join(f"{k}={v}" for k, v in report["rows"].items()))
        part = report.get("partitions")
        if part is not None:
            click.echo(
                f"partitions:  {part['partitions']} daily, {part['first_day']} .. {part['last_day']},"
                f" today {'present' if part['today_present'] else 'MISSING'}, {part['days_ahead']} days"
                f" ahead, {part['rows_in_default']} rows in the default partition"
            )
        for problem in report["problems"]:
            click.echo(f"problem:     {problem}")
        click.echo(f"status:      {'ok' if not report['problems'] else 'needs attention'}")
    if report["problems"]:
        raise CentralError(report["problems"][0], code="storage.check_failed")


def _check(home: CentralHome) -> dict[str, Any]:
    from sync.central.database import configured_url, connect_pool, describe_url
    from sync.central.migrate import latest, pg_version, sqlite_version

    url = configured_url(home)
    problems: list[str] = []
    if url is None:
        if not home.db.exists():
            raise CentralError(
                f"no database at {home.db} yet: run 'central db migrate'", code="storage.missing"
            )
        conn = sqlite3.connect(f"file:{home.db}?mode=ro", uri=True, timeout=30)
        try:
            found = sqlite_version(conn)
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            rows = {
                t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                for t in ("packets", "uploads", "stations", "alerts")
                if t in tables
            }
        finally:
            conn.close()
        needed = latest("sqlite")
        report: dict[str, Any] = {"backend": "sqlite", "where": str(home.db), "schema": found}
    else:
        from sync.central.pg_storage import PgStorage

        pool = connect_pool(url, max_size=2)
        try:
            with pool.connection() as pconn:
                found = pg_version(pconn)
            needed = latest("postgresql")
            report = {"backend": "postgresql", "where": describe_url(url), "schema": found}
            if found == needed:
                store = PgStorage(pool, create_partitions=False)  # check only looks
                rows = store.row_counts()
                part = store.partition_health()
                report["partitions"] = part
                if not part["today_present"]:
                    problems.append(
                        "no partition for today's packets: run 'central db migrate' (or start serve)"
                    )
                elif part["days_ahead"] < MIN_DAYS_AHEAD:
                    problems.append(
                        f"partitions reach only {part['days_ahead']} days ahead: run 'central db migrate'"
                    )
                if part["rows_in_default"]:
                    problems.append(
                        f"{part['rows_in_default']} packets fell into the default partition: partitions fell"
                        " behind; keep a central node running (it creates them) and see docs/scale.md"
                    )
            else:
                rows = {}
        finally:
            pool.close()
    report["schema_needed"] = needed
    report["rows"] = rows
    if found < needed:
        problems.insert(0, f"schema {found} is older than this central's {needed}: run 'central db migrate'")
    elif found > needed:
        problems.insert(0, f"schema {found} is newer than this central's {needed}: upgrade central")
    report["problems"] = problems
    return report
