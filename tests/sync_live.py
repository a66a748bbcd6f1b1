"""Live fixtures for the sync agent's integration tests: the REAL central (``central serve``) on
127.0.0.1 with a fresh CA, real stations made by the ``station`` CLI, and a loopback TCP proxy that
cuts connections after a chosen number of bytes. Nothing below HTTP is mocked.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from tests.central_support import TEST_LOCATION

BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 30.0


def run(
    cmd: list[str], *, check: bool = True, timeout: float = 90, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("STATION_HOME", "CENTRAL_HOME", "STATION_CONFIG")}
    proc = subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def station_cli(
    home: Path, *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "station"), "--home", str(home), *args], check=check, stdin=stdin)


def provision_cli(
    home: Path,
    central: Central,
    token: str,
    fingerprint: str | None = None,
    *extra: str,
    check: bool = True,
    enroll_url: str | None = None,
    central_url: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``station provision --skip-devices`` against ``central`` (its own fingerprint unless given)."""
    return station_cli(
        home,
        "provision",
        "--skip-devices",
        "--central",
        central_url or central.ingest_url,
        "--enroll-url",
        enroll_url or central.enroll_url,
        "--token-file",
        "-",
        "--ca-fingerprint",
        fingerprint if fingerprint is not None else central.fingerprint,
        *extra,
        check=check,
        stdin=token + "\n",
    )


def central_cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "central"), "--home", str(home), *args], check=check)


@dataclass
class Central:
    home: Path
    proc: subprocess.Popen[str]
    ingest_url: str
    enroll_url: str
    fingerprint: str

    @property
    def port(self) -> int:
        return int(self.ingest_url.rsplit(":", 1)[1])

    def token(self, station_id: str, ttl: str = "1h") -> str:
        return (
            central_cli(self.home, "token", "new", "--station", station_id, *TEST_LOCATION, "--ttl", ttl)
            .stdout.strip()
            .splitlines()[-1]
        )

    def revoke(self, station_id: str) -> None:
        central_cli(self.home, "revoke", station_id)

    def stored(self, packet_id: str) -> tuple[str, int] | None:
        from sync.central.storage import SqliteStorage

        storage = SqliteStorage(self.home / "central.db", self.home / "blobs", self.home / "uploads")
        try:
            rows = storage.find_packet(packet_id)
            return None if not rows else (rows[0].sha256, rows[0].size)
        finally:
            storage.close()

    def packet_rows(self) -> int:
        import sqlite3

        conn = sqlite3.connect(self.home / "central.db")
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            table = "packets" if "packets" in tables else next(t for t in tables if "packet" in t)
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        finally:
            conn.close()

    def blobs(self) -> int:
        return sum(1 for p in (self.home / "blobs").rglob("*") if p.is_file())


def provision(central: Central, home: Path, station_id: str) -> None:
    provision_cli(home, central, central.token(station_id))


@contextmanager
def running_central(home: Path, storage: dict[str, int] | None = None) -> Iterator[Central]:
    """``central init`` then ``central serve --port 0``; the real ports from its "listening on" lines.

    ``storage``: extra ``[storage]`` settings written into central's configuration before it starts."""
    central_cli(home, "init")
    if storage:
        from sync.central.home import CentralHome

        config = CentralHome(home).config_path
        text = config.read_text(encoding="utf-8")
        assert "[storage]" not in text, "merge into the existing [storage] table"
        lines = "".join(f"{key} = {value}\n" for key, value in storage.items())
        config.write_text(f"{text.rstrip()}\n\n[storage]\n{lines}", encoding="utf-8")
    fingerprint = central_cli(home, "ca", "fingerprint").stdout.strip().splitlines()[-1]
    env = {k: v for k, v in os.environ.items() if k != "CENTRAL_HOME"}
    proc = subprocess.Popen(
        [str(BIN / "central"), "--home", str(home), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:  # also keeps draining its output so the pipe never fills
            for line in proc.stdout or []:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        ingest = enroll = ""
        seen: list[str] = []
        while not (ingest and enroll) and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(line)
            if line.startswith("enrollment on "):
                enroll = line.split()[-1]
            if line.startswith("listening on "):
                ingest = line.split()[-1]
        if not ingest:
            raise AssertionError(f"central did not start: {''.join(seen)}")
        yield Central(home, proc, ingest, enroll, fingerprint)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def make_example(workdir: Path) -> Path:
    """``station enroll --example`` once (it renders images: slow); the enrollment JSON to reuse."""
    home = workdir / "example-home"
    station_cli(home, "init", "--demo")
    station_cli(home, "enroll", "--example", str(workdir / "example"))
    return workdir / "example" / "enrollment.json"


def make_station(
    home: Path, packets: int, example: Path | None = None, station_id: str = "demo-station"
) -> list[str]:
    """``station init --demo`` and ``station enroll --from-json`` ``packets`` times; the packet ids."""
    station_cli(home, "init", "--demo", "--station-id", station_id)
    ids = []
    for _ in range(packets):
        assert example is not None
        out = station_cli(home, "enroll", "--from-json", str(example)).stdout
        ids.append(out.strip().splitlines()[-1])
    return ids


def set_config(home: Path, **values: object) -> None:
    from station.home import StationHome

    sh = StationHome(home)
    cfg = sh.load_config()
    for k, v in values.items():
        if hasattr(cfg, k):
            setattr(cfg, k, v)
        else:
            cfg.extra[k] = v
    sh.save_config(cfg)


def accepted_pairs(
    listener: socket.socket,
    upstream: tuple[str, int],
    stop: threading.Event,
    *,
    limit: int | None = None,
    timeout: float = 10.0,
) -> Iterator[tuple[socket.socket, socket.socket]]:
    """The accept loop every loopback proxy here shares: (client, upstream) socket pairs until
    ``stop`` is set, the listener is closed, or ``limit`` pairs were made (bounded)."""
    made = 0
    while not stop.is_set() and (limit is None or made < limit):
        try:
            client, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        try:
            server = socket.create_connection(upstream, timeout=timeout)
        except OSError:
            client.close()
            continue
        made += 1
        yield client, server


@dataclass
class CuttingProxy:
    """Loopback TCP proxy to ``upstream`` that breaks connections on purpose.

    ``cut_after``: reset the first ``cuts`` connections after that many client bytes. ``plan``: the
    cut offset of each new connection in turn (``None`` entries pass untouched; after the plan, all
    pass). ``stall_after``: stop forwarding after that many client bytes and hold the connection
    open (``stalled`` is set), as a dead link does. Bounded: one thread pair per connection.
    """

    upstream: tuple[str, int]
    cut_after: int | None = None
    cuts: int = 1
    plan: list[int | None] | None = None
    stall_after: int | None = None
    cut_done: int = 0
    connections: int = 0
    stalled: threading.Event = field(default_factory=threading.Event)
    listener: socket.socket = field(init=False)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _socks: list[socket.socket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.listener.getsockname()[1]}"

    def _next_cut(self) -> int | None:
        if self.plan is not None:
            return self.plan[self.connections - 1] if self.connections <= len(self.plan) else None
        if self.cut_after is not None and self.cut_done < self.cuts:
            return self.cut_after
        return None

    def _accept(self) -> None:
        for client, server in accepted_pairs(self.listener, self.upstream, self._stop):
            with self._lock:
                self.connections += 1
                cut = self._next_cut()
                self._socks += [client, server]
            threading.Thread(
                target=self._pump, args=(client, server, cut, self.stall_after), daemon=True
            ).start()
            threading.Thread(target=self._pump, args=(server, client, None, None), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, cut: int | None, stall: int | None) -> None:
        sent = 0
        try:
            while not self._stop.is_set():
                data = src.recv(65536)
                if not data:
                    break
                if stall is not None and sent + len(data) >= stall:
                    dst.sendall(data[: max(0, stall - sent)])
                    self.stalled.set()
                    self._stop.wait(120)  # hold the link dead until the test closes the proxy
                    return
                if cut is not None and sent + len(data) >= cut:
                    dst.sendall(data[: max(0, cut - sent)])
                    with self._lock:
                        self.cut_done += 1
                    # A hard reset both ways, as a dropped link or a crashed router would.
                    for s in (src, dst):
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        s.close()
                    return
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        with self._lock:
            for s in self._socks:
                with suppress(OSError):
                    s.close()


def commit_packets(home: Path, example: Path, count: int) -> list[str]:
    """Seal and queue ``count`` packets of the enrollment in ``example`` in this process
    (``station.commit.commit_enrollment``, what ``station enroll --from-json`` does, without a process
    per packet); the packet ids, oldest first. Seal after ``provision`` to seal to central's key."""
    from station.commit import commit_enrollment
    from station.enrollment.files import load_enrollment
    from station.home import StationHome
    from station.session import open_station

    with open_station(StationHome(home)) as st:
        enrollment = load_enrollment(example, station_id=st.station_id)
        return [commit_enrollment(st, enrollment).packet_id for _ in range(count)]
