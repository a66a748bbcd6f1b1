"""Central killed with SIGKILL in the middle of uploads, then restarted: nothing lost, nothing twice.

Every packet whose receipt reached the client before the kill gets the identical receipt after the
restart; every packet ends stored exactly once; every metadata row has its blob and the blob's
hash matches; no packet row exists without its blob.
"""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import threading
from pathlib import Path

import httpx
import pytest

from packetformat.packet import parse
from sync.central.home import CentralHome
from tests.central_support import (
    CentralProcess,
    Client,
    http_client,
    make_home,
    sealed,
    station_client,
    upload,
)


def _upload_until_killed(
    home: CentralHome,
    client: Client,
    url: str,
    envs: list[bytes],
    receipts: dict[str, str],
    started: threading.Event,
) -> None:
    with http_client(client, home) as http:
        for env in envs:
            started.set()
            try:
                r = upload(http, url, env, chunk=2048)
            except httpx.TransportError:
                return
            if r.status_code == 200:
                receipts[parse(env).header.packet_id] = r.json()["receipt_b64"]


def _check_consistent(home: CentralHome, expected: dict[str, bytes]) -> None:
    conn = sqlite3.connect(home.db)
    try:
        rows = conn.execute("SELECT packet_id, sha256, size FROM packets").fetchall()
    finally:
        conn.close()
    assert sorted(r[0] for r in rows) == sorted(expected)  # exactly once, nothing missing
    for pid, sha, size in rows:
        blob = home.blobs / sha[:2] / sha
        data = blob.read_bytes()
        assert (
            len(data) == size
            and hashlib.sha256(data).hexdigest() == sha == hashlib.sha256(expected[pid]).hexdigest()
        )


@pytest.mark.parametrize("kill_after", [3, 11])
def test_kill9_mid_upload_then_restart_exactly_once(tmp_path: Path, kill_after: int) -> None:
    home = make_home(tmp_path / "central")
    client = station_client(home, tmp_path / "ids", "uc-k")
    envs = [sealed(home, client, doc={"n": i, "pad": bytes(9000 + 37 * i)}) for i in range(20)]
    expected = {parse(e).header.packet_id: e for e in envs}
    receipts: dict[str, str] = {}
    server = CentralProcess(home)
    started = threading.Event()
    worker = threading.Thread(
        target=_upload_until_killed, args=(home, client, server.url, envs, receipts, started), daemon=True
    )
    worker.start()
    assert started.wait(timeout=30)
    # wait (bounded) until some packets are in, then kill -9 while the next ones are in flight
    for _ in range(600):
        if len(receipts) >= kill_after:
            break
        worker.join(timeout=0.05)
    server.stop(signal.SIGKILL)
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert len(receipts) < len(envs), "the kill came too late to test anything"
    before = dict(receipts)
    restarted = CentralProcess(home)
    try:
        with http_client(client, home) as http:
            for env in envs:
                r = upload(http, restarted.url, env, chunk=4096)
                assert r.status_code == 200, r.text
                pid = parse(env).header.packet_id
                if pid in before:
                    assert r.json()["receipt_b64"] == before[pid]  # the same receipt after the crash
    finally:
        restarted.stop()
    _check_consistent(home, expected)
