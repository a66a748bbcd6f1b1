"""The core commands as a new user runs them: init, enroll, status, purge; disk floor; no plaintext."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from packetformat.packet import open_packet
from station.cli import cli
from station.errors import DiskFull
from station.home import StationHome
from station.session import open_station
from tests.sqlcipher_pages import database_plaintext, wal_plaintext


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("example")
    result = CliRunner().invoke(cli, ["enroll", "--example", str(directory)])
    assert result.exit_code == 0, result.output
    return directory / "enrollment.json"


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "station", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_init_enroll_status_as_a_user(tmp_path: Path, example: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "init", "--demo").returncode == 0
    again = run(home, "init", "--demo")
    assert again.returncode == 1 and "already exists" in again.stderr
    done = run(home, "enroll", "--from-json", str(example))
    assert done.returncode == 0, done.stderr
    packet_id = done.stdout.strip().splitlines()[-1]
    assert len(packet_id) == 36 and packet_id[14] == "7"
    status = json.loads(run(home, "status", "--json").stdout)
    assert status["counts"]["sealed"] == 1 and status["pending"] == 1
    assert status["audit_seq"] == 2 and status["station_id"] == "demo-station"
    text = run(home, "status").stdout
    assert "sealed 1" in text and "last sync     never" in text
    # The demo's stand-in central key opens what was sealed, and the document is the enrollment.
    st = StationHome(home)
    with open_station(st) as station:
        env = station.store.envelope(packet_id)
        doc = open_packet(env, station.keys.get("demo-recipient"), station.keys.identity_public_key())
    assert doc["demographics"]["cnic"] == "35202-1234567-1" and len(doc["fingers"]) == 10
    # Nothing readable of the citizen is anywhere in the station's files, nor inside the decrypted
    # database and WAL pages (everything is sealed), nor in the audit log.
    db_key = (home / "keys" / "db.key").read_bytes()
    decrypted = database_plaintext(home / "queue.db", db_key) + wal_plaintext(home / "queue.db-wal", db_key)
    assert b"enrollment.commit" in decrypted  # the decryption really works
    audit_text = run(home, "audit", "tail", "--json").stdout.encode()
    blobs = [("decrypted database", decrypted), ("audit", audit_text)]
    blobs += [(p.name, p.read_bytes()) for p in home.rglob("*") if p.is_file()]
    for where, data in blobs:
        for needle in ("35202-1234567-1", "Ahmed Raza", "احمد رضا", "0300-1234567"):
            assert needle.encode() not in data, f"{needle!r} found in {where}"


def test_invalid_enrollment_names_the_field_and_queues_nothing(tmp_path: Path, example: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "init", "--demo").returncode == 0
    bad_dir = tmp_path / "bad"
    shutil.copytree(example.parent, bad_dir)
    doc = json.loads((bad_dir / "enrollment.json").read_text(encoding="utf-8"))
    doc["demographics"]["cnic"] = "35202-1234567-2"  # even last digit: female, but gender is male
    (bad_dir / "enrollment.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    result = run(home, "enroll", "--from-json", str(bad_dir / "enrollment.json"))
    assert result.returncode == 1
    assert "cnic" in result.stderr
    assert json.loads(run(home, "status", "--json").stdout)["pending"] == 0


def test_low_disk_refuses_a_new_enrollment(tmp_path: Path, example: Path) -> None:
    home = StationHome(tmp_path / "home")
    runner = CliRunner()
    assert runner.invoke(cli, ["--home", str(home.root), "init", "--demo"]).exit_code == 0
    cfg = home.load_config()
    cfg.disk_floor_mb = 1 << 40  # the configurable floor, far above what any disk has free
    home.save_config(cfg)
    result = runner.invoke(cli, ["--home", str(home.root), "enroll", "--from-json", str(example)])
    assert isinstance(result.exception, DiskFull)
    assert "no new enrollment can start" in result.exception.message
    with open_station(home) as station:
        assert station.store.counts()["sealed"] == 0
        station.free_bytes = lambda path: 50 * 1024 * 1024
        station.config.disk_floor_mb = 200
        with pytest.raises(DiskFull, match="Only 50 MB of disk is free"):
            station.check_disk()


def test_purge_command_after_ack(tmp_path: Path, example: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "init", "--demo").returncode == 0
    packet_id = run(home, "enroll", "--from-json", str(example)).stdout.strip().splitlines()[-1]
    with open_station(StationHome(home)) as station:
        station.store.record_ack(packet_id, b"receipt", acked_at=time.time() - 8 * 86400)
    purged = run(home, "purge")
    assert purged.returncode == 0 and "purged 1 packet(s)" in purged.stdout
    status = json.loads(run(home, "status", "--json").stdout)
    assert status["counts"]["purged"] == 1 and status["counts"]["acked"] == 0
    assert "retention.purge" in run(home, "audit", "tail").stdout


def test_no_station_gives_a_clear_message(tmp_path: Path) -> None:
    result = run(tmp_path / "nothing", "status")
    assert result.returncode == 1 and "station init" in result.stderr and "Traceback" not in result.stderr
