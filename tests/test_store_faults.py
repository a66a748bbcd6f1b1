"""Wrong key, missing key, tampered or truncated database, and power loss (kill -9) mid-commit.

In every refusal case the station stops with a clear StoreError/KeyProblem and not one byte on disk
changes; after a kill -9 the queue opens, passes its integrity check and holds exactly the packets
whose commit returned.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from station.errors import KeyProblem, StoreError
from station.home import StationHome
from station.session import init_station, open_station
from station.store import Store

KEY = bytes(range(32))


def snapshot(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def queue(tmp_path: Path) -> Path:
    path = tmp_path / "queue.db"
    with Store.open(path, KEY, create=True) as s:
        for n in range(5):
            env = os.urandom(3000)
            s.add_packet(f"p{n}", env, hashlib.sha256(env).hexdigest(), float(n))
    return path


def test_wrong_key_changes_nothing(queue: Path) -> None:
    before = snapshot(queue.parent)
    with pytest.raises(StoreError, match="does not open with this station's key") as err:
        Store.open(queue, bytes(32))
    assert err.value.code == "store.wrong_key"
    assert snapshot(queue.parent) == before


@pytest.mark.parametrize("where", [0, 100, 4096 + 200, -200])
def test_tampered_page_is_refused_and_left_alone(queue: Path, where: int) -> None:
    data = bytearray(queue.read_bytes())
    data[where] ^= 0x01
    queue.write_bytes(bytes(data))
    before = snapshot(queue.parent)
    with pytest.raises(StoreError) as err:
        Store.open(queue, KEY)
    assert err.value.code in ("store.tampered", "store.wrong_key")
    assert "Nothing was changed" in err.value.message
    assert snapshot(queue.parent) == before


def test_truncated_database_is_refused_and_left_alone(queue: Path) -> None:
    data = queue.read_bytes()
    queue.write_bytes(data[: len(data) // 2 + 100])
    before = snapshot(queue.parent)
    with pytest.raises(StoreError, match="truncated or damaged"):
        Store.open(queue, KEY)
    queue.write_bytes(data[: len(data) - 4096])  # whole pages missing: caught by the integrity check
    before = snapshot(queue.parent)
    with pytest.raises(StoreError):
        Store.open(queue, KEY)
    assert snapshot(queue.parent) == before


def test_missing_database_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="station init"):
        Store.open(tmp_path / "queue.db", KEY)
    assert list(tmp_path.iterdir()) == []


def test_plaintext_database_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "queue.db"
    sqlite3.connect(path).execute("CREATE TABLE packets (x)").connection.commit()
    with pytest.raises(StoreError, match="unencrypted"):
        Store.open(path, KEY)


def test_missing_or_loose_key_stops_the_station(tmp_path: Path) -> None:
    home = StationHome(tmp_path / "home")
    init_station(home, "uc-test-01", demo=True).close()
    before = snapshot(home.root)
    key_file = home.keys_dir / "db.key"
    os.chmod(key_file, 0o644)
    with pytest.raises(KeyProblem):
        open_station(home)
    os.chmod(key_file, 0o600)
    saved = key_file.read_bytes()
    key_file.unlink()
    with pytest.raises(KeyProblem):
        open_station(home)
    key_file.write_bytes(saved)
    os.chmod(key_file, 0o600)
    assert snapshot(home.root) == before
    open_station(home).close()


CRASH_WRITER = textwrap.dedent(
    """
    import hashlib, os, sys
    from pathlib import Path
    from station.store import Store
    s = Store.open(Path(sys.argv[1]), bytes(range(32)))
    n = 0
    while True:
        env = os.urandom(int(sys.argv[2]))
        with s.transaction():
            s.add_packet(f"c{n:06d}", env, hashlib.sha256(env).hexdigest(), float(n))
            s.meta_set("last", str(n))
        print(n, flush=True)
        n += 1
    """
)


def _crash_once(path: Path, size: int, commits_before_kill: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASH_WRITER, str(path), str(size)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    acked: list[int] = []
    for line in proc.stdout:
        acked.append(int(line))
        if len(acked) >= commits_before_kill:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()
    with Store.open(path, KEY) as s:  # integrity check passes after the crash
        ids = {p.packet_id for p in s.pending(limit=100_000)}
        for n in acked:
            assert f"c{n:06d}" in ids  # every commit that returned survived
        last = int(s.meta_get("last") or -1)
        assert len(ids) == last + 1  # packet and meta committed together, nothing half-written
        s.close()
    # start the next round from a fresh database
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    Store.open(path, KEY, create=True).close()


def test_kill_9_mid_commit_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    Store.open(path, KEY, create=True).close()
    for round_no in range(3):
        _crash_once(path, 50_000, 5 + round_no * 7)


@pytest.mark.slow
def test_kill_9_soak(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    Store.open(path, KEY, create=True).close()
    for round_no in range(40):
        _crash_once(path, 2_000 + 9_000 * (round_no % 5), 3 + (round_no * 13) % 40)
