"""Several central nodes, one truth: two real ``central serve`` processes on one PostgreSQL database.

The second node runs from a COPY of the first node's home (what adding a node on another machine
is), so nothing but the database is shared: resume across nodes, the concurrent-finalise race
(50 times), a one-time token spent once across nodes, revocations and heartbeats seen by both,
kill -9 of one node mid-upload while the station finishes on the other, exactly once at the end,
``GET /v1/ready``, and ``--workers 2`` sharing one port.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from packetformat.packet import parse
from sync.central.authority import Authority
from sync.central.home import CentralHome
from sync.common.wire import packet_path
from sync.pki.ca import new_ec_key
from tests.central_support import (
    REPO,
    TEST_LOCATION,
    CentralProcess,
    Client,
    csr_for,
    finalise,
    http_client,
    make_home,
    put_chunk,
    sealed,
    station_client,
    upload,
)
from tests.pg_support import Cluster


@dataclass
class Nodes:
    url: str
    home_a: CentralHome
    home_b: CentralHome
    a: CentralProcess
    b: CentralProcess
    tmp: Path


@pytest.fixture(scope="module")
def nodes(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    tmp = tmp_path_factory.mktemp("nodes")
    url = pg_cluster.create_database()
    home_a = make_home(tmp / "node-a", database_url=url)
    shutil.copytree(home_a.root, tmp / "node-b")  # a new node = a copy of the home, same database
    home_b = CentralHome(tmp / "node-b")
    a, b = CentralProcess(home_a), CentralProcess(home_b)
    try:
        yield Nodes(url, home_a, home_b, a, b, tmp)
    finally:
        a.stop()
        b.stop()
        pg_cluster.drop_database(url)


def _rows(url: str, station: str, pid: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM packets WHERE station_id=%s AND packet_id=%s", (station, pid)
        ).fetchone()
    assert row is not None
    return int(row[0])


def _client(nodes: Nodes, name: str) -> Client:
    return station_client(nodes.home_a, nodes.tmp / "ids", name)


def central(home: CentralHome, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.central", "--home", str(home.root), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_upload_begun_on_a_resumes_on_b(nodes: Nodes) -> None:
    c = _client(nodes, "uc-resume")
    env = sealed(nodes.home_a, c, doc={"pad": bytes(30000)})
    pid = parse(env).header.packet_id
    with http_client(c, nodes.home_a) as http:
        half = len(env) // 2
        assert put_chunk(http, nodes.a.url, pid, 0, env[:half], len(env)).status_code == 200
        status = http.get(f"{nodes.b.url}{packet_path(pid)}").json()
        assert status == {"offset": half, "complete": False, "receipt_b64": None}
        assert put_chunk(http, nodes.b.url, pid, half, env[half:], len(env)).status_code == 200
        done = finalise(http, nodes.b.url, pid, env)
        assert done.status_code == 200, done.text
        on_a = http.get(f"{nodes.a.url}{packet_path(pid)}").json()
        assert on_a["complete"] is True and on_a["receipt_b64"] == done.json()["receipt_b64"]
    assert _rows(nodes.url, "uc-resume", pid) == 1


def test_concurrent_finalise_on_two_nodes_stores_once_with_one_receipt(nodes: Nodes) -> None:
    c = _client(nodes, "uc-race")
    with http_client(c, nodes.home_a) as http_a, http_client(c, nodes.home_b) as http_b:
        for i in range(50):
            env = sealed(nodes.home_a, c, doc={"round": i, "pad": bytes(2000)})
            pid = parse(env).header.packet_id
            assert put_chunk(http_a, nodes.a.url, pid, 0, env, len(env)).status_code == 200
            barrier = threading.Barrier(2)
            answers: dict[str, httpx.Response] = {}

            def go(
                name: str, http: httpx.Client, base: str, env: bytes = env, pid: str = pid,
                barrier: threading.Barrier = barrier, answers: dict[str, httpx.Response] = answers,
            ) -> None:  # fmt: skip
                barrier.wait(timeout=10)
                answers[name] = finalise(http, base, pid, env)

            threads = [
                threading.Thread(target=go, args=("a", http_a, nodes.a.url)),
                threading.Thread(target=go, args=("b", http_b, nodes.b.url)),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert answers["a"].status_code == 200, answers["a"].text
            assert answers["b"].status_code == 200, answers["b"].text
            assert answers["a"].json()["receipt_b64"] == answers["b"].json()["receipt_b64"], f"round {i}"
            assert _rows(nodes.url, "uc-race", pid) == 1


def test_one_time_token_is_spent_once_across_nodes(nodes: Nodes) -> None:
    out = central(nodes.home_a, "token", "new", "--station", "uc-token", *TEST_LOCATION, "--ttl", "10m")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    for _ in range(3):  # also a token made on A is known to B, and to neither twice
        barrier = threading.Barrier(2)
        codes: list[int] = []

        def enroll(base: str, barrier: threading.Barrier = barrier, codes: list[int] = codes) -> None:
            body = {"token": token, "station_id": "uc-token", "csr_pem": csr_for(new_ec_key(), "uc-token")}
            with http_client(None, nodes.home_a) as http:
                barrier.wait(timeout=10)
                codes.append(http.post(f"{base}/v1/enroll", json=body).status_code)

        threads = [threading.Thread(target=enroll, args=(n.enroll_url,)) for n in (nodes.a, nodes.b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        if 200 in codes:
            assert sorted(codes) == [200, 401]
            break
    else:
        raise AssertionError("the token was never redeemed")
    with http_client(None, nodes.home_a) as http:
        body = {"token": token, "station_id": "uc-token", "csr_pem": csr_for(new_ec_key(), "uc-token")}
        assert http.post(f"{nodes.b.enroll_url}/v1/enroll", json=body).status_code == 401
        assert http.post(f"{nodes.a.enroll_url}/v1/enroll", json=body).status_code == 401


def _b_refuses(c: Client, nodes: Nodes) -> bool:
    with http_client(c, nodes.home_a) as http:
        try:
            return http.get(f"{nodes.b.url}/v1/ready").status_code == 403
        except httpx.TransportError:  # refused in the TLS handshake by the new CRL
            return True


def test_revocation_on_one_node_reaches_the_other(nodes: Nodes) -> None:
    c = _client(nodes, "uc-revoked")
    assert not _b_refuses(c, nodes)
    out = central(nodes.home_a, "revoke", "uc-revoked")  # on A's machine only
    assert out.returncode == 0, out.stderr
    # B learns it from the database (it polls every few seconds) and refuses the station.
    deadline = time.monotonic() + 30
    while not _b_refuses(c, nodes):
        assert time.monotonic() < deadline, "node B kept accepting a certificate revoked on node A"
        threading.Event().wait(0.2)


def test_heartbeats_and_alerts_are_shared(nodes: Nodes) -> None:
    c = _client(nodes, "uc-beat")
    hb = {
        "station_id": "uc-beat",
        "sent_at": "2026-12-03T10:00:00Z",
        "counts": {"sealed": 2, "uploading": 0, "acked": 1},
        "oldest_pending_age_s": 30.0,
        "last_sync_at": None,
        "disk_free_bytes": 10**9,
        "devices": {},
        "version": "0.1.0",
        "cert_not_after": "",
        "audit_head": "ab" * 32,
        "audit_seq": 9,
    }
    with http_client(c, nodes.home_a) as http:
        assert http.post(f"{nodes.a.url}/v1/heartbeat", json=hb).status_code == 200
        hb2 = {**hb, "audit_seq": 3, "audit_head": "cd" * 32}  # rewound: the alert comes from node B
        assert http.post(f"{nodes.b.url}/v1/heartbeat", json=hb2).status_code == 200
    for home in (nodes.home_a, nodes.home_b):
        out = central(home, "status", "--json")
        assert out.returncode == 0, out.stderr
        row = {s["station_id"]: s for s in json.loads(out.stdout)["stations"]}["uc-beat"]
        assert row["pending"] == 2 and "audit_rewound" in row["alerts"]


def test_kill9_of_a_node_mid_upload_station_finishes_on_the_other(
    nodes: Nodes, pg_cluster: Cluster, tmp_path: Path
) -> None:
    url = pg_cluster.create_database()
    try:
        home_x = make_home(tmp_path / "x", database_url=url)
        shutil.copytree(home_x.root, tmp_path / "y")
        home_y = CentralHome(tmp_path / "y")
        x, y = CentralProcess(home_x), CentralProcess(home_y)
        try:
            c = station_client(home_x, tmp_path / "ids", "uc-kill")
            envs = [sealed(home_x, c, doc={"n": i, "pad": bytes(20000 + 13 * i)}) for i in range(12)]
            receipts: dict[str, str] = {}
            started = threading.Event()
            staged = sealed(home_x, c, doc={"staged": True, "pad": bytes(20000)})  # half sent before the kill
            staged_pid = parse(staged).header.packet_id
            with http_client(c, home_x) as http:
                half = len(staged) // 2
                assert put_chunk(http, x.url, staged_pid, 0, staged[:half], len(staged)).status_code == 200

            def upload_on_x() -> None:
                with http_client(c, home_x) as http:
                    for env in envs:
                        started.set()
                        try:
                            r = upload(http, x.url, env, chunk=1024)
                        except httpx.TransportError:
                            return
                        if r.status_code == 200:
                            receipts[parse(env).header.packet_id] = r.json()["receipt_b64"]

            worker = threading.Thread(target=upload_on_x, daemon=True)
            worker.start()
            assert started.wait(timeout=30)
            for _ in range(600):
                if len(receipts) >= 4:
                    break
                worker.join(timeout=0.05)
            x.stop(signal.SIGKILL)  # mid-upload of a later packet
            worker.join(timeout=60)
            assert not worker.is_alive() and len(receipts) < len(envs)
            before = dict(receipts)
            with http_client(c, home_y) as http:
                assert http.get(f"{y.url}{packet_path(staged_pid)}").json()["offset"] == half
                r = upload(http, y.url, staged)
                assert r.status_code == 200, r.text
                resumed = 0
                for env in envs:
                    pid = parse(env).header.packet_id
                    offset = http.get(f"{y.url}{packet_path(pid)}").json()["offset"]
                    resumed += 0 < offset < len(env)
                    r = upload(http, y.url, env, chunk=4096)  # the agent's way: ask the offset, go on
                    assert r.status_code == 200, r.text
                    if pid in before:
                        assert r.json()["receipt_b64"] == before[pid]
            assert resumed <= 1  # the one cut by the kill (if it was mid-packet) went on from its offset
        finally:
            x.stop()
            y.stop()
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT packet_id, sha256 FROM packets WHERE station_id='uc-kill'").fetchall()
            left = conn.execute("SELECT count(*) FROM uploads").fetchone()
        expected = {parse(e).header.packet_id: hashlib.sha256(e).hexdigest() for e in [*envs, staged]}
        assert sorted(str(r[0]) for r in rows) == sorted(expected)  # exactly once, nothing missing
        assert {str(r[0]): str(r[1]) for r in rows} == expected
        assert left is not None and left[0] == 0
    finally:
        pg_cluster.drop_database(url)


def _ops_context(home: CentralHome, out: Path) -> ssl.SSLContext:
    key, crt, ca = Authority(home).ops_cert("lb", out)
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(crt), str(key))
    return ctx


def test_ready_says_when_the_database_is_gone(pg_cluster: Cluster, tmp_path: Path) -> None:
    url = pg_cluster.create_database()
    home = make_home(tmp_path / "r", database_url=url)
    ctx = _ops_context(home, tmp_path / "ops")
    station = station_client(home, tmp_path / "ids", "uc-outage")
    env = sealed(home, station)
    node = CentralProcess(home)
    try:
        with httpx.Client(verify=ctx, timeout=20) as http:
            r = http.get(f"{node.url}/v1/ready")
            assert r.status_code == 200 and r.json()["ready"] is True and r.json()["backend"] == "postgresql"
            pg_cluster.drop_database(url)
            r = http.get(f"{node.url}/v1/ready")
            assert r.status_code == 503 and r.json()["error"] == "not_ready"
        with http_client(station, home) as http:  # a station is told to retry, not a bare 500
            r = put_chunk(http, node.url, parse(env).header.packet_id, 0, env, len(env))
            assert r.status_code == 503 and r.json()["error"] == "storage_unavailable", r.text
    finally:
        node.stop()


def test_workers_share_one_port(pg_cluster: Cluster, tmp_path: Path) -> None:
    url = pg_cluster.create_database()
    try:
        home = make_home(tmp_path / "w", database_url=url)
        ctx = _ops_context(home, tmp_path / "ops")
        node = CentralProcess(home, "--workers", "2")
        try:
            pids: set[int] = set()
            for _ in range(200):  # a new connection each time: the kernel spreads them over workers
                with httpx.Client(verify=ctx, timeout=20) as http:
                    r = http.get(f"{node.url}/v1/ready")
                assert r.status_code == 200
                pids.add(int(r.json()["pid"]))
                if len(pids) == 2:
                    break
            assert len(pids) == 2 and node.proc.pid not in pids
        finally:
            node.stop()
    finally:
        pg_cluster.drop_database(url)
