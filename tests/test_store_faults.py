"""Wrong key, missing key, tampered or truncated database, and power loss (kill -9) mid-commit.

In every refusal case the station stops with a clear StoreError/KeyProblem and not one byte on disk
changes; after a kill -9 the queue opens, passes its integrity check and holds exactly the packets
whose commit returned.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from packetformat.packet import open_packet
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
    import pickle, sys
    from pathlib import Path
    from station.commit import commit_enrollment
    from station.home import StationHome
    from station.session import open_station
    enrollment = pickle.loads(Path(sys.argv[2]).read_bytes())
    station = open_station(StationHome(Path(sys.argv[1])), integrity_check=False)
    print("ready", flush=True)
    while True:
        print(commit_enrollment(station, enrollment).packet_id, flush=True)
    """
)


@pytest.fixture(scope="module")
def small_enrollment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid enrollment (real WSQ prints, a face), pickled once for the crash children."""
    from station.enrollment.example import write_example
    from station.enrollment.files import load_enrollment

    directory = tmp_path_factory.mktemp("crash-example")
    enrollment = load_enrollment(write_example(directory))
    path = directory / "enrollment.pickle"
    path.write_bytes(pickle.dumps(enrollment))
    return path


def crash_rounds(tmp_path: Path, enrollment: Path, kills: int, seed: int) -> None:
    """Commit in a child, SIGKILL it at a random moment, check everything, ``kills`` times."""
    rng = random.Random(seed)
    home = StationHome(tmp_path / "home")
    init_station(home, "uc-crash-01", demo=True).close()
    reported: list[str] = []
    for _ in range(kills):
        with subprocess.Popen(
            [sys.executable, "-c", CRASH_WRITER, str(home.root), str(enrollment)],
            stdout=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            target = rng.randrange(0, 4)
            new: list[str] = []
            if target == 0:  # kill while the first commit is in flight
                killer = threading.Timer(rng.uniform(0.0, 0.05), proc.kill)
                killer.start()
            for line in proc.stdout:
                new.append(line.strip())
                if len(new) >= target:
                    threading.Timer(rng.uniform(0.0, 0.03), proc.kill).start()
                    break
            proc.wait(60)
            new += [line.strip() for line in proc.stdout if line.strip()]  # reported before it died
        reported += new
        with open_station(home) as station:  # HMAC of every page checked at open
            assert station.store._query("PRAGMA integrity_check") == [("ok",)]
            assert station.audit.verify().ok
            queued = {p.packet_id for p in station.store.pending(limit=1_000_000)}
            assert set(reported) <= queued  # every reported commit survived
            commits = [e for e in station.audit.entries() if e.event == "enrollment.commit"]
            assert len(commits) == len(queued)  # packet and audit entry: both or neither
            files = {f.name.removesuffix(".env") for f in station.store.envelope_dir.iterdir()}
            assert files <= queued  # no envelope file left without its row
            demo_key = station.keys.get("demo-recipient")
            public = station.keys.identity_public_key()
            for packet_id in new:
                doc = open_packet(station.store.envelope(packet_id), demo_key, public)
                assert doc["station_id"] == "uc-crash-01"


def test_kill_9_mid_commit_loses_and_duplicates_nothing(tmp_path: Path, small_enrollment: Path) -> None:
    crash_rounds(tmp_path, small_enrollment, kills=20, seed=1)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_kill_9_soak(tmp_path: Path, small_enrollment: Path) -> None:
    crash_rounds(tmp_path, small_enrollment, kills=500, seed=2)
