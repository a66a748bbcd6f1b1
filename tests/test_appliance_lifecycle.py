"""A station's life against a real local central: guided provisioning (devices detected by URL and
test-captured before the token is spent), then decommissioning (refused while packets are unsynced,
then crypto-erase: the old database cannot be opened with anything left on the machine)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.errors import StationError
from station.home import StationHome
from station.session import open_station
from station.store import Store
from tests.sync_live import (
    Central,
    make_example,
    make_station,
    provision_cli,
    running_central,
    station_cli,
)

SCANNER = "sim://r30x?finger=auto"
CAMERA = "sim://camera?source=synthetic"


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    with running_central(tmp_path_factory.mktemp("central") / "home") as c:
        yield c


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_example(tmp_path_factory.mktemp("example"))


def provision(central: Central, home: Path, *extra: str, check: bool = True) -> str:
    result = provision_cli(home, central, central.token("demo-station"), None, *extra, check=check)
    return result.stdout + result.stderr


def test_devices_are_test_captured_before_the_token_is_spent(central: Central, tmp_path: Path) -> None:
    home = tmp_path / "station"
    make_station(home, packets=0)
    # A scanner with no finger on it: the test capture fails and nothing reaches central.
    token = central.token("demo-station")
    args = ["--central", central.ingest_url, "--enroll-url", central.enroll_url]
    token_file = tmp_path / "token.txt"
    token_file.write_text(token + "\n")
    args += ["--token-file", str(token_file)]
    args += [
        "--ca-fingerprint",
        central.fingerprint,
        "--camera",
        CAMERA,
        "--scanner",
        "sim://r30x?timeout=0.5",
    ]
    failed = station_cli(home, "provision", *args, check=False)
    assert failed.returncode == 1
    assert "scanner test failed" in failed.stderr and "Nothing was sent to central" in failed.stderr
    assert not (home / "pki" / "station.crt").exists()
    # The same token still works once the scanner does.
    args[-1] = SCANNER
    ok = station_cli(home, "provision", *args)
    assert "OK   scanner" in ok.stdout and "quality" in ok.stdout and "OK   camera" in ok.stdout
    assert "Provisioned station demo-station" in ok.stdout
    cfg = StationHome(home).load_config()
    assert cfg.scanner_url == SCANNER and cfg.camera_url == CAMERA
    doctor = station_cli(home, "doctor", check=False)
    assert "OK    scanner" in doctor.stdout and "OK    certificate" in doctor.stdout


def test_provision_without_options_off_a_terminal_says_what_is_missing(tmp_path: Path) -> None:
    result = station_cli(tmp_path / "bare", "provision", check=False)
    assert result.returncode == 2 and "--station-id is required" in result.stderr


def test_decommission_end_to_end(central: Central, example: Path, tmp_path: Path) -> None:
    home = tmp_path / "station"
    make_station(home, 2, example)
    provision(central, home, "--skip-devices")
    st = StationHome(home)
    saved_db = tmp_path / "stolen-queue.db"
    # Unsynced packets: refused, nothing touched.
    refused = station_cli(home, "decommission", "--yes", check=False)
    assert refused.returncode == 1 and "not been acknowledged" in refused.stderr
    assert (home / "keys").is_dir() and st.db_path.exists()
    # Sync everything, then decommission for real.
    station_cli(home, "sync", "once")
    shutil.copy(st.db_path, saved_db)  # what a thief might have copied beforehand
    done = station_cli(home, "decommission", "--yes")
    assert "Destroyed keys: " in done.stdout and "central revoke demo-station" in done.stdout
    assert not home.exists() or not any(home.iterdir())
    # Nothing left on the machine opens the old database: every file that remains is tried as a key.
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p != saved_db and p.stat().st_size >= 32]
    for candidate in leftovers:
        data = candidate.read_bytes()
        for key in {data[:32], data[-32:]}:
            with pytest.raises(StationError):
                Store.open(saved_db, key)
    with pytest.raises(StationError):
        open_station(st)


def test_decommission_asks_for_the_station_id(example: Path, tmp_path: Path) -> None:
    home = tmp_path / "station"
    make_station(home, 1, example)
    wrong = station_cli(home, "decommission", "--force-unsynced", check=False)  # stdin: no answer
    assert wrong.returncode == 1
    assert StationHome(home).db_path.exists()
    forced = station_cli(home, "decommission", "--force-unsynced", "--yes")
    assert "1 unsynced packet(s) discarded" in forced.stdout
