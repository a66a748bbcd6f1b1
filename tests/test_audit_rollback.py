"""Rollback of queue.db and rewritten audit history (issue 13, finding 6, the station's side).

Each attack is run first as the review ran it: an old copy of queue.db put back (the chain in it is
intact, so `station audit verify` alone passes), the anchor file removed or forged, and an entry
edited with the database key and the chain recomputed. The station refuses to run with a clear
message until `station audit acknowledge-rollback`, which is itself audited."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from station.anchor import anchor_key, write_anchor
from station.audit import GENESIS, entry_hash
from station.home import StationHome
from station.keys import KeyStore
from station.store import Store
from tests.sync_live import make_example

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_example(tmp_path_factory.mktemp("example"))


def station(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "station", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _queue_files(home: Path) -> list[Path]:
    return [p for p in home.iterdir() if p.name.startswith("queue.") and not p.name.endswith(".anchor")]


def _copy_queue(home: Path, to: Path) -> None:
    to.mkdir()
    for p in _queue_files(home):
        (shutil.copytree if p.is_dir() else shutil.copy2)(p, to / p.name)


def _restore_queue(home: Path, frm: Path) -> None:
    for p in _queue_files(home):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    for p in frm.iterdir():
        (shutil.copytree if p.is_dir() else shutil.copy2)(p, home / p.name)


def _refused(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("error [store.rolled_back]: The station's queue is not the one"), (
        done.stderr
    )
    assert "station audit acknowledge-rollback" in done.stderr and "Traceback" not in done.stderr


@pytest.fixture
def home(tmp_path: Path, example: Path) -> Path:
    home = tmp_path / "home"
    assert station(home, "init", "--demo").returncode == 0
    assert station(home, "enroll", "--from-json", str(example)).returncode == 0
    return home


def test_an_old_copy_of_the_queue_is_refused_until_acknowledged(
    home: Path, example: Path, tmp_path: Path
) -> None:
    _copy_queue(home, tmp_path / "backup")
    for _ in range(2):
        assert station(home, "enroll", "--from-json", str(example)).returncode == 0
    _restore_queue(home, tmp_path / "backup")
    # The chain inside the old copy is intact: this is what went unnoticed before.
    with Store.open(StationHome(home).db_path, KeyStore(StationHome(home)).db_key()) as store:
        from station.audit import AuditLog

        assert AuditLog(store).verify().ok
    for args in (("status",), ("enroll", "--from-json", str(example)), ("sync", "status"), ("purge",)):
        _refused(station(home, *args))
    doctor = json.loads(station(home, "doctor", "--skip-devices", "--json").stdout)
    queue = next(c for c in doctor["checks"] if c["name"] == "queue")
    assert queue["status"] == "fail" and "acknowledge-rollback" in queue["fix"]

    ack = station(home, "audit", "acknowledge-rollback", "--yes")
    assert ack.returncode == 0, ack.stderr
    assert "Rollback acknowledged (anchor was #4, the queue is at #2)" in ack.stdout
    status = json.loads(station(home, "status", "--json").stdout)
    assert status["counts"]["sealed"] == 1 and status["audit_seq"] == 3
    tail = [json.loads(ln) for ln in station(home, "audit", "tail", "--json").stdout.splitlines()]
    assert tail[-1]["event"] == "audit.rollback_acknowledged"
    assert tail[-1]["fields"] == {"anchor_seq": 4, "queue_seq": 2, "by": "cli"}
    assert station(home, "enroll", "--from-json", str(example)).returncode == 0
    again = station(home, "audit", "acknowledge-rollback", "--yes")
    assert again.returncode == 0 and "nothing to acknowledge" in again.stdout


def test_a_removed_or_forged_anchor_is_refused(home: Path) -> None:
    anchor = home / "queue.anchor"
    saved = anchor.read_text()
    anchor.unlink()
    _refused(station(home, "status"))
    forged = json.loads(saved)
    forged["seq"] = 1
    anchor.write_text(json.dumps(forged))
    _refused(station(home, "status"))
    anchor.write_text("not json")
    _refused(station(home, "status"))
    anchor.write_text(saved)
    assert station(home, "status").returncode == 0


def test_an_anchor_that_lags_behind_the_queue_is_fine(home: Path) -> None:
    """A crash between the commit and the anchor's write leaves the anchor one entry behind."""
    sh = StationHome(home)
    key = anchor_key(KeyStore(sh).db_key())
    (home / "queue.anchor").unlink()
    write_anchor(home / "queue.anchor", key, 1, _hash_of(sh, 1))
    assert station(home, "status").returncode == 0
    assert json.loads((home / "queue.anchor").read_text())["seq"] == 1  # opening does not move it


def _hash_of(sh: StationHome, seq: int) -> str:
    with Store.open(sh.db_path, KeyStore(sh).db_key()) as store:
        return str(store._query("SELECT hash FROM audit WHERE seq = ?", (seq,))[0][0])


def test_a_rewritten_history_with_a_recomputed_chain_is_refused(home: Path) -> None:
    """The review's attack: with the key, edit entry #1 and recompute every hash after it."""
    sh = StationHome(home)
    with Store.open(sh.db_path, KeyStore(sh).db_key()) as store, store.transaction() as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        rows = conn.execute("SELECT seq, at, event, fields FROM audit ORDER BY seq").fetchall()
        prev = GENESIS
        for seq, at, event, fields in rows:
            if seq == 1:
                fields = json.dumps(
                    {"demo": 0, "station": "another-station"}, sort_keys=True, separators=(",", ":")
                )
            digest = entry_hash(prev, int(seq), float(at), str(event), str(fields))
            conn.execute(
                "UPDATE audit SET fields = ?, prev = ?, hash = ? WHERE seq = ?",
                (fields, prev, digest, seq),
            )
            prev = digest
        conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", (f"{len(rows)}:{prev}",))
    _refused(station(home, "audit", "verify"))
    _refused(station(home, "status"))
