"""The station registry through the real CLI and a real ``central serve``: register, move, retire.

A retired station is refused at the TLS handshake (its certificates are on the CRL), gets no new
token, cannot enroll with a token issued before, and drops out of every alert.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from sync.central.home import CentralHome
from sync.common.wire import packet_path
from sync.pki.ca import new_ec_key
from tests.central_support import (
    REPO,
    TEST_LOCATION,
    CentralProcess,
    Client,
    csr_for,
    http_client,
    make_home,
    refused,
    write_identity,
)
from tests.test_central_server import heartbeat


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


def central(home: CentralHome, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.central", "--home", str(home.root), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def token(home: CentralHome, station_id: str, *location: str) -> str:
    out = central(home, "token", "new", "--station", station_id, *location, "--ttl", "1h")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def enroll(home: CentralHome, server: CentralProcess, tmp: Path, station_id: str, tok: str) -> Client:
    key = new_ec_key()
    body = {"token": tok, "station_id": station_id, "csr_pem": csr_for(key, station_id)}
    with http_client(None, home) as http:
        r = http.post(f"{server.enroll_url}/v1/enroll", json=body)
    assert r.status_code == 200, r.text
    cert = x509.load_pem_x509_certificate(r.json()["certificate_pem"].encode())
    return write_identity(tmp, station_id, key, cert, station_id)


def test_register_move_retire(home: CentralHome, server: CentralProcess, tmp_path: Path) -> None:
    where = (
        "--district",
        "Lahore",
        "--tehsil",
        "Model Town",
        "--union-council",
        "UC-128",
        "--label",
        "counter 2",
    )
    station = enroll(home, server, tmp_path, "uc-r1", token(home, "uc-r1", *where))
    with http_client(station, home) as http:
        assert http.post(f"{server.url}/v1/heartbeat", json=heartbeat("uc-r1", 1, "aa")).status_code == 200

    listed = central(home, "station", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.startswith("uc-r1"))
    assert (
        "Lahore" in line
        and "Model Town" in line
        and "UC-128" in line
        and "counter 2" in line
        and " ok " in line
    )
    shown = json.loads(central(home, "station", "show", "uc-r1", "--json").stdout)
    assert shown["district"] == "Lahore" and shown["state"] == "ok" and shown["cert_not_after"] is not None
    assert shown["certificate_serial"] == format(station.cert.serial_number, "x")
    text = central(home, "station", "show", "uc-r1").stdout
    assert "union council   UC-128" in text and "alerts          none" in text

    # a second token for a registered station needs no location; a new station does
    assert token(home, "uc-r1")
    unknown = central(home, "token", "new", "--station", "uc-r9", "--ttl", "1h")
    assert unknown.returncode == 1 and "error" in unknown.stderr and "--district" in unknown.stderr
    half = central(home, "token", "new", "--station", "uc-r9", "--district", "Lahore")
    assert half.returncode == 2 and "together" in half.stderr
    bad = central(home, "token", "new", "--station", "uc-r9", *TEST_LOCATION[:-1], "<b>x</b>")
    assert bad.returncode == 1 and "not allowed" in bad.stderr

    moved = central(
        home,
        "station",
        "move",
        "uc-r1",
        "--district",
        "Kasur",
        "--tehsil",
        "Chunian",
        "--union-council",
        "UC-7",
    )
    assert moved.returncode == 0, moved.stderr
    kasur = json.loads(central(home, "status", "--district", "KASUR", "--all", "--json").stdout)
    assert [s["station_id"] for s in kasur["stations"]] == ["uc-r1"] and kasur["summary"]["stations"] == 1
    assert kasur["stations"][0]["tehsil"] == "Chunian" and kasur["stations"][0]["label"] == ""

    early = token(home, "uc-r1")  # issued before retirement: must not bring the station back
    retired = central(home, "station", "retire", "uc-r1", "--reason", "building closed", "--yes")
    assert retired.returncode == 0, retired.stderr
    assert "1 certificate(s) revoked" in retired.stdout
    deadline = time.monotonic() + 20
    while not refused(station, home, f"{server.url}{packet_path('0' * 8 + '-0000-7000-8000-' + '0' * 12)}"):
        assert time.monotonic() < deadline, "a retired station is still let in"
    again = central(home, "token", "new", "--station", "uc-r1", *TEST_LOCATION)
    assert again.returncode == 1 and "retired" in again.stderr
    key = new_ec_key()
    with http_client(None, home) as http:
        r = http.post(
            f"{server.enroll_url}/v1/enroll",
            json={"token": early, "station_id": "uc-r1", "csr_pem": csr_for(key, "uc-r1")},
        )
    assert r.status_code == 403 and "retired" in r.json()["message"]
    status = json.loads(central(home, "status", "--all", "--json").stdout)
    row = next(s for s in status["stations"] if s["station_id"] == "uc-r1")
    assert row["state"] == "retired" and row["alerts"] == []
    assert status["summary"]["by_state"]["retired"] == 1
    stale = json.loads(central(home, "status", "--stale", "1s", "--all", "--json").stdout)
    assert "uc-r1" not in {s["station_id"] for s in stale["stations"]}
    twice = central(home, "station", "retire", "uc-r1", "--yes")
    assert twice.returncode == 1 and "already retired" in twice.stderr
    assert central(home, "station", "move", "uc-r1", *TEST_LOCATION).returncode == 1


def test_status_summary_filters_and_errors(home: CentralHome, server: CentralProcess) -> None:
    for i in range(3):
        token(home, f"uc-s{i}", "--district", "Okara", "--tehsil", "Depalpur", "--union-council", f"UC-{i}")
    out = central(home, "status")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("stations ") and "new" in lines[0]
    assert lines[1].startswith("packets today ") and lines[2].startswith("oldest unsynced ")
    assert lines[3].startswith("alerts ")
    okara = json.loads(central(home, "status", "--district", "Okara", "--all", "--json").stdout)
    assert okara["summary"]["by_state"]["new"] == 3 and okara["total"] == 3
    assert json.loads(central(home, "status", "--alert", "silent", "--json").stdout)["total"] == 0
    wrong = central(home, "status", "--alert", "sleepy")
    assert wrong.returncode == 2 and "sleepy" in wrong.stderr
    assert central(home, "status", "--stale", "soon").returncode == 2
    missing = central(home, "station", "show", "uc-nobody")
    assert (
        missing.returncode == 1
        and missing.stderr.strip().startswith("error")
        and "station list" in missing.stderr
    )
    limited = central(home, "status", "--all", "--limit", "1")
    assert "--limit 0 for all" in limited.stdout
