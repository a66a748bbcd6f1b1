"""Issue 13 findings 4 and 5 against a real ``central serve``, on both storage backends.

Finding 4 (packet-id squatting): station B uploads its own validly signed packet under station A's
packet id. Before the fix A's real packet then got ``conflict`` forever and the alert blamed A;
now packets are keyed by (station, packet id): A's packet is stored and receipted, B's is left
alone, and the reuse is an alert naming both.

Finding 5 (unfinished uploads fill the disk): a station could open unlimited partial uploads that
never expired, and with the disk full others got HTTP 500. Now each station has a cap (429
``too_many_uploads``), abandoned uploads expire, ops views count them, a disk reserve is kept and
a full store answers 507 ``storage_full`` (the disk-full run uses a small tmpfs, as root).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from packetformat.packet import parse
from sync.central.home import CentralHome
from sync.common.receipt import verify_receipt
from sync.common.wire import b64d, packet_path
from tests.central_support import (
    REPO,
    CentralProcess,
    finalise,
    http_client,
    make_home,
    put_chunk,
    resigned_with_id,
    sealed,
    station_client,
    upload,
)
from tests.waiting import wait_for


def central(home: CentralHome, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.central", "--home", str(home.root), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def status(home: CentralHome) -> dict[str, Any]:
    out = central(home, "status", "--all", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert isinstance(data, dict)
    return data


def alerts_of(home: CentralHome) -> dict[str, list[str]]:
    return {s["station_id"]: s["alerts"] for s in status(home)["stations"]}


def with_storage(home: CentralHome, **values: Any) -> None:
    config = home.config()
    config.setdefault("storage", {}).update(values)
    home.write_config(config)


def receipt_ok(home: CentralHome, receipt_b64: str, station: str, envelope: bytes) -> bool:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = serialization.load_pem_public_key(home.receipt_pub.read_bytes())
    assert isinstance(key, ed25519.Ed25519PublicKey)
    r = verify_receipt(b64d(receipt_b64), key)
    import hashlib

    return r.station_id == station and r.sha256 == hashlib.sha256(envelope).hexdigest()


# -- finding 4 ------------------------------------------------------------------------------------
def test_squatter_cannot_take_another_stations_packet_id(backend_url: str | None, tmp_path: Path) -> None:
    home = make_home(tmp_path / "c", database_url=backend_url)
    a = station_client(home, tmp_path / "ids", "uc-victim")
    b = station_client(home, tmp_path / "ids", "uc-squat")
    real = sealed(home, a)
    pid = parse(real).header.packet_id
    squat = resigned_with_id(sealed(home, b), pid, b.key)  # B's own valid packet under A's id
    node = CentralProcess(home)
    try:
        with http_client(b, home) as http_b, http_client(a, home) as http_a:
            # The attack: B takes the id first...
            rb = upload(http_b, node.url, squat)
            assert rb.status_code == 200
            # ...and A's real packet is still stored and receipted (it was 409 conflict forever).
            ra = upload(http_a, node.url, real)
            assert ra.status_code == 200, ra.text
            assert receipt_ok(home, ra.json()["receipt_b64"], "uc-victim", real)
            again = upload(http_a, node.url, real)
            assert again.status_code == 200 and again.json()["receipt_b64"] == ra.json()["receipt_b64"]
            assert http_a.get(f"{node.url}{packet_path(pid)}").json()["complete"] is True
            # B's own state is untouched by A's upload.
            assert upload(http_b, node.url, squat).json()["receipt_b64"] == rb.json()["receipt_b64"]
            # The other order: A's id already stored, a squatter re-uses it; the alert is on the squatter.
            real2 = sealed(home, a)
            pid2 = parse(real2).header.packet_id
            assert upload(http_a, node.url, real2).status_code == 200
            squat2 = resigned_with_id(sealed(home, b), pid2, b.key)
            assert upload(http_b, node.url, squat2).status_code == 200
    finally:
        node.stop()
    alerts = alerts_of(home)
    assert "conflict" not in alerts["uc-victim"] and "conflict" not in alerts["uc-squat"]
    assert "packet_id_reused" in alerts["uc-squat"]
    out = central(home, "open", pid, "--key", str(home.backoffice_key))
    assert (
        out.returncode == 1 and "error [central.ambiguous_packet]" in out.stderr and "--station" in out.stderr
    )
    out = central(home, "open", pid, "--key", str(home.backoffice_key), "--station", "uc-victim", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["packet"]["station_id"] == "uc-victim"


# -- finding 5 ------------------------------------------------------------------------------------
def test_partial_uploads_are_capped_per_station(backend_url: str | None, tmp_path: Path) -> None:
    home = make_home(tmp_path / "c", database_url=backend_url)
    with_storage(home, max_partials_per_station=5)
    attacker = station_client(home, tmp_path / "ids", "uc-flood")
    honest = station_client(home, tmp_path / "ids", "uc-honest")
    node = CentralProcess(home)
    try:
        codes: list[int] = []
        with http_client(attacker, home) as http:
            for _ in range(40):  # the attack opened 500 in 4 s; 40 show the cap
                r = put_chunk(http, node.url, str(uuid.uuid4()), 0, b"x" * 4096, 8 * 1024 * 1024)
                codes.append(r.status_code)
                if r.status_code == 429:
                    assert r.json()["error"] == "too_many_uploads"
        assert codes[:5] == [200] * 5 and set(codes[5:]) == {429}
        with http_client(honest, home) as http:
            assert upload(http, node.url, sealed(home, honest)).status_code == 200
    finally:
        node.stop()
    st = status(home)
    assert st["totals"]["partial_uploads"] == 5 and st["totals"]["partial_bytes"] == 5 * 4096
    table = central(home, "status")
    assert "5 uploads in progress" in table.stdout


def test_abandoned_uploads_expire(backend_url: str | None, tmp_path: Path) -> None:
    home = make_home(tmp_path / "c", database_url=backend_url)
    with_storage(home, partial_expiry_s=1)
    c = station_client(home, tmp_path / "ids", "uc-gone")
    node = CentralProcess(home)
    try:
        pid = str(uuid.uuid4())
        with http_client(c, home) as http:
            assert put_chunk(http, node.url, pid, 0, b"x" * 1000, 5000).status_code == 200
            assert http.get(f"{node.url}{packet_path(pid)}").json()["offset"] == 1000
            wait_for(  # the server's upkeep runs every few seconds
                lambda: http.get(f"{node.url}{packet_path(pid)}").json()["offset"] == 0,
                30,
                interval=0.2,
                what="the abandoned upload's expiry",
            )
    finally:
        node.stop()
    assert status(home)["totals"]["partial_uploads"] == 0


@contextlib.contextmanager
def small_disk(path: Path, size_mb: int) -> Iterator[Path]:
    path.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(path)], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _heartbeat(station: str) -> dict[str, Any]:
    return {
        "station_id": station,
        "sent_at": "2026-12-03T10:00:00Z",
        "counts": {"sealed": 1, "uploading": 0, "acked": 0},
        "oldest_pending_age_s": 1.0,
        "last_sync_at": None,
        "disk_free_bytes": 10**9,
        "devices": {},
        "version": "0.1.0",
        "cert_not_after": "",
        "audit_head": "",
        "audit_seq": 0,
    }


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs for the disk-full run needs root")
def test_disk_reserve_and_full_disk_answer_507(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", 24) as disk:
        home = make_home(disk / "central")
        with_storage(home, max_partials_per_station=100, disk_reserve_mb=8)
        flood = station_client(home, tmp_path / "ids", "uc-flood")
        other = station_client(home, tmp_path / "ids", "uc-other")
        node = CentralProcess(home)
        try:
            chunk = os.urandom(1024 * 1024)
            with http_client(flood, home) as http:
                for _ in range(30):  # 24 MB disk, 8 MB reserve: refused after about 15
                    r = put_chunk(http, node.url, str(uuid.uuid4()), 0, chunk, 8 * 1024 * 1024)
                    if r.status_code != 200:
                        break
                assert r.status_code == 507 and r.json()["error"] == "storage_full", r.text
            with http_client(other, home) as http:
                # the reserve keeps the rest of central working: heartbeats and whole packets
                assert http.post(f"{node.url}/v1/heartbeat", json=_heartbeat("uc-other")).status_code == 200
                assert upload(http, node.url, sealed(home, other)).status_code == 200
                assert shutil.disk_usage(disk).free > 6 * 1024 * 1024  # the flood never ate the reserve
                env = sealed(home, other)
                pid = parse(env).header.packet_id
                # now really full: fill what is left, then nothing may answer 500
                filler = disk / "filler"
                with open(filler, "wb") as fh, contextlib.suppress(OSError):
                    for _ in range(64):
                        fh.write(chunk)
                        fh.flush()
                hb = http.post(f"{node.url}/v1/heartbeat", json=_heartbeat("uc-other"))
                assert hb.status_code in (204, 507), hb.text
                if hb.status_code == 507:
                    assert hb.json()["error"] == "storage_full"
                chunk_r = put_chunk(http, node.url, pid, 0, env, len(env))
                assert chunk_r.status_code == 507 and chunk_r.json()["error"] == "storage_full"
                fin = finalise(http, node.url, pid, env)
                assert fin.status_code in (400, 507), fin.text  # incomplete or full: never 500
                filler.unlink()
                r = central(home, "status", "--json")  # ops view still works
                assert r.returncode == 0
        finally:
            node.stop()


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="a PostgreSQL on a small tmpfs needs root")
def test_full_postgresql_answers_507_not_500(tmp_path: Path) -> None:
    from tests.pg_support import missing_reason, start_small_cluster

    if missing_reason() is not None:
        pytest.skip(str(missing_reason()))
    cluster = start_small_cluster(48)  # the data volume fills; WAL lives elsewhere, as it should
    try:
        url = cluster.create_database()
        home = make_home(tmp_path / "c", database_url=url)
        with_storage(home, max_partials_per_station=200)
        flood = station_client(home, tmp_path / "ids", "uc-flood")
        other = station_client(home, tmp_path / "ids", "uc-other")
        node = CentralProcess(home)
        try:
            chunk = os.urandom(1024 * 1024)
            with http_client(flood, home) as http:
                for _ in range(80):  # 48 MB: full after a few dozen
                    r = put_chunk(http, node.url, str(uuid.uuid4()), 0, chunk, 8 * 1024 * 1024)
                    if r.status_code != 200:
                        break
                assert r.status_code == 507 and r.json()["error"] == "storage_full", r.text
            with http_client(other, home) as http:
                hb = http.post(f"{node.url}/v1/heartbeat", json=_heartbeat("uc-other"))
                assert hb.status_code in (204, 507), hb.text  # never 500
                if hb.status_code == 507:
                    assert hb.json()["error"] == "storage_full"
                env = sealed(home, other)
                r = put_chunk(http, node.url, parse(env).header.packet_id, 0, env, len(env))
                assert r.status_code in (200, 507), r.text
            assert central(home, "status", "--json").returncode == 0  # ops views still read
        finally:
            node.stop()
    finally:
        cluster.stop()
