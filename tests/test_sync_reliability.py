"""Sync reliability against the REAL central on 127.0.0.1 (mutual TLS, real certificates).

- A seeded chaos proxy between the agent and central resets, stalls and truncates connections at
  random offsets, in both directions (so some receipts are lost after central stored the packet):
  every packet ends acked at the station with a receipt that verifies, and stored exactly once at
  central (one metadata row and one blob each, no partial upload left). 200 packets in the slow
  test, 10 in the fast one, same logic.
- The station's clock off by a day, both ways: the agent in this process with its clock shifted
  (the clock it stamps with and the one it compares with central's ``Date``), and ``station sync
  once`` in its own process with ``time.time`` shifted before anything is imported (``faketime``
  is not installed here; TLS still checks certificates with the real clock, as a station whose
  system clock was wrong would not). Uploads are still acked, and the warning names the drift.
- The rejection cases the matrix in ``test_central_server.py`` does not have: an ops certificate
  on the ingest routes, and a revoked station's connection that was open before the revocation
  trying to upload; each refused with nothing stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from station.home import StationHome
from station.session import open_station
from sync.agent.agent import Agent
from sync.agent.cli import build_agent
from sync.agent.client import CentralClient, ClientIdentity, http_client, tls_context
from sync.common.receipt import verify_receipt
from tests.sync_live import (
    Central,
    accepted_pairs,
    commit_packets,
    make_example,
    provision,
    running_central,
    set_config,
    station_cli,
)

DAY_S = 86_400.0
KINDS = ("reset", "truncate", "stall")


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    with running_central(tmp_path_factory.mktemp("central") / "home") as c:
        yield c


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_example(tmp_path_factory.mktemp("example"))


def new_station(central: Central, example: Path, home: Path, station_id: str, packets: int) -> list[str]:
    """``station init`` and ``station provision`` by the CLI, then ``packets`` sealed to central."""
    station_cli(home, "init", "--demo", "--station-id", station_id)
    provision(central, home, station_id)
    return commit_packets(home, example, packets)


def envelopes(home: Path, ids: list[str]) -> list[bytes]:
    with open_station(StationHome(home)) as st:
        return [st.store.envelope(pid) for pid in ids]


def local_packets(home: Path) -> dict[str, tuple[str, str, bytes | None]]:
    """packet id -> (state, sha256, receipt) from the station's encrypted store."""
    with open_station(StationHome(home)) as st:
        out = {}
        for pid in [r[0] for r in st.store._query("SELECT packet_id FROM packets")]:
            row = st.store.packet(pid)
            out[pid] = (row.state, row.sha256, st.store.receipt(pid))
        return out


def receipt_key(home: Path) -> ed25519.Ed25519PublicKey:
    key = serialization.load_pem_public_key((home / "pki" / "receipt.pub").read_bytes())
    assert isinstance(key, ed25519.Ed25519PublicKey)
    return key


def central_rows(central: Central, station_id: str) -> list[tuple[str, str]]:
    conn = sqlite3.connect(central.home / "central.db")
    try:
        rows = conn.execute("SELECT packet_id, sha256 FROM packets WHERE station_id = ?", (station_id,))
        return [(str(a), str(b)) for a, b in rows.fetchall()]
    finally:
        conn.close()


def assert_all_acked_exactly_once(central: Central, home: Path, station_id: str, ids: list[str]) -> None:
    key = receipt_key(home)
    packets = local_packets(home)
    assert sorted(packets) == sorted(ids)
    for pid, (state, sha, receipt) in packets.items():
        assert state == "acked" and receipt is not None, pid
        rec = verify_receipt(receipt, key)
        assert (rec.packet_id, rec.station_id, rec.sha256) == (pid, station_id, sha)
        blob = central.home / "blobs" / sha[:2] / sha
        assert blob.is_file() and blob.stat().st_size == rec.size
    rows = central_rows(central, station_id)
    assert sorted(pid for pid, _ in rows) == sorted(ids)  # one row per packet: none missing, none twice
    assert {pid: sha for pid, sha in rows} == {pid: p[1] for pid, p in packets.items()}
    parts = central.home / "uploads" / station_id
    assert not parts.exists() or not any(parts.iterdir())  # no partial upload left behind


# -- the chaos proxy -------------------------------------------------------------------------------


@dataclass
class ChaosProxy:
    """Loopback TCP proxy to ``upstream`` that breaks connections the way bad links do, seeded.

    Each new connection draws, from ``random.Random(seed)``: with probability ``fault_rate`` a fault,
    else it passes untouched. A fault is a direction (client to central, or central to client: the
    answer, so a receipt can be lost after central stored the packet), an offset in bytes in that
    direction, and a kind: ``reset`` (RST both ways), ``truncate`` (the bytes up to the offset, then
    an orderly close both ways) or ``stall`` (the bytes up to the offset, then nothing, the
    connection held open until the client gives up). Bounded: at most ``max_connections``; one
    thread per direction per connection.
    """

    upstream: tuple[str, int]
    seed: int
    fault_rate: float = 0.7
    up_range: int = 1_500_000
    down_range: int = 12_000
    max_connections: int = 5_000
    faults: dict[str, int] = field(default_factory=lambda: {"reset": 0, "truncate": 0, "stall": 0})
    connections: int = 0
    listener: socket.socket = field(init=False)
    _rng: random.Random = field(init=False)
    _first_kinds: list[str] = field(init=False)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _socks: list[socket.socket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._first_kinds = self._rng.sample(KINDS, len(KINDS))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.listener.getsockname()[1]}"

    def _draw(self) -> tuple[str, bool, int] | None:
        """(kind, upward, offset) or None, from the seeded generator, in connection order."""
        if self._rng.random() >= self.fault_rate:
            return None
        # The first three faults are one of each kind (in a seeded order), then any kind.
        kind = self._first_kinds.pop() if self._first_kinds else self._rng.choice(KINDS)
        upward = self._rng.random() < 0.6
        offset = self._rng.randrange(0, self.up_range if upward else self.down_range)
        return kind, upward, offset

    def _accept(self) -> None:
        pairs = accepted_pairs(self.listener, self.upstream, self._stop, limit=self.max_connections)
        for client, server in pairs:
            with self._lock:
                self.connections += 1
                fault = self._draw()
                if fault is not None:
                    self.faults[fault[0]] += 1
                self._socks += [client, server]
            up = fault if fault is not None and fault[1] else None
            down = fault if fault is not None and not fault[1] else None
            threading.Thread(target=self._pump, args=(client, server, up), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, down), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, fault: tuple[str, bool, int] | None) -> None:
        sent = 0
        try:
            while not self._stop.is_set():
                data = src.recv(65536)
                if not data:
                    break
                if fault is not None and sent + len(data) >= fault[2]:
                    dst.sendall(data[: max(0, fault[2] - sent)])
                    self._fault(fault[0], src, dst)
                    return
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            with suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def _fault(self, kind: str, src: socket.socket, dst: socket.socket) -> None:
        if kind == "stall":
            self._stop.wait(60)  # a dead link: nothing more either way until the client gives up
            for s in (src, dst):
                with suppress(OSError):
                    s.close()
            return
        for s in (src, dst):
            with suppress(OSError):
                if kind == "reset":
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                else:
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        with self._lock:
            for s in self._socks:
                with suppress(OSError):
                    s.close()


def _chaos(
    central: Central,
    example: Path,
    tmp_path: Path,
    *,
    packets: int,
    seed: int,
    passes: int,
    min_faults: int,
    fault_rate: float,
    max_offset: int,
) -> None:
    sid = f"rel-chaos-{seed}"
    home = tmp_path / "st"
    ids = new_station(central, example, home, sid, packets)
    total = sum(len(e) for e in envelopes(home, ids))
    # Fault offsets spread over at most a third of the queue's bytes: connections die mid-queue.
    up_range = max(50_000, min(max_offset, total // 3))
    proxy = ChaosProxy(("127.0.0.1", central.port), seed=seed, fault_rate=fault_rate, up_range=up_range)
    # Short timeouts so a stalled link is given up on quickly; backoff is the agent's own, shortened.
    set_config(
        home,
        chunk_size=64 * 1024,
        central_url=proxy.url,
        sync={"backoff_base": 0.01, "backoff_cap": 0.05, "timeout_seconds": 1.5},
    )
    agent, close = build_agent(StationHome(home))
    acked: list[str] = []
    errors: set[str] = set()
    try:
        for _ in range(passes):  # bounded; each pass is what one 'station sync once' does
            result = agent.sync_pass()
            acked += result.acked
            if result.error is not None:
                errors.add(result.error.code)
            assert not result.refused, result.refused  # a fault must never look like a refusal
            if result.ok:
                break
            assert not agent.wait(agent.next_delay(result))
        else:
            pytest.fail(f"not all acked after {passes} passes: {proxy.faults}, errors {errors}")
    finally:
        close()
        proxy.close()
    print(
        f"chaos seed {seed}: {proxy.connections} connections, faults {proxy.faults}, errors {sorted(errors)}"
    )
    assert sorted(acked) == sorted(ids)  # each acked once, by the pass that got its receipt
    assert_all_acked_exactly_once(central, home, sid, ids)
    assert sum(proxy.faults.values()) >= min_faults, proxy.faults
    assert all(proxy.faults.values()), proxy.faults  # resets, truncations and stalls all happened


def test_chaos_proxy_fast(central: Central, example: Path, tmp_path: Path) -> None:
    _chaos(
        central,
        example,
        tmp_path,
        packets=10,
        seed=11,
        passes=200,
        min_faults=3,
        fault_rate=1.0,
        max_offset=1_500_000,
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_chaos_proxy_200_packets(central: Central, example: Path, tmp_path: Path) -> None:
    # Every connection breaks somewhere in its first megabyte: ~50 faults before the queue is empty.
    _chaos(
        central,
        example,
        tmp_path,
        packets=200,
        seed=7,
        passes=3000,
        min_faults=30,
        fault_rate=1.0,
        max_offset=1_000_000,
    )


# -- the station's clock off by a day ------------------------------------------------------------


def shifted_agent(home: Path, shift: float) -> tuple[Agent, Callable[[], None]]:
    """The agent ``station sync once`` builds, with every clock it reads shifted by ``shift`` s."""
    agent, close = build_agent(StationHome(home))

    def clock() -> float:
        return time.time() + shift

    url = StationHome(home).load_config().central_url
    agent.clock = clock
    agent.client_factory = lambda ca_pem, identity: CentralClient(
        http_client(url, tls_context(ca_pem, identity), timeout=30), clock=clock
    )
    return agent, close


@pytest.mark.parametrize(("shift", "way"), [(DAY_S, "ahead of"), (-DAY_S, "behind")])
def test_clock_off_by_a_day_in_process(
    central: Central, example: Path, tmp_path: Path, shift: float, way: str
) -> None:
    sid = f"rel-clock-{'ahead' if shift > 0 else 'behind'}"
    home = tmp_path / "st"
    ids = new_station(central, example, home, sid, 2)
    agent, close = shifted_agent(home, shift)
    try:
        result = agent.once()
        warning = agent.clock_warning()
        described = agent.describe(result)
    finally:
        close()
    # Uploads still go through (central stamps receipts with its own time)...
    assert result.ok and sorted(result.acked) == sorted(ids), described
    assert_all_acked_exactly_once(central, home, sid, ids)
    for _state, _sha, receipt in local_packets(home).values():
        assert receipt is not None
        received = dt.datetime.fromisoformat(verify_receipt(receipt, receipt_key(home)).received_at)
        assert abs(received.timestamp() - time.time()) < 600  # central's clock, not the station's
    # ...and the drift is said plainly, with what to do.
    assert warning is not None and f"24.0 h {way} central's" in warning, warning
    assert "set the date and time" in warning and warning in described


SHIFTED_STATION = (
    "import sys, time\n"
    "_real = time.time\n"
    "_shift = float(sys.argv.pop(1))\n"
    "time.time = lambda: _real() + _shift\n"
    "from enrollment_station.cli import station_main\n"
    "station_main()\n"
)


@pytest.mark.parametrize("shift", [DAY_S, -DAY_S, 0.0])
def test_station_sync_once_says_the_clock_is_off(
    central: Central, example: Path, tmp_path: Path, shift: float
) -> None:
    """``station sync once`` in its own process, ``time.time`` shifted before the station code loads."""
    sid = f"rel-cli-clock-{int(shift)}".replace("--", "-m")
    home = tmp_path / "st"
    ids = new_station(central, example, home, sid, 1)
    proc = subprocess.run(
        [sys.executable, "-c", SHIFTED_STATION, str(shift), "--home", str(home), "sync", "once"],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=Path(__file__).resolve().parent.parent,
        env={k: v for k, v in os.environ.items() if k not in ("STATION_HOME", "STATION_CONFIG")},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "acked 1 now; queue: 0 pending, 1 acked" in proc.stdout
    if shift == 0:
        assert "clock" not in proc.stderr  # the control: no warning when the clocks agree
    else:
        way = "ahead of" if shift > 0 else "behind"
        assert (
            f"warning: the station's clock is 24.0 h {way} central's: set the date and time" in proc.stderr
        ), proc.stderr
    assert_all_acked_exactly_once(central, home, sid, ids)


# -- rejections the matrix in test_central_server.py does not cover -------------------------------


def test_revoked_open_connection_and_ops_cert_cannot_upload(
    central: Central, example: Path, tmp_path: Path
) -> None:
    """A connection opened before the revocation, and an ops certificate: 403, nothing stored."""
    from sync.common.wire import HEADER_CHUNK_SHA256, HEADER_PACKET_SIZE, finalise_path, packet_path

    sid = "rel-revoked-open"
    home = tmp_path / "st"
    (pid,) = new_station(central, example, home, sid, 1)
    (env,) = envelopes(home, [pid])
    with open_station(StationHome(home)) as st:
        key = st.keys.identity_key()
    ca_pem = (home / "pki" / "ca.crt").read_bytes()
    station_ctx = tls_context(ca_pem, ClientIdentity((home / "pki" / "station.crt").read_bytes(), key))
    out = tmp_path / "ops"
    run_ok = subprocess.run(
        [
            str(Path(sys.executable).parent / "central"),
            "--home",
            str(central.home),
            "ops-cert",
            "bob",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run_ok.returncode == 0, run_ok.stderr
    ops_ctx = tls_context(ca_pem)
    ops_ctx.load_cert_chain(str(out / "bob.crt"), str(out / "bob.key"))
    headers = {HEADER_CHUNK_SHA256: hashlib.sha256(env).hexdigest(), HEADER_PACKET_SIZE: str(len(env))}
    final = {"sha256": hashlib.sha256(env).hexdigest(), "size": len(env)}
    with httpx.Client(base_url=central.ingest_url, verify=station_ctx, timeout=20, trust_env=False) as http:
        assert http.get(packet_path(pid)).status_code == 200  # the connection is open and allowed
        central.revoke(sid)
        r = http.put(packet_path(pid), params={"offset": 0}, content=env, headers=headers)
        assert r.status_code == 403, r.text
        assert http.post(finalise_path(pid), json=final).status_code == 403
    with httpx.Client(base_url=central.ingest_url, verify=ops_ctx, timeout=20, trust_env=False) as http:
        r = http.put(packet_path(pid), params={"offset": 0}, content=env, headers=headers)
        assert r.status_code == 403, r.text
        assert http.post(finalise_path(pid), json=final).status_code == 403
    assert central.stored(pid) is None and central_rows(central, sid) == []
    assert not any((central.home / "uploads").rglob(f"{pid}*"))  # not a byte of it kept
    digest = hashlib.sha256(env).hexdigest()
    assert not (central.home / "blobs" / digest[:2] / digest).exists()
