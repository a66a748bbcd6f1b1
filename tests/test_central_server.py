"""The real ``central serve`` on loopback with real certificates: enrollment, upload, rejections."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from packetformat.packet import parse, uuid7
from sync.central.authority import Authority
from sync.central.home import CentralHome
from sync.common.receipt import verify_receipt
from sync.common.wire import HEADER_CHUNK_SHA256, HEADER_PACKET_SIZE, b64d, packet_path
from sync.pki.ca import new_ec_key
from tests.central_support import (
    REPO,
    TEST_LOCATION,
    CentralProcess,
    Client,
    csr_for,
    finalise,
    home_ca,
    http_client,
    make_home,
    other_ca,
    put_chunk,
    raw_leaf,
    refused,
    resigned_with_id,
    sealed,
    station_client,
    upload,
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> CentralHome:
    return make_home(tmp_path_factory.mktemp("central") / "home")


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
    return {name: station_client(home, tmp, name) for name in ("uc-a", "uc-b", "uc-c")}


def central(home: CentralHome, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.central", "--home", str(home.root), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def receipt_key(home: CentralHome) -> ed25519.Ed25519PublicKey:
    key = serialization.load_pem_public_key(home.receipt_pub.read_bytes())
    assert isinstance(key, ed25519.Ed25519PublicKey)
    return key


def stored_count(home: CentralHome) -> int:
    return sum(1 for p in home.blobs.rglob("*") if p.is_file() and not p.name.startswith("."))


# -- enrollment ----------------------------------------------------------------------------------
def test_token_enrolls_once_and_expired_token_refused(home: CentralHome, server: CentralProcess) -> None:
    out = central(home, "token", "new", "--station", "uc-new", *TEST_LOCATION, "--ttl", "10m")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    key = new_ec_key()
    body = {"token": token, "station_id": "uc-new", "csr_pem": csr_for(key, "uc-new")}
    with http_client(None, home) as http:
        r = http.post(f"{server.enroll_url}/v1/enroll", json=body)
        assert r.status_code == 200, r.text
        data = r.json()
        cert = x509.load_pem_x509_certificate(data["certificate_pem"].encode())
        assert cert.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:station:uc-new"]
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        life = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert dt.timedelta(days=29) < life < dt.timedelta(days=31)
        assert data["hpke_suite"] == "x25519" and len(b64d(data["hpke_public_key_b64"])) == 32
        assert data["ca_pem"] == home.ca_cert.read_text()
        assert data["receipt_public_key_pem"] == home.receipt_pub.read_text()
        # a token works once
        again = http.post(f"{server.enroll_url}/v1/enroll", json=body)
        assert again.status_code == 401 and again.json()["error"] == "bad_token"
        # an expired token is refused
        expired = Authority(home).tokens.new("uc-old", 60, now=time.time() - 120)
        r = http.post(
            f"{server.enroll_url}/v1/enroll",
            json={"token": expired, "station_id": "uc-old", "csr_pem": csr_for(new_ec_key(), "uc-old")},
        )
        assert r.status_code == 401
        # a CSR naming another station is refused and does not burn the token
        fresh = Authority(home).new_token("uc-x", 600)
        r = http.post(
            f"{server.enroll_url}/v1/enroll",
            json={
                "token": fresh,
                "station_id": "uc-x",
                "csr_pem": csr_for(new_ec_key(), "uc-x", san="urn:station:uc-y"),
            },
        )
        assert r.status_code == 400 and r.json()["error"] == "bad_csr"
        r = http.post(
            f"{server.enroll_url}/v1/enroll",
            json={"token": fresh, "station_id": "uc-x", "csr_pem": csr_for(new_ec_key(), "uc-x")},
        )
        assert r.status_code == 200
        # the enrollment listener serves nothing else
        assert http.get(f"{server.enroll_url}/v1/packets/{uuid7()}").status_code in (404, 405)


# -- TLS rejections --------------------------------------------------------------------------------
def test_tls_rejection_matrix(home: CentralHome, server: CentralProcess, tmp_path: Path) -> None:
    ca = home_ca(home)
    now = dt.datetime.now(dt.UTC)
    url = f"{server.url}{packet_path(uuid7())}"
    before = stored_count(home)
    assert refused(None, home, url), "no client certificate must be refused"
    expired = raw_leaf(
        ca,
        tmp_path,
        "uc-exp",
        uri="urn:station:uc-exp",
        not_before=now - dt.timedelta(days=10),
        not_after=now - dt.timedelta(days=1),
    )
    assert refused(expired, home, url)
    future = raw_leaf(
        ca,
        tmp_path,
        "uc-fut",
        uri="urn:station:uc-fut",
        not_before=now + dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=30),
    )
    assert refused(future, home, url)
    foreign = raw_leaf(other_ca(), tmp_path, "uc-foreign", uri="urn:station:uc-foreign")
    assert refused(foreign, home, url)
    server_only = raw_leaf(
        ca, tmp_path, "uc-srv", uri="urn:station:uc-srv", eku=[ExtendedKeyUsageOID.SERVER_AUTH]
    )
    assert refused(server_only, home, url)
    assert stored_count(home) == before


def test_revoked_station_refused_without_restart(
    home: CentralHome, server: CentralProcess, tmp_path: Path
) -> None:
    victim = station_client(home, tmp_path, "uc-revoke")
    url = f"{server.url}{packet_path(uuid7())}"
    with http_client(victim, home) as http:
        assert http.get(url).status_code == 200
        out = central(home, "revoke", "uc-revoke")
        assert out.returncode == 0, out.stderr
        # a connection opened before the revocation is refused by the application
        r = http.get(url)
        assert r.status_code == 403
    # new connections are refused in TLS (the server reloaded the CRL)
    assert refused(victim, home, url)
    assert central(home, "revoke", "uc-nobody").returncode == 1


# -- uploads ---------------------------------------------------------------------------------------
def test_chunked_upload_resume_after_cut_and_duplicate(
    home: CentralHome, server: CentralProcess, ids: dict[str, Client]
) -> None:
    a = ids["uc-a"]
    env = sealed(home, a, doc={"blob": bytes(range(256)) * 200})
    pid = parse(env).header.packet_id
    with http_client(a, home) as http:
        assert put_chunk(http, server.url, pid, 0, env[:10_000], len(env)).json() == {"offset": 10_000}
    # cut: a connection dies in the middle of a chunk body
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    assert host is not None and port is not None
    ctx = a.context(home.ca_cert)
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        chunk = env[10_000:20_000]
        head = (
            f"PUT {packet_path(pid)}?offset=10000 HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Length: {len(chunk)}\r\n{HEADER_PACKET_SIZE}: {len(env)}\r\n"
            f"{HEADER_CHUNK_SHA256}: {hashlib.sha256(chunk).hexdigest()}\r\n\r\n"
        )
        tls.sendall(head.encode() + chunk[:3000])
    with http_client(a, home) as http:
        deadline = time.monotonic() + 10
        status = http.get(f"{server.url}{packet_path(pid)}").json()
        while status["offset"] != 10_000 and time.monotonic() < deadline:
            status = http.get(f"{server.url}{packet_path(pid)}").json()
        assert status == {"offset": 10_000, "complete": False, "receipt_b64": None}
        # wrong offset and a replayed chunk with other bytes are refused, offset unchanged
        r = put_chunk(http, server.url, pid, 5_000, b"x" * 100, len(env))
        assert r.status_code == 409 and r.json() == {**r.json(), "error": "offset_mismatch", "offset": 10_000}
        r = put_chunk(http, server.url, pid, 0, b"y" * 10_000, len(env))
        assert r.status_code == 409 and r.json()["offset"] == 10_000
        # bad checksum
        r = put_chunk(http, server.url, pid, 10_000, env[10_000:20_000], len(env), digest="00" * 32)
        assert r.status_code == 400 and r.json()["error"] == "checksum_mismatch"
        # resume and finish
        r = upload(http, server.url, env, chunk=7_000)
        assert r.status_code == 200, r.text
        receipt = verify_receipt(b64d(r.json()["receipt_b64"]), receipt_key(home))
        assert (receipt.packet_id, receipt.station_id, receipt.size) == (pid, "uc-a", len(env))
        assert receipt.sha256 == hashlib.sha256(env).hexdigest()
        # duplicate: the same receipt, byte for byte, by finalise and by status
        again = upload(http, server.url, env)
        assert again.status_code == 200 and again.json()["receipt_b64"] == r.json()["receipt_b64"]
        status = http.get(f"{server.url}{packet_path(pid)}").json()
        assert status == {"offset": len(env), "complete": True, "receipt_b64": r.json()["receipt_b64"]}
    blob = home.blobs / receipt.sha256[:2] / receipt.sha256
    assert blob.read_bytes() == env


def test_large_chunks_arrive_whole(home: CentralHome, server: CentralProcess, ids: dict[str, Client]) -> None:
    """256 KiB chunks (the agent's default) span many TCP reads: the server must read to the end."""
    a = ids["uc-a"]
    env = sealed(home, a, doc={"pad": bytes(range(256)) * 2500})  # ~640 KB
    with http_client(a, home) as http:
        r = upload(http, server.url, env, chunk=256 * 1024)
        assert r.status_code == 200, r.text
        assert verify_receipt(b64d(r.json()["receipt_b64"]), receipt_key(home)).size == len(env)


def test_oversize_refused(home: CentralHome, server: CentralProcess, ids: dict[str, Client]) -> None:
    with http_client(ids["uc-a"], home) as http:
        pid = uuid7()
        r = put_chunk(http, server.url, pid, 0, b"z" * 1000, 8 * 1024 * 1024 + 1)
        assert r.status_code == 413 and r.json()["error"] == "too_large"
        r = put_chunk(http, server.url, pid, 0, b"z" * 1000, 500)
        assert r.status_code == 413
        assert http.get(f"{server.url}{packet_path(pid)}").json()["offset"] == 0


def test_conflict_is_409_and_an_alert(
    home: CentralHome, server: CentralProcess, ids: dict[str, Client]
) -> None:
    b = ids["uc-b"]
    first = sealed(home, b)
    pid = parse(first).header.packet_id
    other = resigned_with_id(sealed(home, b, doc={"other": 1}), pid, b.key)
    with http_client(b, home) as http:
        assert upload(http, server.url, first).status_code == 200
        r = upload(http, server.url, other)
        assert r.status_code == 409 and r.json()["error"] == "conflict"
    out = central(home, "status", "--all", "--json")
    rows = {s["station_id"]: s for s in json.loads(out.stdout)["stations"]}
    assert "conflict" in rows["uc-b"]["alerts"]
    assert "conflict" not in rows["uc-a"]["alerts"]


@pytest.mark.parametrize("case", ["other_key", "other_station_id", "tampered", "id_mismatch"])
def test_invalid_packets_are_422_and_nothing_stored(
    home: CentralHome, server: CentralProcess, ids: dict[str, Client], case: str
) -> None:
    c, a = ids["uc-c"], ids["uc-a"]
    if case == "other_key":
        env = sealed(home, c, key=a.key)  # says uc-c, signed by uc-a's key
    elif case == "other_station_id":
        env = sealed(home, c, station_id="uc-a")  # signed by uc-c, says uc-a
    elif case == "tampered":
        good = bytearray(sealed(home, c))
        good[-80] ^= 0x01  # inside the ciphertext
        env = bytes(good)
    else:
        env = resigned_with_id(sealed(home, c), uuid7(), c.key)
    pid = parse(env).header.packet_id if case != "tampered" else parse(sealed(home, c)).header.packet_id
    if case == "id_mismatch":
        pid = str(uuid.UUID(uuid7()))
    before = stored_count(home)
    with http_client(c, home) as http:
        r = put_chunk(http, server.url, pid, 0, env, len(env))
        assert r.status_code == 200
        r = finalise(http, server.url, pid, env)
        assert r.status_code == 422 and r.json()["error"] == "invalid_packet", r.text
        assert http.get(f"{server.url}{packet_path(pid)}").json()["offset"] == 0
    assert stored_count(home) == before
    assert not (home.uploads / "uc-c" / f"{pid}.part").exists()


# -- renewal, heartbeat, status, ops views ---------------------------------------------------------
def test_renewal_with_valid_certificate(home: CentralHome, server: CentralProcess, tmp_path: Path) -> None:
    old = station_client(home, tmp_path, "uc-renew")
    new_key = new_ec_key()
    with http_client(old, home) as http:
        r = http.post(f"{server.url}/v1/renew", json={"csr_pem": csr_for(new_key, "uc-renew")})
        assert r.status_code == 200, r.text
        r2 = http.post(f"{server.url}/v1/renew", json={"csr_pem": csr_for(new_key, "uc-other")})
        assert r2.status_code == 400
    cert = x509.load_pem_x509_certificate(r.json()["certificate_pem"].encode())
    from tests.central_support import write_identity

    renewed = write_identity(tmp_path / "n", "uc-renew", new_key, cert, "uc-renew")
    with http_client(renewed, home) as http:
        assert http.get(f"{server.url}{packet_path(uuid7())}").status_code == 200


def heartbeat(station: str, seq: int, head: str, cert_not_after: str = "") -> dict[str, object]:
    return {
        "station_id": station,
        "sent_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "counts": {"sealed": 3, "uploading": 1, "acked": 10, "purged": 2},
        "oldest_pending_age_s": 125.0,
        "last_sync_at": None,
        "disk_free_bytes": 10 * 10**9,
        "devices": {"scanner": "ok", "camera": "ok"},
        "version": "0.1.0",
        "cert_not_after": cert_not_after,
        "audit_head": head,
        "audit_seq": seq,
    }


def test_heartbeat_status_alerts(home: CentralHome, server: CentralProcess, tmp_path: Path) -> None:
    hb = station_client(home, tmp_path, "uc-hb")
    short = station_client(home, tmp_path, "uc-short", days=3)
    rewound = station_client(home, tmp_path, "uc-rewind")
    short_end = short.cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    with http_client(hb, home) as http:
        assert (
            http.post(f"{server.url}/v1/heartbeat", json=heartbeat("uc-hb", 5, "aa" * 32)).status_code == 200
        )
        assert (
            http.post(f"{server.url}/v1/heartbeat", json=heartbeat("uc-hb", 6, "bb" * 32)).status_code == 200
        )
        assert http.post(f"{server.url}/v1/heartbeat", json=heartbeat("uc-other", 1, "aa")).status_code == 400
        assert http.post(f"{server.url}/v1/heartbeat", json={"station_id": "uc-hb"}).status_code == 400
    with http_client(short, home) as http:
        for head in ("cc", "dd"):
            beat = heartbeat("uc-short", 1, head, short_end)
            assert http.post(f"{server.url}/v1/heartbeat", json=beat).status_code == 200
    with http_client(rewound, home) as http:
        assert (
            http.post(f"{server.url}/v1/heartbeat", json=heartbeat("uc-rewind", 9, "ee")).status_code == 200
        )
        assert (
            http.post(f"{server.url}/v1/heartbeat", json=heartbeat("uc-rewind", 4, "ff")).status_code == 200
        )
    out = central(home, "status", "--all", "--json")
    assert out.returncode == 0, out.stderr
    rows = {s["station_id"]: s for s in json.loads(out.stdout)["stations"]}
    assert rows["uc-hb"]["alerts"] == [] and rows["uc-hb"]["pending"] == 4
    assert rows["uc-hb"]["state"] == "ok"
    assert 125.0 <= rows["uc-hb"]["oldest_pending_age_s"] < 125.0 + 60
    assert rows["uc-short"]["alerts"] == ["audit_broken", "cert_expiring"]
    assert rows["uc-rewind"]["alerts"] == ["audit_rewound"]
    # the default view is the stations in trouble only
    trouble = json.loads(central(home, "status", "--json").stdout)
    assert {"uc-short", "uc-rewind"} <= {s["station_id"] for s in trouble["stations"]}
    assert "uc-hb" not in {s["station_id"] for s in trouble["stations"]}
    assert trouble["summary"]["alerts"]["audit_rewound"] >= 1
    table = central(home, "status", "--all")
    assert table.returncode == 0 and "uc-hb" in table.stdout and "audit_rewound" in table.stdout
    assert table.stdout.startswith("stations ")


def test_dashboard_and_metrics_need_an_ops_cert(
    home: CentralHome, server: CentralProcess, ids: dict[str, Client], tmp_path: Path
) -> None:
    out = central(home, "ops-cert", "alice", "--out", str(tmp_path / "ops"))
    assert out.returncode == 0, out.stderr
    key = serialization.load_pem_private_key((tmp_path / "ops" / "alice.key").read_bytes(), None)
    cert = x509.load_pem_x509_certificate((tmp_path / "ops" / "alice.crt").read_bytes())
    from tests.central_support import write_identity

    ops = write_identity(tmp_path / "o", "alice", key, cert)  # type: ignore[arg-type]
    assert (tmp_path / "ops" / "alice.key").stat().st_mode & 0o777 == 0o600
    with http_client(ids["uc-a"], home) as http:
        assert http.get(f"{server.url}/metrics").status_code == 403
        assert http.get(f"{server.url}/dashboard").status_code == 403
    assert refused(None, home, f"{server.url}/metrics")
    with http_client(ops, home) as http:
        page = http.get(f"{server.url}/dashboard")
        assert page.status_code == 200 and 'http-equiv="refresh"' in page.text and "uc-a" in page.text
        assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'none' forbids them
        metrics = http.get(f"{server.url}/metrics")
        assert metrics.status_code == 200
        assert "central_packets_stored" in metrics.text and "central_stations{district=" in metrics.text
        assert 'station="' not in metrics.text  # no per-station label sets
        # an ops certificate cannot upload
        assert http.get(f"{server.url}{packet_path(uuid7())}").status_code == 403


def test_open_round_trip(
    home: CentralHome, server: CentralProcess, ids: dict[str, Client], tmp_path: Path
) -> None:
    a = ids["uc-a"]
    env = sealed(home, a)
    pid = parse(env).header.packet_id
    with http_client(a, home) as http:
        assert upload(http, server.url, env).status_code == 200
    out = central(home, "open", pid, "--key", str(home.backoffice_key), "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["packet"]["station_id"] == "uc-a" and summary["packet"]["packet_id"] == pid
    assert summary["document"]["demographics"]["cnic"] == "35202-1234567-1"
    assert summary["document"]["images"]["face"]["jpeg"].startswith("<302 bytes")
    out = central(home, "open", pid, "--key", str(home.backoffice_key), "--out", str(tmp_path / "x"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "x" / "images_face_jpeg.jpg").read_bytes() == b"\xff\xd8" + bytes(300)
    doc = json.loads((tmp_path / "x" / "document.json").read_text())
    assert doc["document"]["images"]["face"]["jpeg"] == {"file": "images_face_jpeg.jpg", "bytes": 302}
    # a wrong key says so, and an unknown packet says so
    wrong = tmp_path / "wrong.key"
    wrong.write_text("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=\n")
    bad = central(home, "open", pid, "--key", str(wrong))
    assert bad.returncode == 1 and "cannot be decrypted" in bad.stderr
    missing = central(home, "open", uuid7(), "--key", str(home.backoffice_key))
    assert missing.returncode == 1 and "not stored here" in missing.stderr
    assert (
        "image hashes: 1 checked, 0 mismatched"
        in central(home, "open", pid, "--key", str(home.backoffice_key)).stdout
    )
    # an image whose recorded hash does not match is reported and the command fails
    damaged = sealed(home, a, doc={"images": {"face": {"jpeg": b"\xff\xd8abc", "sha256": "00" * 32}}})
    with http_client(a, home) as http:
        assert upload(http, server.url, damaged).status_code == 200
    out = central(home, "open", parse(damaged).header.packet_id, "--key", str(home.backoffice_key))
    assert out.returncode == 1 and "/images/face" in out.stdout and "do not match" in out.stderr


def test_server_never_opens_the_hpke_private_key(home: CentralHome, server: CentralProcess) -> None:
    fds = Path(f"/proc/{server.proc.pid}/fd")
    targets = {str(p.resolve()) for p in fds.iterdir() if p.is_symlink()} if fds.exists() else set()
    assert str(home.backoffice_key.resolve()) not in targets
    ssl.create_default_context()  # keep the ssl import honest on platforms without /proc
