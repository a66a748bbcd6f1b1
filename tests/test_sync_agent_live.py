"""The sync agent against the REAL central on 127.0.0.1 (mutual TLS, real certificates, the
``station`` and ``central`` CLIs): all acked with verified receipts, a connection cut mid-upload
resumes and stores exactly once, a revoked station is told it is not authorised, and the daemon
starts, syncs, heartbeats and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from station.home import StationHome
from station.session import open_station
from sync.common import wire
from sync.common.receipt import verify_receipt
from tests.sync_live import (
    BIN,
    Central,
    CuttingProxy,
    central_cli,
    make_example,
    make_station,
    provision,
    running_central,
    set_config,
    station_cli,
)


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    with running_central(tmp_path_factory.mktemp("central") / "home") as c:
        yield c


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_example(tmp_path_factory.mktemp("example"))


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


def test_sync_once_acks_everything_with_receipts(central: Central, example: Path, tmp_path: Path) -> None:
    home = tmp_path / "st"
    ids = make_station(home, 3, example, station_id="live-once")
    # Before provisioning there is nowhere to send: a clear message, exit 1.
    early = station_cli(home, "sync", "once", check=False)
    assert early.returncode == 1 and "station provision" in early.stderr
    provision(central, home, "live-once")
    set_config(home, chunk_size=48 * 1024)
    out = station_cli(home, "sync", "once")
    assert "acked 3 now; queue: 0 pending, 3 acked" in out.stdout
    key = receipt_key(home)
    packets = local_packets(home)
    assert set(packets) == set(ids)
    for pid, (state, sha, receipt) in packets.items():
        assert state == "acked" and receipt is not None
        rec = verify_receipt(receipt, key)
        assert (rec.packet_id, rec.station_id, rec.sha256) == (pid, "live-once", sha)
        assert central.stored(pid) == (sha, rec.size)
    # Idempotent: nothing queued, nothing sent, still exit 0.
    again = station_cli(home, "sync", "once")
    assert "acked 0 now; queue: 0 pending, 3 acked" in again.stdout
    with open_station(StationHome(home)) as st:
        acks = [e.fields["packet_id"] for e in st.audit.entries() if e.event == "sync.ack"]
    assert sorted(acks) == sorted(ids)  # one audit entry per ack, with the packet id only
    status = json.loads(central_cli(central.home, "status", "--all", "--json").stdout)
    row = next(s for s in status["stations"] if s["station_id"] == "live-once")
    assert row["packets_stored"] == 3 and row["pending"] == 0


def test_cut_mid_upload_resumes_and_stores_exactly_once(
    central: Central, example: Path, tmp_path: Path
) -> None:
    home = tmp_path / "st"
    ids = make_station(home, 2, example, station_id="live-cut")
    provision(central, home, "live-cut")
    proxy = CuttingProxy(("127.0.0.1", central.port), cut_after=100_000, cuts=1)
    try:
        # One packet at a time: the proxy's byte counts are per connection.
        set_config(home, chunk_size=32 * 1024, central_url=proxy.url, sync={"parallel_uploads": 1})
        blobs_before = central.blobs()
        first = station_cli(home, "sync", "once", check=False)
        assert first.returncode == 1, first.stdout + first.stderr
        assert "network problem" in first.stderr
        assert proxy.cut_done == 1
        assert any(state != "acked" for state, _, _ in local_packets(home).values())
        second = station_cli(home, "sync", "once")
        assert "queue: 0 pending, 2 acked" in second.stdout
        resumed = [int(n) for n in re.findall(r"resumed at (\d+)", second.stderr)]
        assert resumed and max(resumed) > 0, second.stderr  # it did not start again from zero
    finally:
        proxy.close()
    for pid, (state, sha, _) in local_packets(home).items():
        assert state == "acked"
        assert central.stored(pid) is not None and central.stored(pid)[0] == sha  # type: ignore[index]
    assert central.blobs() == blobs_before + len(ids)  # exactly once: one blob per packet


def test_revoked_station_is_not_authorised(central: Central, example: Path, tmp_path: Path) -> None:
    home = tmp_path / "st"
    (pid,) = make_station(home, 1, example, station_id="live-revoked")
    provision(central, home, "live-revoked")
    central.revoke("live-revoked")
    # The server reloads the CRL for new connections; allow it a bounded number of attempts.
    out = None
    for _ in range(5):
        out = station_cli(home, "sync", "once", check=False)
        if wire.NOT_AUTHORISED_MESSAGE in out.stderr:
            break
    assert out is not None and out.returncode == 1
    assert wire.NOT_AUTHORISED_MESSAGE in out.stderr
    assert central.stored(pid) is None
    assert local_packets(home)[pid][0] in ("sealed", "uploading")


def test_daemon_syncs_heartbeats_and_stops_on_sigterm(
    central: Central, example: Path, tmp_path: Path
) -> None:
    home = tmp_path / "st"
    (pid,) = make_station(home, 1, example, station_id="live-daemon")
    provision(central, home, "live-daemon")
    set_config(home, heartbeat_seconds=3600, sync={"poll_seconds": 3600})
    env = {k: v for k, v in os.environ.items() if k not in ("STATION_HOME", "NOTIFY_SOCKET")}
    proc = subprocess.Popen(
        [str(BIN / "station"), "--home", str(home), "sync", "run"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in proc.stderr or []:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(line)
            if "status: all packets delivered" in line:
                break
        assert any("status: all packets delivered" in s for s in seen), "".join(seen)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
    assert central.stored(pid) is not None
    status = json.loads(central_cli(central.home, "status", "--all", "--json").stdout)
    row = next(s for s in status["stations"] if s["station_id"] == "live-daemon")
    assert row["last_seen"] is not None and row["version"]  # the heartbeat arrived


def test_kill_9_mid_upload_then_restart_exactly_once(central: Central, example: Path, tmp_path: Path) -> None:
    home = tmp_path / "st"
    ids = make_station(home, 2, example, station_id="live-kill")
    provision(central, home, "live-kill")
    # The link goes dead after 150 kB: the agent is stuck mid-upload when it is killed.
    proxy = CuttingProxy(("127.0.0.1", central.port), stall_after=150_000)
    blobs_before = central.blobs()
    try:
        # One packet at a time: the proxy's byte counts are per connection.
        set_config(home, chunk_size=32 * 1024, central_url=proxy.url, sync={"parallel_uploads": 1})
        env = {k: v for k, v in os.environ.items() if k not in ("STATION_HOME", "NOTIFY_SOCKET")}
        proc = subprocess.Popen(
            [str(BIN / "station"), "--home", str(home), "sync", "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            assert proxy.stalled.wait(60), "the agent never got mid-upload"
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=20) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    finally:
        proxy.close()
    states = {pid: state for pid, (state, _, _) in local_packets(home).items()}
    assert "acked" not in states.values() or len([s for s in states.values() if s == "acked"]) < 2
    set_config(home, central_url=central.ingest_url)
    out = station_cli(home, "sync", "once")
    assert "queue: 0 pending, 2 acked" in out.stdout
    for pid, (state, sha, _) in local_packets(home).items():
        assert state == "acked" and central.stored(pid) is not None
        assert central.stored(pid)[0] == sha  # type: ignore[index]
    assert central.blobs() == blobs_before + len(ids)


def _soak(central: Central, example: Path, tmp_path: Path, *, packets: int, seed: int, attempts: int) -> None:
    import random

    sid = f"live-soak-{seed}"
    home = tmp_path / "st"
    ids = make_station(home, packets, example, station_id=sid)
    provision(central, home, sid)
    rng = random.Random(seed)
    # Most connections are cut at a random offset (some early, some deep into an upload).
    plan: list[int | None] = [
        None if rng.random() < 0.2 else rng.randrange(200, 300_000) for _ in range(attempts * 4)
    ]
    plan[0] = rng.randrange(50_000, 150_000)  # the first connection surely dies mid-upload
    proxy = CuttingProxy(("127.0.0.1", central.port), plan=plan)
    blobs_before = central.blobs()
    try:
        set_config(
            home,
            chunk_size=32 * 1024,
            central_url=proxy.url,
            sync={"backoff_base": 0.05, "backoff_cap": 0.2, "not_authorised_retry_seconds": 0.2},
        )
        done = False
        for _ in range(attempts):  # bounded
            out = station_cli(home, "sync", "once", check=False)
            if out.returncode == 0:
                done = True
                break
        assert done, f"not all acked after {attempts} attempts ({proxy.cut_done} cuts)"
    finally:
        proxy.close()
    assert proxy.cut_done >= 1
    for pid, (state, sha, receipt) in local_packets(home).items():
        assert state == "acked" and receipt is not None
        assert central.stored(pid)[0] == sha  # type: ignore[index]
    assert central.blobs() == blobs_before + len(ids)  # each stored exactly once


def test_random_cuts_all_acked_exactly_once_fast(central: Central, example: Path, tmp_path: Path) -> None:
    _soak(central, example, tmp_path, packets=3, seed=1, attempts=30)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_random_cuts_soak(central: Central, example: Path, tmp_path: Path) -> None:
    _soak(central, example, tmp_path, packets=20, seed=2, attempts=200)
