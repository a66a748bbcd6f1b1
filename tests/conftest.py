"""Shared test fixtures. Every recording and image a test uses is a copy in tests/fixtures/,
with its provenance beside it; nothing outside this repository is read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.pg_support import Cluster, missing_reason, start_cluster

if TYPE_CHECKING:
    from sync.central.storage import Storage

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def station_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    return home


# -- storage backends: every storage test runs on SQLite and on a real PostgreSQL ----------------
@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster for the session (skips only if the binaries are missing)."""
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty database in the session's cluster (dropped after the test)."""
    url = pg_cluster.create_database()
    try:
        yield url
    finally:
        pg_cluster.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request: pytest.FixtureRequest) -> str | None:
    """None for the embedded SQLite backend, else the URL of a fresh migrated PostgreSQL database."""
    if request.param == "sqlite":
        return None
    url = request.getfixturevalue("pg_url")
    assert isinstance(url, str)
    from sync.central.database import connect_pool
    from sync.central.migrate import migrate_pg

    pool = connect_pool(url, max_size=1)
    try:
        with pool.connection() as conn:
            migrate_pg(conn)
    finally:
        pool.close()
    return url


@pytest.fixture
def storage(backend_url: str | None, tmp_path: Path) -> Iterator[Storage]:
    """A ``Storage`` on each backend in turn (``-k sqlite`` / ``-k postgresql`` picks one)."""
    from sync.central.database import connect_pool
    from sync.central.storage import SqliteStorage

    store: Storage
    if backend_url is None:
        store = SqliteStorage(tmp_path / "central.db", tmp_path / "blobs", tmp_path / "uploads")
    else:
        from sync.central.pg_storage import PgStorage

        store = PgStorage(connect_pool(backend_url, max_size=8))
    try:
        yield store
    finally:
        store.close()
