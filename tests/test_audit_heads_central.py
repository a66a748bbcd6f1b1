"""Signed audit heads and chain segments checked by central (issue 13, finding 6, central's side).

The review's attack first: with the database key, edit an entry and recompute the whole chain (and,
holding the key, forge the station's own anchor too, so the station runs): `station audit verify`
passes and central used to see only a head that moved forward. Now the heartbeat carries the head
signed with the station's identity key and the entries since the head central holds; central checks
that the new head extends the old one and raises `audit_broken` when it does not."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from packetformat.auditchain import GENESIS, parse_segment, segment_problem, sign_head
from station.anchor import anchor_key, anchor_path, write_anchor
from station.audit import AuditLog, entry_hash
from station.home import StationHome
from station.keys import KeyStore
from station.store import Store
from sync.common import wire
from tests.central_support import CentralProcess, http_client, make_home, station_client
from tests.sync_live import Central, make_example, provision, running_central, station_cli

pytestmark = pytest.mark.timeout(300)


def _chain(tmp_path: Path, n: int) -> list[tuple[int, str, str, str, str, str]]:
    store = Store.open(tmp_path / "q.db", bytes(32), create=True)
    try:
        log = AuditLog(store)
        for i in range(n):
            log.append("test.event", n=i)
        return [
            (
                e.seq,
                repr(e.at),
                e.event,
                json.dumps(e.fields, sort_keys=True, separators=(",", ":")),
                e.prev,
                e.hash,
            )
            for e in log.entries()
        ]
    finally:
        store.close()


def test_a_segment_must_extend_the_head_central_holds(tmp_path: Path) -> None:
    chain = _chain(tmp_path, 6)
    assert parse_segment([list(e) for e in chain]) == chain
    head3, head6 = chain[2][5], chain[5][5]
    assert segment_problem(3, head3, chain[3:], 6, head6) is None
    assert segment_problem(3, head3, chain, 6, head6) is None  # an overlap that matches is fine
    assert segment_problem(0, GENESIS, chain, 6, head6) is None
    assert "skips" in (segment_problem(3, head3, chain[4:], 6, head6) or "")
    assert "no chain segment" in (segment_problem(3, head3, [], 6, head6) or "")
    # Entry #2 edited and everything after it recomputed: a valid chain that does not extend #3.
    forged, prev = [], GENESIS
    for seq, at, event, fields, _, _ in chain:
        fields = '{"n":99}' if seq == 2 else fields
        digest = entry_hash(prev, seq, float(at), event, fields)
        forged.append((seq, at, event, fields, prev, digest))
        prev = digest
    assert "rewritten" in (segment_problem(3, head3, forged, 6, forged[5][5]) or "")
    assert "does not extend" in (segment_problem(3, head3, forged[3:], 6, forged[5][5]) or "")
    assert "hash" in (segment_problem(3, head3, [(*chain[3][:5], "ab" * 32), *chain[4:]], 6, head6) or "")
    with pytest.raises(ValueError):
        parse_segment([[1, "x", "EVENT", "{}", GENESIS, GENESIS]])


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    with running_central(tmp_path_factory.mktemp("central") / "home") as c:
        yield c


def _alerts(central: Central, station_id: str) -> list[tuple[str, str]]:
    conn = sqlite3.connect(central.home / "central.db")
    try:
        return [
            (str(k), str(d))
            for k, d in conn.execute("SELECT kind, detail FROM alerts WHERE station_id = ?", (station_id,))
        ]
    finally:
        conn.close()


def _rewrite_with_the_key(home: Path) -> None:
    """The attacker holds the database key: edit #1, recompute the chain, forge the anchor too."""
    sh = StationHome(home)
    db_key = KeyStore(sh).db_key()
    with Store.open(sh.db_path, db_key) as store, store.transaction() as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        rows = conn.execute("SELECT seq, at, event, fields FROM audit ORDER BY seq").fetchall()
        prev = GENESIS
        for seq, at, event, fields in rows:
            if seq == 1:
                fields = json.loads(fields)
                fields["demo"] = 7
                fields = json.dumps(fields, sort_keys=True, separators=(",", ":"))
            digest = entry_hash(prev, int(seq), float(at), str(event), str(fields))
            conn.execute(
                "UPDATE audit SET fields = ?, prev = ?, hash = ? WHERE seq = ?", (fields, prev, digest, seq)
            )
            prev = digest
        conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", (f"{len(rows)}:{prev}",))
        path = anchor_path(store)
    path.unlink()
    write_anchor(path, anchor_key(db_key), len(rows), prev)


def test_central_notices_a_rewritten_history(central: Central, tmp_path: Path) -> None:
    example = make_example(tmp_path)
    home = tmp_path / "station"
    station_cli(home, "init", "--demo", "--station-id", "st-heads-01")
    provision(central, home, "st-heads-01")
    station_cli(home, "enroll", "--from-json", str(example))
    station_cli(home, "sync", "once")
    station_cli(home, "sync", "once")
    assert _alerts(central, "st-heads-01") == []  # honest heads extend each other

    _rewrite_with_the_key(home)
    assert station_cli(home, "audit", "verify").returncode == 0  # the station cannot tell
    station_cli(home, "enroll", "--from-json", str(example))  # a new head, past central's
    station_cli(home, "sync", "once")
    alerts = _alerts(central, "st-heads-01")
    assert alerts and alerts[0][0] == "audit_broken", alerts
    assert "does not extend the previous one: entry #5 does not extend #4" in alerts[0][1]


def test_a_head_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    home = make_home(tmp_path / "central")
    server = CentralProcess(home)
    try:
        client = station_client(home, tmp_path, "st-sig-01")
        other = station_client(home, tmp_path, "st-sig-02")
        beat = {
            "station_id": "st-sig-01",
            "sent_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "counts": {"sealed": 0, "uploading": 0, "acked": 0, "purged": 0},
            "oldest_pending_age_s": None,
            "last_sync_at": None,
            "disk_free_bytes": 10**9,
            "audit_seq": 1,
            "audit_head": "ab" * 32,
        }
        with http_client(client, home) as http:
            forged = wire.b64e(sign_head(other.key, "st-sig-01", 1, "ab" * 32))
            resp = http.post(f"{server.url}/v1/heartbeat", json={**beat, "audit_sig": forged})
            assert resp.status_code == 400 and "signature does not verify" in resp.text
            resp = http.post(f"{server.url}/v1/heartbeat", json={**beat, "audit_sig": "!!"})
            assert resp.status_code == 400
            good = wire.b64e(sign_head(client.key, "st-sig-01", 1, "ab" * 32))
            resp = http.post(f"{server.url}/v1/heartbeat", json={**beat, "audit_sig": good})
            assert resp.status_code == 200, resp.text
    finally:
        server.stop()
