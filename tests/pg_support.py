"""A throwaway PostgreSQL cluster for the tests: ``initdb`` + ``pg_ctl`` on a Unix socket in a temp dir.

One cluster per test session (about 2 s to start), one fresh database per test that asks for one,
everything dropped at the end. The machine's own cluster (port 5432) is never touched: the test
cluster listens on no TCP address at all, only on a socket in its own directory.

When the tests run as root the server runs as the ``postgres`` user (``runuser -u postgres``): the
temp directory is made traversable for it. Tests skip, with the reason, only when the PostgreSQL
binaries are not installed (``scripts/setup.sh`` installs Debian's ``postgresql`` as root).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
_counter = itertools.count(1)


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).exists():
            return f"PostgreSQL server binaries not found in {PG_BIN} (install Debian's 'postgresql')"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root but there is no 'postgres' user to run the test cluster"
        if shutil.which("runuser") is None:
            return "running as root but 'runuser' is missing"
    return None


def _free_port() -> int:
    # The port only names the socket file (.s.PGSQL.<port>); nothing listens on TCP.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running throwaway cluster; ``url(db)`` is a libpq URL for a database in it."""

    root: Path
    port: int
    as_postgres: bool
    durable: bool = False  # fsync on (for measurements); tests run without it
    small_mb: int = 0  # >0: the data directory is a tmpfs of this size, WAL beside it (disk-full tests)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = list(cmd)
        if self.as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def start(self) -> None:
        extra: list[str] = []
        if self.small_mb:
            self.data.mkdir()
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={self.small_mb}m,mode=0700", "tmpfs", str(self.data)],
                check=True,
            )
            pw = pwd.getpwnam("postgres")
            os.chown(self.data, pw.pw_uid, pw.pw_gid)
            extra = ["--waldir", str(self.root / "wal")]
        init = self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            *extra,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()}")
        opts = f"-k {self.root} -p {self.port} -c listen_addresses='' -c max_connections=200"
        opts += " -c shared_buffers=64MB"
        if not self.durable:
            opts += " -c fsync=off -c full_page_writes=off"
        started = self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        if started.returncode != 0:
            log = (self.root / "log").read_text(errors="replace") if (self.root / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()} {log[-2000:]}")

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        if self.small_mb:
            subprocess.run(["umount", "-l", str(self.data)], check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@/{dbname}?host={self.root}&port={self.port}"

    def create_database(self) -> str:
        """A fresh empty database; returns its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(_counter)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.split("/", 3)[3].split("?", 1)[0]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_small_cluster(size_mb: int) -> Cluster:
    """A cluster whose data directory is a ``size_mb`` tmpfs (WAL elsewhere), to fill it up; root only."""
    pw = pwd.getpwnam("postgres")
    root = Path(tempfile.mkdtemp(prefix="pgfull-", dir="/tmp"))
    os.chown(root, pw.pw_uid, pw.pw_gid)
    os.chmod(root, 0o700)
    cluster = Cluster(root, _free_port(), True, small_mb=size_mb)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def start_cluster(*, durable: bool = False) -> Cluster:
    """Start a cluster in a new temp dir (traversable by ``postgres`` when run as root)."""
    as_postgres = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="pgtest-", dir="/tmp"))
    if as_postgres:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    os.chmod(root, 0o700)
    cluster = Cluster(root, _free_port(), as_postgres, durable)
    try:
        cluster.start()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return cluster
