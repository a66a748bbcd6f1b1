"""The ``Storage`` protocol, run on both backends: embedded SQLite and a real PostgreSQL cluster.

Resumable chunks and their offsets, first-finalise-wins under a thread race, packets keyed by
(station, packet id), the cap and expiry of unfinished uploads, heartbeats and audit alerts,
totals, envelope integrity.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from sync.central.storage import (
    OffsetMismatch,
    SizeMismatch,
    Storage,
    StoredPacket,
    TooManyUploads,
    UploadLimits,
)
from sync.common.wire import Heartbeat


def _packet(
    station: str, pid: str, envelope: bytes, *, received_at: str = "2026-12-03T10:00:00Z"
) -> StoredPacket:
    return StoredPacket(
        pid,
        station,
        hashlib.sha256(envelope).hexdigest(),
        len(envelope),
        received_at,
        b"receipt:" + station.encode() + pid.encode() + received_at.encode(),
        b"der-of-" + station.encode(),
    )


def _heartbeat(station: str, seq: int, head: str) -> Heartbeat:
    return Heartbeat(
        station_id=station,
        sent_at="2026-12-03T10:00:00Z",
        counts={"sealed": 1, "uploading": 0, "acked": 3},
        oldest_pending_age_s=12.5,
        last_sync_at=None,
        disk_free_bytes=10**9,
        version="0.1.0",
        audit_seq=seq,
        audit_head=head,
    )


def _pid() -> str:
    return str(uuid.uuid4())


def test_chunks_resume_at_the_stored_offset(storage: Storage) -> None:
    pid, data = _pid(), bytes(range(256)) * 40
    assert storage.upload_offset("uc-a", pid) == 0
    assert storage.append_chunk("uc-a", pid, 0, data[:4000], len(data)) == 4000
    assert storage.upload_offset("uc-a", pid) == 4000
    with pytest.raises(OffsetMismatch) as wrong:
        storage.append_chunk("uc-a", pid, 1000, data[1000:2000], len(data))
    assert wrong.value.current == 4000
    with pytest.raises(SizeMismatch):
        storage.append_chunk("uc-a", pid, 4000, data[4000:], len(data) + 5)
    with pytest.raises(SizeMismatch):
        storage.append_chunk("uc-a", pid, 4000, data[4000:] + b"xx", len(data))
    assert storage.append_chunk("uc-a", pid, 4000, data[4000:], len(data)) == len(data)
    assert storage.partial("uc-a", pid) == data
    assert storage.upload_offset("uc-b", pid) == 0 and storage.partial("uc-b", pid) == b""  # per station
    [p] = storage.partials()
    assert (p.station_id, p.packet_id, p.size, p.received) == ("uc-a", pid, len(data), len(data))
    assert storage.totals()["partial_uploads"] == 1 and storage.totals()["partial_bytes"] == len(data)
    storage.discard_partial("uc-a", pid)
    assert storage.upload_offset("uc-a", pid) == 0 and storage.partials() == []


def test_restart_with_another_size_from_zero(storage: Storage) -> None:
    pid = _pid()
    storage.append_chunk("uc-a", pid, 0, b"a" * 10, 100)
    assert storage.append_chunk("uc-a", pid, 0, b"b" * 20, 50) == 20
    assert storage.partial("uc-a", pid) == b"b" * 20


def test_commit_stores_once_and_first_wins(storage: Storage) -> None:
    pid, env = _pid(), b"envelope bytes " * 100
    storage.append_chunk("uc-a", pid, 0, env, len(env))
    first = _packet("uc-a", pid, env)
    assert storage.commit_packet(first, env) is first
    assert storage.partials() == []  # the finished upload is gone
    later = _packet("uc-a", pid, env, received_at="2026-12-04T00:00:01Z")  # another day: still once
    assert storage.commit_packet(later, env) == first
    assert storage.stored("uc-a", pid) == first
    assert storage.envelope(first.sha256) == env
    assert storage.totals()["packets"] == 1 and storage.totals()["bytes"] == len(env)
    with pytest.raises(ValueError):
        storage.commit_packet(replace(first, packet_id=_pid()), env + b"x")


def test_concurrent_commits_of_one_packet_agree(storage: Storage) -> None:
    """Eight threads finalise the same packet with different receipts: one row, one receipt for all."""
    for _round in range(5):
        pid, env = _pid(), b"race " * 2000
        candidates = [
            _packet("uc-r", pid, env, received_at=f"2026-12-0{1 + i % 2}T23:59:5{i}Z") for i in range(8)
        ]
        barrier = threading.Barrier(len(candidates))

        def commit(p: StoredPacket, barrier: threading.Barrier = barrier, env: bytes = env) -> bytes:
            barrier.wait(timeout=10)
            return storage.commit_packet(p, env).receipt

        with ThreadPoolExecutor(len(candidates)) as pool:
            receipts = list(pool.map(commit, candidates))
        assert len(set(receipts)) == 1
        stored = storage.stored("uc-r", pid)
        assert stored is not None and stored.receipt == receipts[0]
        assert len(storage.find_packet(pid)) == 1


def test_packets_are_keyed_by_station(storage: Storage) -> None:
    """Issue 13 finding 4 at the storage level: another station's packet under A's id leaves A's alone."""
    pid = _pid()
    env_a, env_b = b"A's real packet" * 50, b"B squats on A's id" * 50
    a = _packet("uc-a", pid, env_a)
    b = _packet("uc-b", pid, env_b)
    assert storage.commit_packet(b, env_b) is b  # the squatter first
    assert storage.commit_packet(a, env_a) is a  # the victim is stored all the same
    assert storage.stored("uc-a", pid) == a and storage.stored("uc-b", pid) == b
    assert {p.station_id for p in storage.find_packet(pid)} == {"uc-a", "uc-b"}
    assert storage.envelope(a.sha256) == env_a


def test_unfinished_uploads_are_capped_per_station(backend_url: str | None, tmp_path: object) -> None:
    """Finding 5: a station cannot open more than its cap of partial uploads; others still can."""
    store = _limited(backend_url, tmp_path, UploadLimits(max_partials_per_station=3))
    try:
        pids = [_pid() for _ in range(4)]
        for pid in pids[:3]:
            store.append_chunk("uc-a", pid, 0, b"x" * 100, 1000)
        with pytest.raises(TooManyUploads):
            store.append_chunk("uc-a", pids[3], 0, b"x" * 100, 1000)
        assert store.append_chunk("uc-a", pids[0], 100, b"y" * 100, 1000) == 200  # resuming is fine
        assert store.append_chunk("uc-b", pids[3], 0, b"x" * 100, 1000) == 100  # another station is fine
        store.discard_partial("uc-a", pids[1])
        assert store.append_chunk("uc-a", pids[3], 0, b"x" * 100, 1000) == 100
    finally:
        store.close()


def test_abandoned_uploads_expire(storage: Storage) -> None:
    old, fresh = _pid(), _pid()
    storage.append_chunk("uc-a", old, 0, b"x" * 10, 100)
    cut = time.time() + 0.001
    deadline = time.monotonic() + 5
    while time.time() <= cut and time.monotonic() < deadline:
        pass  # the clock must move past ``cut`` (sub-millisecond)
    storage.append_chunk("uc-a", fresh, 0, b"x" * 10, 100)
    assert storage.expire_partials(cut) == 1
    assert [p.packet_id for p in storage.partials()] == [fresh]
    assert storage.upload_offset("uc-a", old) == 0 and storage.partial("uc-a", old) == b""
    assert storage.maintain(time.time())["partials_expired"] == 0  # default expiry: days


def test_heartbeats_and_audit_alerts(storage: Storage) -> None:
    assert storage.record_heartbeat(_heartbeat("uc-h", 5, "aa" * 32), 1000.0) == []
    assert storage.record_heartbeat(_heartbeat("uc-h", 6, "bb" * 32), 1001.0) == []
    forked = storage.record_heartbeat(_heartbeat("uc-h", 6, "cc" * 32), 1002.0)
    assert [a.kind for a in forked] == ["audit_broken"]
    rewound = storage.record_heartbeat(_heartbeat("uc-h", 2, "dd" * 32), 1003.0)
    assert [a.kind for a in rewound] == ["audit_rewound"]
    storage.add_alert("uc-h", "conflict", "detail", 1004.0)
    assert [a.kind for a in storage.alerts()] == ["audit_broken", "audit_rewound", "conflict"]
    env = b"p" * 10
    storage.commit_packet(_packet("uc-h", _pid(), env), env)
    storage.touch("uc-t", 2000.0)
    rows = {r.station_id: r for r in storage.stations()}
    assert rows["uc-h"].last_seen == 1003.0 and rows["uc-h"].packets_stored == 1
    assert rows["uc-h"].heartbeat is not None and rows["uc-h"].heartbeat["counts"]["acked"] == 3
    assert rows["uc-t"].last_seen == 2000.0 and rows["uc-t"].heartbeat is None
    assert storage.ready()["schema"] >= 1


def test_damaged_envelope_is_reported(storage: Storage) -> None:
    env = b"good bytes" * 10
    pkt = _packet("uc-d", _pid(), env)
    storage.commit_packet(pkt, env)
    with pytest.raises((FileNotFoundError, ValueError)):
        storage.envelope("0" * 64)
    with pytest.raises(ValueError):
        storage.envelope("not-a-digest")


def _limited(url: str | None, tmp: object, limits: UploadLimits) -> Storage:
    from pathlib import Path

    from sync.central.storage import SqliteStorage

    assert isinstance(tmp, Path)
    if url is None:
        return SqliteStorage(tmp / "c.db", tmp / "blobs", tmp / "uploads", limits=limits)
    from sync.central.database import connect_pool
    from sync.central.pg_storage import PgStorage

    return PgStorage(connect_pool(url, max_size=4), limits=limits)


def test_packets_received_in_a_time_range(storage: Storage) -> None:
    """``central export --since/--until``: [since, until) by receipt time, across days, ordered."""
    times = ["2026-11-30T23:59:59Z", "2026-12-01T00:00:00Z", "2026-12-01T12:00:00Z", "2026-12-02T00:00:00Z"]
    stored = []
    for i, when in enumerate(times):
        env = f"packet {i}".encode() * 40
        p = _packet(f"uc-{i % 2}", _pid(), env, received_at=when)
        storage.commit_packet(p, env)
        stored.append((p.station_id, p.packet_id))
    assert storage.packets_received("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z") == stored[1:3]
    assert storage.packets_received("2026-11-01T00:00:00Z", "9999-12-31T23:59:59Z") == stored
    assert storage.packets_received("2026-12-03T00:00:00Z", "2026-12-04T00:00:00Z") == []


def test_commit_keeps_the_verified_bytes_even_if_the_upload_restarts(storage: Storage) -> None:
    """Finalise stores what was read and checked: an upload restarted in between cannot swap it."""
    pid = _pid()
    env = bytes(range(256)) * 30
    for off in range(0, len(env), 3000):
        storage.append_chunk("uc-k", pid, off, env[off : off + 3000], len(env))
    kept = storage.partial("uc-k", pid)
    assert kept == env
    other = b"z" * 5000  # the station starts over with another size before the commit
    assert storage.append_chunk("uc-k", pid, 0, other, len(other)) == len(other)
    pkt = _packet("uc-k", pid, env)
    assert storage.commit_packet(pkt, kept, verified=True) is pkt
    assert storage.envelope(pkt.sha256) == env
    assert storage.partials() == []  # the restarted upload went with the commit


def test_postgresql_keeps_the_chunks_as_the_envelope(storage: Storage) -> None:
    """Issue 12: on PostgreSQL the uploaded chunks become the envelope (not written a second time),
    and unfinished uploads that are dropped take their chunks with them."""
    from sync.central.pg_storage import PgStorage

    if not isinstance(storage, PgStorage):
        pytest.skip("the directory store keeps its own copy")

    def chunks() -> int:
        with storage.pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM upload_chunks").fetchone()
        return int(row[0]) if row else 0

    pid, env = _pid(), b"sealed " * 1000
    base = chunks()
    for off in range(0, len(env), 2000):
        storage.append_chunk("uc-c", pid, off, env[off : off + 2000], len(env))
    pkt = _packet("uc-c", pid, env)
    storage.commit_packet(pkt, storage.partial("uc-c", pid), verified=True)
    with storage.pool.connection() as conn:
        row = conn.execute("SELECT data IS NULL, upload_id FROM envelopes WHERE sha256=%s", (pkt.sha256,))
        got = row.fetchone()
    assert got is not None and got[0] is True and got[1] is not None
    assert chunks() == base + 4 and storage.envelope(pkt.sha256) == env
    # bytes not read from this upload (another caller's) are stored in the row, and nothing leaks
    pid2, env2 = _pid(), b"other " * 500
    storage.append_chunk("uc-c", pid2, 0, env2, len(env2))
    storage.commit_packet(_packet("uc-c", pid2, env2), env2)
    assert chunks() == base + 4 and storage.envelope(hashlib.sha256(env2).hexdigest()) == env2
    # dropped and expired uploads take their chunks
    gone, old = _pid(), _pid()
    storage.append_chunk("uc-c", gone, 0, b"x" * 10, 100)
    storage.append_chunk("uc-c", old, 0, b"x" * 10, 100)
    storage.append_chunk("uc-c", old, 10, b"x" * 10, 100)
    storage.discard_partial("uc-c", gone)
    assert storage.expire_partials(time.time() + 1) == 1
    assert chunks() == base + 4


def test_heartbeat_answer_names_policy_roster_and_outcomes(storage: Storage) -> None:
    from sync.central.storage import OutcomeRow, PolicyRow

    assert storage.heartbeat_answer("uc-v") == (0, 0, 0)
    storage.policy_add(PolicyRow(3, "{}", 1.0, "ops"))
    seq = storage.roster_set("uc-v", "op-1", "active", 2.0)
    storage.roster_set("uc-w", "op-2", "active", 3.0)  # another station's roster is not this one's
    out = storage.outcome_set(
        OutcomeRow(0, _pid(), "uc-v", "accepted", "", "", "2026-12-03T10:00:00Z", "backoffice:x")
    )
    assert storage.heartbeat_answer("uc-v") == (3, seq, out.seq)
    assert storage.heartbeat_answer("uc-w")[:2] == (3, seq + 1)
    assert storage.heartbeat_answer("uc-w")[2] == 0


def test_first_heartbeat_of_a_known_station_keeps_its_registry_row(storage: Storage) -> None:
    storage.touch("uc-f", 10.0)  # a row exists already (a packet, the registry) without a heartbeat
    assert storage.record_heartbeat(_heartbeat("uc-f", 4, "ab" * 32), 20.0) == []
    assert storage.record_heartbeat(_heartbeat("uc-f", 4, "cd" * 32), 21.0)[0].kind == "audit_broken"
    assert storage.record_heartbeat(_heartbeat("uc-new", 1, "ef" * 32), 22.0) == []
    rows = {r.station_id: r for r in storage.stations()}
    assert rows["uc-f"].last_seen == 21.0 and rows["uc-new"].last_seen == 22.0
