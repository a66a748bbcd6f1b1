"""``station kiosk`` from the command line: the headless demo and the screenshots command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from packetformat.packet import open_packet

pytestmark = pytest.mark.qt
ROOT = Path(__file__).resolve().parent.parent


def run_station(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return subprocess.run(
        [sys.executable, "-m", "station", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_headless_demo_enrolls_and_prints_the_receipt(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    shots = tmp_path / "shots"
    r = run_station("--home", str(home), "kiosk", "--demo", "--out", str(shots))
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    assert any(line.startswith("Tracking number: ") for line in lines)
    assert "Purpose:" in r.stdout
    packet_id = lines[-1]
    assert len(packet_id) == 36 and packet_id[14] == "7"  # UUIDv7
    pngs = sorted(p.name for p in shots.glob("*.png"))
    assert "receipt-ur.png" in pngs and "login-en.png" in pngs and len(pngs) >= 20
    printed = next(line for line in lines if line.startswith("Receipt printed to "))
    assert Path(printed.split(" to ", 1)[1]).read_bytes().startswith(b"%PDF")
    # The sealed packet is in the station's encrypted queue and opens only with central's key.
    from station.home import StationHome
    from station.session import open_station

    with open_station(StationHome(home)) as station:
        envelope = station.store.envelope(packet_id)
        central_key = station.keys.get("demo-recipient")  # the demo's stand-in central key
        doc = open_packet(envelope, central_key, station.keys.identity_public_key())
    assert doc["demographics"]["name_en"] == "Ahmed Raza"
    # nothing about the citizen in the output
    assert "Ahmed" not in r.stdout and "35202" not in r.stdout
