"""``central backup DIR``: a consistent copy of a running central home, restorable by copying it back.

For the embedded SQLite backend the databases (``central.db``, ``pki/pki.db``) are copied with
SQLite's online backup API, so the copy is consistent while ``central serve`` keeps writing; the
envelope blobs are copied AFTER the database snapshot (a row is committed only once its blob is
durable, so every row in the copy has its blob). Keys, certificates, the CRL and ``central.toml``
are copied as they are. ``DIR`` is a complete home: restore with
``cp -a DIR /var/lib/central`` (service stopped), then ``central serve``.

Not copied: unfinished uploads (stations resend them) and the back-office HPKE private key (it
belongs offline, not in every backup). With PostgreSQL only the home's files are copied; the
database is backed up with ``pg_basebackup`` and WAL archiving (docs/scale.md).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import click

from sync.central.home import CentralError, CentralHome, fsync_dir

SKIP_TOP = {"uploads", "backoffice", "central.db", "central.db-wal", "central.db-shm"}
SKIP_NAMES = {"pki.db", "pki.db-wal", "pki.db-shm"}


def sqlite_backup(source: Path, target: Path) -> None:
    """Online backup of one SQLite database (consistent while others write), fsync'd."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst, pages=1024)
    finally:
        dst.close()
        src.close()
    with open(target, "rb+") as fh:
        os.fsync(fh.fileno())
    os.chmod(target, 0o600)


def backup_home(home: CentralHome, out: Path) -> dict[str, int]:
    """Write the backup into ``out`` (must be absent or empty); returns what was copied."""
    from sync.central.database import configured_url

    if out.exists() and any(out.iterdir()):
        raise CentralError(
            f"{out} is not empty: back up into a new directory", code="backup.target_not_empty"
        )
    if out.resolve().is_relative_to(home.root.resolve()):
        raise CentralError("the backup directory must be outside the central home", code="backup.inside_home")
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    counts = {"databases": 0, "files": 0, "blobs": 0}
    postgres = configured_url(home) is not None
    if not postgres:
        sqlite_backup(home.db, out / home.db.relative_to(home.root))
        counts["databases"] += 1
    if home.pki_db.exists():
        sqlite_backup(home.pki_db, out / home.pki_db.relative_to(home.root))
        counts["databases"] += 1
    for path in sorted(home.root.rglob("*")):
        rel = path.relative_to(home.root)
        if rel.parts[0] in SKIP_TOP or path.name in SKIP_NAMES or path.name.startswith("."):
            continue
        if rel.parts[0] == "blobs":
            continue
        target = out / rel
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            counts["files"] += 1
    if not postgres and home.blobs.exists():  # after the snapshot: every row's blob is already there
        for blob in sorted(home.blobs.rglob("*")):
            if blob.is_file() and not blob.name.startswith("."):
                target = out / blob.relative_to(home.root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(blob, target)
                counts["blobs"] += 1
    for d in [out, *[p for p in out.rglob("*") if p.is_dir()]]:
        fsync_dir(d)
    return counts


@click.command("backup")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def backup_cmd(ctx: click.Context, out: Path) -> None:
    """Copy this central home into OUT while it runs (SQLite: online backup API); restore = copy back."""
    from sync.central.database import configured_url

    home = ctx.find_root().obj
    assert isinstance(home, CentralHome)
    home.require()
    counts = backup_home(home, out)
    click.echo(
        f"backed up {home.root} to {out}: {counts['databases']} database(s), {counts['files']} files,"
        f" {counts['blobs']} envelopes"
    )
    if configured_url(home) is not None:
        click.echo(
            "the PostgreSQL database is NOT in this copy: back it up with pg_basebackup and WAL archiving"
            " (docs/scale.md)",
            err=True,
        )
    click.echo("not copied: unfinished uploads and the back-office HPKE private key (keep that offline)")
    click.echo(f"restore: stop central, cp -a {out}/. NEW_HOME/, then 'central --home NEW_HOME serve'")
