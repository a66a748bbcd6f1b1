"""Envelopes kept in files beside the queue (``inline_max``): crash order, start-up clean-up, damage,
rollback, migration; and the default, where every envelope stays in the pages."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlcipher3

from station.errors import StoreError
from station.store import MIGRATIONS, SCHEMA_VERSION, Store, _split_sql

KEY = bytes(range(32))
FILES_OVER = 32 * 1024  # the stores here keep envelopes over 32 KiB in files (the file mode under test)
BIG = FILES_OVER + 40_000


def envelope(n: int, size: int = BIG) -> bytes:
    return random.Random(n).randbytes(size)


def packet_id(n: int) -> str:
    return f"01890000-0000-7000-8000-{n:012d}"


def add(store: Store, n: int, size: int = BIG) -> str:
    env = envelope(n, size)
    store.add_packet(packet_id(n), env, hashlib.sha256(env).hexdigest(), time.time() + n)
    return packet_id(n)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "queue.db", KEY, create=True, inline_max=FILES_OVER)
    yield s
    s.close()


def test_a_big_envelope_is_a_file_and_a_small_one_a_row(store: Store) -> None:
    big, small = add(store, 1), add(store, 2, size=1000)
    assert [f.name for f in store.envelope_dir.iterdir()] == [f"{big}.env"]
    assert (store.envelope_dir / f"{big}.env").stat().st_mode & 0o777 == 0o600
    assert store.envelope_dir.stat().st_mode & 0o777 == 0o700
    assert store.envelope(big) == envelope(1) and store.envelope(small) == envelope(2, 1000)
    assert store.packet(big).size == BIG


KILLED_BETWEEN_FILE_AND_ROW = textwrap.dedent(
    """
    import hashlib, os, signal, sys
    from pathlib import Path
    from station.store import Store
    store = Store.open(Path(sys.argv[1]), bytes(range(32)), inline_max=32 * 1024)
    env = os.urandom(int(sys.argv[2]))
    with store.transaction():
        store.add_packet(sys.argv[3], env, hashlib.sha256(env).hexdigest(), 1.0)
        assert (store.envelope_dir / (sys.argv[3] + ".env")).stat().st_size == len(env)
        os.kill(os.getpid(), signal.SIGKILL)  # the file is synced, the row never commits
    """
)


def test_a_crash_between_file_and_row_leaves_an_orphan_wiped_at_open(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    with Store.open(path, KEY, create=True, inline_max=FILES_OVER) as s:
        live = add(s, 1)
    orphan = packet_id(2)
    done = subprocess.run(
        [sys.executable, "-c", KILLED_BETWEEN_FILE_AND_ROW, str(path), str(BIG), orphan], timeout=60
    )
    assert done.returncode == -9
    folder = path.with_name("queue.envelopes")
    assert (folder / f"{orphan}.env").stat().st_size == BIG  # what the crash left
    (folder / "stray.tmp").write_bytes(b"x" * 10)
    with Store.open(path, KEY, inline_max=FILES_OVER) as s:
        assert sorted(f.name for f in folder.iterdir()) == [f"{live}.env"]
        assert s.counts()["sealed"] == 1 and s.envelope(live) == envelope(1)
        with pytest.raises(StoreError, match="No packet"):
            s.envelope(orphan)
        s.add_packet(orphan, envelope(2), hashlib.sha256(envelope(2)).hexdigest(), 2.0)  # id is free again
        assert s.envelope(orphan) == envelope(2)


def test_a_rolled_back_commit_leaves_no_file(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        add(store, 1)
        assert len(list(store.envelope_dir.iterdir())) == 1
        raise RuntimeError("validation failed after the write")
    assert list(store.envelope_dir.iterdir()) == [] and store.counts()["sealed"] == 0
    with pytest.raises(StoreError, match="already queued"), store.transaction():
        add(store, 2)
        add(store, 2)  # the duplicate aborts the whole transaction, its first file too
    assert list(store.envelope_dir.iterdir()) == []


def test_a_damaged_or_missing_file_is_reported_not_returned(store: Store) -> None:
    one, two = add(store, 1), add(store, 2)
    file = store.envelope_dir / f"{one}.env"
    data = bytearray(file.read_bytes())
    data[1000] ^= 1
    file.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="missing or damaged") as info:
        store.envelope(one)
    assert info.value.code == "store.envelope_damaged"
    (store.envelope_dir / f"{two}.env").unlink()
    with pytest.raises(StoreError, match="missing or damaged"):
        store.envelope(two)


def test_a_crash_after_the_purge_commit_is_wiped_at_open(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    with Store.open(path, KEY, create=True, inline_max=FILES_OVER) as s:
        pid = add(s, 1)
        s.record_ack(pid, b"receipt", acked_at=10.0)
        kept = (s.envelope_dir / f"{pid}.env").read_bytes()
        s.purge_acked(time.time())
    # as if the process died after the purge's commit, before it zeroed and unlinked the file
    (path.with_name("queue.envelopes") / f"{pid}.env").write_bytes(kept)
    with Store.open(path, KEY, inline_max=FILES_OVER) as s:
        assert list(s.envelope_dir.iterdir()) == [] and s.packet(pid).state == "purged"


def test_a_schema_1_queue_is_migrated_and_keeps_every_envelope(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    conn = sqlcipher3.connect(str(path), isolation_level=None)
    conn.execute(f"PRAGMA key = \"x'{KEY.hex()}'\"")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN")
    for statement in _split_sql(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    for n, state in ((1, "sealed"), (2, "acked")):
        env = envelope(n)
        conn.execute(
            "INSERT INTO packets (packet_id, created_at, state, size, sha256, envelope, receipt, acked_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                packet_id(n),
                float(n),
                state,
                len(env),
                hashlib.sha256(env).hexdigest(),
                env,
                b"r" if state == "acked" else None,
                1.0 if state == "acked" else None,
            ),
        )
    conn.execute("COMMIT")
    conn.close()
    with Store.open(path, KEY, inline_max=FILES_OVER) as s:
        assert s.schema_version() == SCHEMA_VERSION == 3
        assert s.envelope(packet_id(1)) == envelope(1) and s.envelope(packet_id(2)) == envelope(2)
        with pytest.raises(StoreError, match="cannot change state"):
            s.mark_uploading(packet_id(2))
        with s.transaction() as conn, pytest.raises(sqlcipher3.IntegrityError):
            conn.execute("DELETE FROM packets")
        with s.transaction() as conn, pytest.raises(sqlcipher3.IntegrityError, match="only released"):
            conn.execute(
                "UPDATE packets SET in_file = 1, envelope = NULL WHERE packet_id = ?", (packet_id(1),)
            )
        assert s.purge_acked(time.time()) == [packet_id(2)]
        new = add(s, 3)
        assert s.envelope(new) == envelope(3) and s.counts() == {
            "sealed": 2,
            "uploading": 0,
            "acked": 0,
            "purged": 1,
        }


def test_by_default_every_envelope_stays_in_the_pages(tmp_path: Path) -> None:
    with Store.open(tmp_path / "queue.db", KEY, create=True) as s:
        pid = add(s, 1, size=500_000)
        assert list(s.envelope_dir.iterdir()) == [] and s.envelope(pid) == envelope(1, 500_000)
    with Store.open(tmp_path / "queue.db", KEY, inline_max=FILES_OVER) as s:
        assert s.envelope(pid) == envelope(1, 500_000)  # either setting reads what the other wrote
        filed = add(s, 2)
    with Store.open(tmp_path / "queue.db", KEY) as s:
        assert s.envelope(filed) == envelope(2) and len(list(s.envelope_dir.iterdir())) == 1
