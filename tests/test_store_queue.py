"""The encrypted queue: states, receipts, migrations, two processes, retention leaves no bytes behind."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import time
from pathlib import Path

import pytest
import sqlcipher3

from station.errors import StoreError
from station.store import SCHEMA_VERSION, Store
from tests.sqlcipher_pages import database_plaintext, wal_plaintext

KEY = bytes(range(32))
FILES_OVER = 32 * 1024  # this store keeps envelopes over 32 KiB in files, the rest in its pages


def envelope(n: int, size: int = 20_000) -> bytes:
    return random.Random(n).randbytes(size)


def add(store: Store, n: int, size: int = 20_000, created: float | None = None) -> str:
    env = envelope(n, size)
    pid = f"01890000-0000-7000-8000-{n:012d}"
    when = created if created is not None else time.time() + n
    store.add_packet(pid, env, hashlib.sha256(env).hexdigest(), when)
    return pid


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "queue.db", KEY, create=True, inline_max=FILES_OVER)
    yield s
    s.close()


def test_states_oldest_first_and_receipts(store: Store) -> None:
    ids = [add(store, n, created=1000.0 + n) for n in (3, 1, 2)]
    assert [p.packet_id for p in store.pending()] == sorted(ids, key=lambda i: int(i[-3:]))
    assert store.counts() == {"sealed": 3, "uploading": 0, "acked": 0, "purged": 0}
    first = store.pending()[0].packet_id
    store.mark_uploading(first)
    store.record_ack(first, b"receipt-1", acked_at=2000.0)
    store.record_ack(first, b"receipt-2", acked_at=2001.0)  # a repeated ack keeps the first receipt
    assert store.receipt(first) == b"receipt-1"
    assert store.packet(first).state == "acked"
    assert store.counts()["acked"] == 1 and store.oldest_pending_created_at() == 1002.0
    assert store.envelope(first) == envelope(1)


def test_illegal_transitions_and_immutability_are_refused(store: Store) -> None:
    pid = add(store, 1)
    store.record_ack(pid, b"r", acked_at=1.0)
    with pytest.raises(StoreError, match="cannot change state"):
        store.mark_uploading(pid)
    with pytest.raises(StoreError, match="already queued"):
        add(store, 1)
    with store.transaction() as conn, pytest.raises(sqlcipher3.IntegrityError):
        conn.execute("UPDATE packets SET sha256 = ? WHERE packet_id = ?", ("0" * 64, pid))
    with store.transaction() as conn, pytest.raises(sqlcipher3.IntegrityError):
        conn.execute("DELETE FROM packets")
    assert store.counts()["acked"] == 1


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        add(store, 1)
        raise RuntimeError("power cut stand-in")
    assert store.counts()["sealed"] == 0


def test_settings_and_file_mode(tmp_path: Path, store: Store) -> None:
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    assert (tmp_path / "queue.db").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "queue.db").read_bytes().startswith(b"SQLite format 3")
    assert store.schema_version() == SCHEMA_VERSION


def test_old_schema_is_migrated_and_newer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlcipher3.connect(str(path))
    conn.execute(f"PRAGMA key = \"x'{KEY.hex()}'\"")
    conn.execute("CREATE TABLE placeholder (x)")
    conn.commit()
    conn.close()
    with Store.open(path, KEY) as s:
        assert s.schema_version() == SCHEMA_VERSION and s.counts()["sealed"] == 0
    conn = sqlcipher3.connect(str(path))
    conn.execute(f"PRAGMA key = \"x'{KEY.hex()}'\"")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer version"):
        Store.open(path, KEY)


def test_retention_purge_leaves_no_byte_of_the_envelope(tmp_path: Path, store: Store) -> None:
    big = add(store, 1, size=60_000)  # over FILES_OVER: its own file beside the database
    small = add(store, 2, size=300)  # inside a b-tree page
    middle = add(store, 4, size=20_000)  # overflow pages
    kept = add(store, 3, size=20_000)
    kept_file = add(store, 5, size=50_000)
    path = tmp_path / "queue.db"
    big_file = store.envelope_dir / f"{big}.env"
    assert big_file.read_bytes() == envelope(1, 60_000) and FILES_OVER < 50_000
    link = tmp_path / "same-inode"  # a second name for the file's blocks: what a purge leaves in them
    os.link(big_file, link)
    # The helper really decrypts: before the purge the envelopes are visible to it.
    seen = database_plaintext(path, KEY) + wal_plaintext(Path(f"{path}-wal"), KEY)
    assert envelope(4, 20_000)[10_000:10_100] in seen and envelope(2, 300)[:200] in seen
    assert envelope(1, 60_000)[:100] not in seen  # a file's envelope is not also in the pages
    for pid in (big, small, middle):
        store.record_ack(pid, b"r1", acked_at=100.0)
    store.record_ack(kept, b"r3", acked_at=time.time())
    store.record_ack(kept_file, b"r5", acked_at=time.time())
    assert sorted(store.purge_acked(time.time() - 7 * 86400)) == sorted([big, small, middle])
    store.checkpoint()
    plain = database_plaintext(path, KEY) + wal_plaintext(Path(f"{path}-wal"), KEY)
    assert not big_file.exists()
    assert link.read_bytes() == bytes(60_000)  # zeroed in place before the unlink
    files = b"".join(f.read_bytes() for f in store.envelope_dir.iterdir())
    assert files == envelope(5, 50_000)  # only the kept file's envelope is left in the folder
    for n, size in ((1, 60_000), (2, 300), (4, 20_000)):
        env = envelope(n, size)
        for i in range(0, len(env) - 32, 16):
            run = env[i : i + 32]
            assert run not in plain and run not in files, f"bytes of purged envelope {n} remain at {i}"
    assert envelope(3, 20_000)[:100] in plain  # the unpurged ones are still there
    assert store.envelope(kept_file) == envelope(5, 50_000)
    assert store.counts() == {"sealed": 0, "uploading": 0, "acked": 2, "purged": 3}
    assert store.receipt(big) == b"r1"  # proof of delivery stays
    for pid in (big, small):
        with pytest.raises(StoreError, match="purged"):
            store.envelope(pid)


def _writer(path: str, base: int, count: int) -> None:
    s = Store.open(Path(path), KEY, busy_timeout_ms=30_000)
    for n in range(base, base + count):
        add(s, n, size=2000)
        s.meta_set(f"writer-{base}", str(n))
    s.close()


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    Store.open(path, KEY, create=True).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), base, 40)) for base in (1000, 2000)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(90)
        assert p.exitcode == 0
    with Store.open(path, KEY) as s:
        assert s.counts()["sealed"] == 80
        assert s.meta_get("writer-1000") == "1039" and s.meta_get("writer-2000") == "2039"
