"""The README's first command, as a new user runs it, headless: local central, provisioned demo station,
sync agent and the kiosk's scripted enrollment, ending with central's verified receipt."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.qt


def free_port_pair() -> int:
    """A port whose successor is free too (the enrollment listener is port + 1)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return int(port)
    raise RuntimeError("no free pair of loopback ports")


@pytest.mark.timeout(600)
def test_demo_script_ends_with_centrals_receipt(tmp_path: Path) -> None:
    env = dict(os.environ, CI="true", DEMO_DIR=str(tmp_path / "demo"), DEMO_PORT=str(free_port_pair()))
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    run = subprocess.run(
        ["bash", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=540
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    out = run.stdout
    packet_id = next(line.split()[1] for line in out.splitlines() if line.startswith("packet_id "))
    assert "CENTRAL RECEIPT" in out and "valid (central receipt key)" in out
    assert f"Packet: {packet_id}" in out  # the kiosk's own receipt names the same packet
    assert "demo-station" in out.split("CENTRAL RECEIPT", 1)[1]  # central status lists the station
    assert len(list((tmp_path / "demo" / "screenshots").glob("*.png"))) >= 20
    # Only the product's own messages: no Qt platform-plugin chatter between them.
    assert "This plugin does not support" not in run.stdout + run.stderr
    with socket.socket() as probe:  # the script stopped the central it started
        assert probe.connect_ex(("127.0.0.1", int(env["DEMO_PORT"]))) != 0
    # A second run reuses everything (idempotent) and syncs its new packet too.
    again = subprocess.run(
        ["bash", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=540
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("CENTRAL RECEIPT") == 1 and "Provisioned" not in again.stdout
