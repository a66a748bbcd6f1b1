"""Central under attack (issue 13 findings 1, 2, 7, 11, 13): each attack of the review, replayed.

- hostile CBOR at finalise and in ``central open`` (tags 28/29, 8 MiB of empty arrays);
- verification in budgeted worker processes (a worker over its time or memory budget is replaced);
- slow and silent clients, wrong-token floods and connection floods on the enrollment port while a
  station still uploads through the ingest port;
- absurd heartbeats refused; hostile stored rows do not break ``/metrics``, ``/dashboard``, status;
- no TLS session resumption on the ingest port; no software version in ``Server``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from packetformat.packet import uuid7
from sync.central.home import CentralHome
from sync.central.server import ServeOptions, ServerLimits, serve
from sync.central.verifier import VerifierPool, VerifyRefused
from tests.central_support import (
    REPO,
    CentralProcess,
    Client,
    finalise,
    home_ca,
    http_client,
    make_home,
    put_chunk,
    raw_leaf,
    sealed,
    station_client,
    upload,
)
from tests.hostile_cbor import dag_envelope, empty_arrays, sealed_plaintext, shared_dag


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> CentralHome:
    return make_home(tmp_path_factory.mktemp("hardening") / "home")


@pytest.fixture(scope="module")
def server(home: CentralHome) -> Iterator[CentralProcess]:
    proc = CentralProcess(home)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def ids(home: CentralHome, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Client]:
    tmp = tmp_path_factory.mktemp("ids")
    return {name: station_client(home, tmp, name) for name in ("uc-evil", "uc-good", "uc-soak")}


def central_cli(home: CentralHome, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.central", "--home", str(home.root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def upload_raw(
    http: httpx.Client, base: str, pid: str, envelope: bytes, chunk: int = 1 << 20
) -> httpx.Response:
    for offset in range(0, len(envelope), chunk):
        r = put_chunk(http, base, pid, offset, envelope[offset : offset + chunk], len(envelope))
        assert r.status_code == 200, r.text
    return finalise(http, base, pid, envelope)


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


# -- finding 1: hostile CBOR ---------------------------------------------------------------------
def test_dag_envelope_at_finalise_does_not_hold_up_another_station(
    home: CentralHome, server: CentralProcess, ids: dict[str, Client]
) -> None:
    evil, good = ids["uc-evil"], ids["uc-good"]
    envelope = dag_envelope()
    assert len(envelope) < 400
    answers: dict[str, tuple[int, str, float]] = {}

    def attack() -> None:
        with http_client(evil, home) as http:
            start = time.monotonic()
            r = upload_raw(http, server.url, uuid7(), envelope)
            answers["evil"] = (r.status_code, r.json()["error"], time.monotonic() - start)

    def honest() -> None:
        with http_client(good, home) as http:
            start = time.monotonic()
            r = upload(http, server.url, sealed(home, good))
            answers["good"] = (r.status_code, "", time.monotonic() - start)

    threads = [threading.Thread(target=attack), threading.Thread(target=honest)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert answers["evil"][:2] == (422, "invalid_packet")
    assert answers["good"][0] == 200
    assert answers["evil"][2] < 5 and answers["good"][2] < 5  # the review measured 19 s


def test_eight_mib_of_empty_arrays_is_refused_in_bounded_time_and_memory(
    home: CentralHome, server: CentralProcess, ids: dict[str, Client]
) -> None:
    envelope = empty_arrays(8 * 1024 * 1024)
    before = vm_hwm_kib(server.proc.pid)
    with http_client(ids["uc-evil"], home) as http:
        pid = uuid7()
        for offset in range(0, len(envelope), 1 << 20):
            chunk = envelope[offset : offset + (1 << 20)]
            assert put_chunk(http, server.url, pid, offset, chunk, len(envelope)).status_code == 200
        start = time.monotonic()
        r = finalise(http, server.url, pid, envelope)
        elapsed = time.monotonic() - start
    assert r.status_code == 422 and r.json()["error"] == "invalid_packet"
    assert elapsed < 5  # the review measured 4.9 s of decoding
    assert vm_hwm_kib(server.proc.pid) - before < 200 * 1024  # the review measured 580 MB


def test_central_open_refuses_a_sealed_dag_at_once(
    home: CentralHome, server: CentralProcess, ids: dict[str, Client]
) -> None:
    station = ids["uc-evil"]
    from sync.central.authority import Authority

    pid, envelope = sealed_plaintext(
        b"\xa1\x61x" + shared_dag(30),
        station_id=station.station_id,
        identity_key=station.key,
        recipient_public_key=Authority(home).hpke_public()[0],
    )
    assert len(envelope) < 600
    with http_client(station, home) as http:
        r = upload_raw(http, server.url, pid, envelope)
    assert r.status_code == 200  # ingest cannot look inside: it stores what the station signed
    start = time.monotonic()
    out = central_cli(home, "open", pid, "--key", str(home.backoffice_key), timeout=30)
    assert time.monotonic() - start < 20
    assert out.returncode == 1
    assert "error [central.open.packet.cbor.tag]:" in out.stderr and "Traceback" not in out.stderr


# -- verification workers ------------------------------------------------------------------------
def _sealed_big(size: int) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives.asymmetric import ec

    from packetformat.packet import generate_recipient_keypair, seal

    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _, public = generate_recipient_keypair()
    env = seal({"x": bytes(size)}, station_id="st-1", identity_key=key, recipient_public_key=public).envelope
    return env, der


def test_a_worker_over_its_budget_is_replaced_and_the_next_packet_passes() -> None:
    envelope, der = _sealed_big(6_000_000)
    job = {"sha256": hashlib.sha256(envelope).hexdigest(), "size": len(envelope), "max_size": 8 << 20}

    async def scenario() -> None:
        pool = VerifierPool(workers=1)
        small = VerifierPool(workers=1, memory_budget=2 * 1024 * 1024)
        try:
            with pytest.raises(VerifyRefused) as info:
                await pool.verify(envelope, der, **job, time_budget_s=0.0005)
            assert info.value.code == "verify.budget" and pool.replaced == 1
            ok = await pool.verify(envelope, der, **job)
            assert ok.station_id == "st-1"
            with pytest.raises(VerifyRefused) as info:
                await small.verify(envelope, der, **job)
            assert info.value.code == "verify.budget" and small.replaced == 1
            with pytest.raises(VerifyRefused) as info:
                await pool.verify(
                    dag_envelope(),
                    der,
                    sha256=hashlib.sha256(dag_envelope()).hexdigest(),
                    size=len(dag_envelope()),
                    max_size=8 << 20,
                )
            assert info.value.code == "verify.invalid"
        finally:
            pool.close()
            small.close()

    asyncio.run(scenario())


# -- finding 2: the enrollment port ----------------------------------------------------------------
@dataclass
class Running:
    url: str
    enroll_url: str
    port: int
    eport: int


@contextlib.contextmanager
def central_in_thread(home: CentralHome, limits: ServerLimits) -> Iterator[Running]:
    """The real ``serve`` with test-sized limits, on a loop in a thread of this process."""
    state: dict[str, object] = {}
    started = threading.Event()

    async def main() -> None:
        stop = asyncio.Event()
        state["loop"], state["stop"] = asyncio.get_running_loop(), stop

        def ready(host: str, port: int, eport: int) -> None:
            state["ports"] = (port, eport)
            started.set()

        options = ServeOptions(host="127.0.0.1", port=0, enroll_port=0, limits=limits)
        await serve(home, options, ready=ready, stop=stop)

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by the assertion below
            state["error"] = exc
            started.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(60), "central did not start"
    assert "error" not in state, state.get("error")
    port, eport = state["ports"]  # type: ignore[misc]
    try:
        yield Running(f"https://127.0.0.1:{port}", f"https://127.0.0.1:{eport}", int(port), int(eport))
    finally:
        loop, stop = state["loop"], state["stop"]
        loop.call_soon_threadsafe(stop.set)  # type: ignore[attr-defined]
        thread.join(60)
        assert not thread.is_alive()


FAST = ServerLimits(
    enroll_header_timeout_s=1.0,
    header_timeout_s=3.0,
    handshake_timeout_s=1.0,
    body_timeout_s=2.0,
    enroll_max_connections=60,
    enroll_max_per_address=1000,
    enroll_connect_rate=1000.0,
    enroll_connect_burst=1000.0,
    verify_workers=1,
)


def tls_to(home: CentralHome, port: int, client: Client | None = None) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(home.ca_cert))
    if client is not None:
        ctx.load_cert_chain(str(client.cert_path), str(client.key_path))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def closed_by_peer(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except (ConnectionError, ssl.SSLError):
        return True
    except TimeoutError:
        return False


def test_slow_loris_and_silent_connections_are_closed_in_time(home: CentralHome) -> None:
    with central_in_thread(home, FAST) as c:
        slow = []
        for _ in range(20):
            s = tls_to(home, c.eport)
            s.sendall(b"POST /v1/enroll HTTP/1.1\r\nHost: central\r\nContent-Le")  # never finished
            slow.append(s)
        silent = [socket.create_connection(("127.0.0.1", c.eport), timeout=10) for _ in range(20)]  # no TLS
        start = time.monotonic()
        assert all(closed_by_peer(s, 6) for s in slow)
        assert all(closed_by_peer(s, 6) for s in silent)
        assert time.monotonic() - start < 8
        for s in slow + silent:
            s.close()


def test_wrong_tokens_from_one_address_get_429_and_no_certificate_work(
    home: CentralHome, tmp_path: Path
) -> None:
    from sync.pki.ca import new_ec_key
    from tests.central_support import csr_for

    csr = csr_for(new_ec_key(), "uc-brute")
    with central_in_thread(home, FAST) as c, http_client(None, home) as http:
        codes = []
        for i in range(30):
            r = http.post(
                f"{c.enroll_url}/v1/enroll",
                json={
                    "token": f"wrong-{i}",
                    "station_id": "uc-brute",
                    "csr_pem": "not a CSR" if i == 0 else csr,
                },
            )
            codes.append((r.status_code, r.json()["error"]))
            if r.status_code == 429:
                assert int(r.headers["Retry-After"]) >= 1
        assert codes[0] == (401, "bad_token")  # the token is looked at first: no CSR parsed for it
        assert set(codes[:10]) == {(401, "bad_token")}
        assert set(codes[10:]) == {(429, "rate_limited")}
        assert r.headers["Connection"].lower() == "close"  # one attempt per connection


def _flood_and_sync(home: CentralHome, clients: int, station: Client) -> None:
    limits = ServerLimits(
        enroll_header_timeout_s=30.0,
        handshake_timeout_s=30.0,
        enroll_max_connections=min(clients // 2, 200),
        enroll_max_per_address=10_000,
        enroll_connect_rate=10_000.0,
        enroll_connect_burst=10_000.0,
        verify_workers=1,
    )
    with central_in_thread(home, limits) as c:
        held: list[socket.socket] = []
        try:
            for i in range(clients):
                s = socket.create_connection(("127.0.0.1", c.eport), timeout=10)
                if i % 2:
                    s.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, then nothing
                held.append(s)
            refused = sum(1 for s in held[limits.enroll_max_connections + 5 :] if closed_by_peer(s, 2))
            assert refused > 0  # past the cap, connections are closed at once
            with http_client(station, home) as http:
                start = time.monotonic()
                r = upload(http, c.url, sealed(home, station))
                assert r.status_code == 200, r.text
                assert time.monotonic() - start < 10
        finally:
            for s in held:
                s.close()


def test_a_station_syncs_while_the_enrollment_port_is_flooded(
    home: CentralHome, ids: dict[str, Client]
) -> None:
    _flood_and_sync(home, 120, ids["uc-soak"])


@pytest.mark.slow
def test_soak_hundreds_of_slow_clients_station_still_syncs(home: CentralHome, ids: dict[str, Client]) -> None:
    _flood_and_sync(home, 600, ids["uc-soak"])


def test_ingest_survives_an_enrollment_flood_under_a_low_descriptor_limit(
    home: CentralHome, ids: dict[str, Client]
) -> None:
    """The review's setting: a low file limit and ~1000 connections on the enrollment port."""
    server = CentralProcess(home, max_files=512)
    held: list[socket.socket] = []
    try:
        eport = int(server.enroll_url.rsplit(":", 1)[1])
        for _ in range(1000):
            held.append(socket.create_connection(("127.0.0.1", eport), timeout=10))
        assert sum(1 for s in held[-100:] if closed_by_peer(s, 2)) > 90  # over the cap: closed at once
        with http_client(ids["uc-soak"], home) as http:
            r = upload(http, server.url, sealed(home, ids["uc-soak"]))
        assert r.status_code == 200, r.text
        assert server.proc.poll() is None
    finally:
        for s in held:
            s.close()
        server.stop()


# -- finding 7: heartbeats ---------------------------------------------------------------------
def heartbeat(station: str) -> dict[str, object]:
    return {
        "station_id": station,
        "sent_at": "2026-01-01T00:00:00Z",
        "counts": {"sealed": 3, "uploading": 1, "acked": 10, "purged": 2},
        "oldest_pending_age_s": 125.0,
        "last_sync_at": None,
        "disk_free_bytes": 10**9,
        "devices": {"scanner": "ok", "camera": "missing"},
        "version": "0.1.0",
        "cert_not_after": "2026-02-01T00:00:00Z",
        "audit_head": "ab" * 32,
        "audit_seq": 1,
    }


@pytest.mark.parametrize(
    "field,value",
    [
        ("disk_free_bytes", 10**100),
        ("audit_seq", 10**100),
        ("counts", {"sealed": 10**100}),
        ("oldest_pending_age_s", 1e300),
        ("version", "x" * 1_000_000),
        ("devices", {f"d{i}": "ok" for i in range(40)}),
        ("sent_at", "yesterday"),
        ("audit_head", "not hex"),
    ],
)
def test_absurd_heartbeats_are_refused(
    home: CentralHome, server: CentralProcess, ids: dict[str, Client], field: str, value: object
) -> None:
    with http_client(ids["uc-good"], home) as http:
        r = http.post(f"{server.url}/v1/heartbeat", json={**heartbeat("uc-good"), field: value})
    assert r.status_code == 400 and r.json()["error"] == "bad_heartbeat"


def test_hostile_stored_rows_do_not_break_the_views(
    home: CentralHome, server: CentralProcess, ids: dict[str, Client], tmp_path: Path
) -> None:
    with http_client(ids["uc-good"], home) as http:
        assert http.post(f"{server.url}/v1/heartbeat", json=heartbeat("uc-good")).status_code == 200
    # every column the views read, with values of the wrong type or out of range
    hostile = {
        "uc-h1": {
            "heartbeat": json.dumps({**heartbeat("uc-h1"), "disk_free_bytes": 10**100}),
            "last_seen": 1e300,
            "pending": "many",
            "disk_free_bytes": 1e300,
            "version": "x" * 1_000_000,
        },
        "uc-h2": {
            "heartbeat": '{"counts": {"sealed": ' + "9" * 5000 + "}}",
            "pending": 2**62 * 1.0,
            "oldest_pending_age_s": float("inf"),
            "clock_skew_s": float("nan"),
        },
        "uc-h3": {"heartbeat": "not json at all", "scanner": b"\xff\xfe", "cert_not_after": "soon"},
        "uc-h4": {"heartbeat": "[" * 100_000, "packets_stored": -5, "registered_at": "yesterday"},
    }
    with contextlib.closing(sqlite3.connect(home.db)) as db, db:
        for sid, values in hostile.items():
            db.execute(
                "INSERT OR REPLACE INTO stations(station_id, created_at) VALUES (?, ?)", (sid, time.time())
            )
            for column, value in values.items():
                db.execute(f"UPDATE stations SET {column} = ? WHERE station_id = ?", (value, sid))
    status = central_cli(home, "status", "--all", "--json")
    assert status.returncode == 0, status.stderr
    rows = {s["station_id"]: s for s in json.loads(status.stdout)["stations"]}
    assert rows["uc-good"]["pending"] == 4
    assert {"uc-h1", "uc-h2", "uc-h3", "uc-h4"} <= set(rows) and rows["uc-h1"]["pending"] is None
    assert central_cli(home, "status", "--all").returncode == 0
    ops = raw_leaf(home_ca(home), tmp_path, "ops-h", uri="urn:ops:ops-h")
    with http_client(ops, home) as http:
        metrics = http.get(f"{server.url}/metrics")
        pages = [http.get(f"{server.url}/dashboard"), http.get(f"{server.url}/dashboard?all=1")]
        pages += [http.get(f"{server.url}/dashboard/station/{sid}") for sid in hostile]
        pages += [http.get(f"{server.url}/ops/v1/stations/{sid}") for sid in hostile]
        fleet = http.get(f"{server.url}/ops/v1/fleet")
    assert metrics.status_code == 200 and "central_partial_uploads" in metrics.text
    assert [p.status_code for p in pages] == [200] * len(pages)
    assert fleet.status_code == 200


# -- findings 11 and 13: TLS resumption, Server header -------------------------------------------
def test_no_tls_session_resumption_on_the_ingest_port(
    home: CentralHome, server: CentralProcess, ids: dict[str, Client]
) -> None:
    station = ids["uc-good"]
    ctx = station.context(home.ca_cert)
    port = int(server.url.rsplit(":", 1)[1])
    request = (
        b"GET /v1/packets/" + uuid7().encode() + b" HTTP/1.1\r\nHost: central\r\nConnection: close\r\n\r\n"
    )
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as first,
    ):
        first.sendall(request)
        answer = b""
        for _ in range(100):
            part = first.recv(65536)
            if not part:
                break
            answer += part
        assert answer.startswith(b"HTTP/1.1 200")
        session = first.session
    assert session is None or not session.has_ticket
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost", session=session) as second,
    ):
        assert not second.session_reused  # a full handshake: the certificate is checked again


def test_server_header_names_no_software(
    home: CentralHome, server: CentralProcess, ids: dict[str, Client]
) -> None:
    with http_client(ids["uc-good"], home) as http:
        r = http.get(f"{server.url}/v1/packets/{uuid7()}")
    with http_client(None, home) as http:
        e = http.post(f"{server.enroll_url}/v1/enroll", json={})
    for response in (r, e):
        assert response.headers["server"] == "central"
    ctx = ssl.create_default_context(cafile=str(home.ca_cert))
    eport = int(server.enroll_url.rsplit(":", 1)[1])
    for garbage in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n"):
        with (
            socket.create_connection(("127.0.0.1", eport), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(garbage)
            head = tls.recv(4096).split(b"\r\n\r\n")[0].decode()
        assert head.startswith("HTTP/1.0 400") and "Server: central" in head, head
        assert (
            "aiohttp" not in str(response.headers).lower() and "python" not in str(response.headers).lower()
        )


@pytest.mark.slow
def test_soak_a_real_station_syncs_through_hundreds_of_slow_enrollment_clients(tmp_path: Path) -> None:
    """The review's soak with the real agent: ``station sync once`` while 600 clients stall."""
    from tests.sync_live import make_example, make_station, provision, running_central, station_cli

    example = make_example(tmp_path / "example")
    with running_central(tmp_path / "central") as central:
        home = tmp_path / "st"
        ids = make_station(home, 2, example, station_id="soak-station")
        provision(central, home, "soak-station")
        eport = int(central.enroll_url.rsplit(":", 1)[1])
        ca = CentralHome(central.home)
        held: list[socket.socket] = []
        try:
            for i in range(600):
                if i < 15:  # TLS done, headers never finished (within the per-address cap)
                    s = tls_to(ca, eport)
                    s.sendall(b"POST /v1/enroll HTTP/1.1\r\nHost: central\r\n")
                    held.append(s)
                else:  # TCP only, or half a ClientHello (past the cap: refused at once)
                    s = socket.create_connection(("127.0.0.1", eport), timeout=10)
                    if i % 2:
                        s.sendall(b"\x16\x03\x01")
                    held.append(s)
            start = time.monotonic()
            out = station_cli(home, "sync", "once")
            assert "acked 2 now" in out.stdout, out.stdout + out.stderr
            assert time.monotonic() - start < 60
            assert all(central.stored(pid) is not None for pid in ids)
        finally:
            for s in held:
                s.close()
