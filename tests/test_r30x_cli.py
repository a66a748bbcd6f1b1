"""``station sim r30x`` as a user runs it: a real subprocess, opened with the driver, then stopped."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from drivers.r30x.driver import R30xScanner
from drivers.r30x.sensor_image import load_sensor_image, quantise
from drivers.url import open_device

FINGER = Path(__file__).parent / "fixtures" / "r30x" / "elan.png"


def _start(link: Path, *extra: str) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """Start the command; return it and the ``key: value`` lines it printed up to ``pty:``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "station", "sim", "r30x", "--link", str(link), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    out = b""
    deadline = time.monotonic() + 20
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while b"pty: " not in out or not out.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    raise AssertionError(f"station sim r30x printed only {out!r} in 20 s")
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    raise AssertionError(f"station sim r30x exited: {out!r}")
                out += chunk
    except BaseException:
        proc.kill()
        proc.communicate(timeout=10)
        raise
    lines = [line.partition(": ") for line in out.decode().splitlines()]
    return proc, {key: value for key, _, value in lines}


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_sim_r30x_serves_on_the_link_and_removes_it(tmp_path: Path, stop_signal: signal.Signals) -> None:
    link = tmp_path / "scanner"
    proc, seen = _start(link, "--image", str(FINGER))
    try:
        assert seen["link"] == str(link) and seen["pty"].startswith("/dev/pts/")
        assert link.is_symlink() and os.readlink(link) == seen["pty"]
        device = open_device(f"serial://{link}")
        try:
            assert isinstance(device, R30xScanner)
            image = device.capture(timeout=2.0)
            assert np.array_equal(image.pixels, quantise(load_sensor_image(FINGER)))
        finally:
            device.close()
    finally:
        proc.send_signal(stop_signal)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err.decode()
    assert not link.exists() and not link.is_symlink()


def test_sim_r30x_without_image_has_no_finger(tmp_path: Path) -> None:
    link = tmp_path / "scanner"
    proc, _ = _start(link)
    try:
        device = open_device(f"serial://{link}")
        try:
            assert isinstance(device, R30xScanner)
            assert device.finger_present() is False
        finally:
            device.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert not link.exists()


def test_sim_r30x_refuses_to_replace_a_file(tmp_path: Path) -> None:
    target = tmp_path / "not-a-link"
    target.write_text("keep me")
    result = subprocess.run(
        [sys.executable, "-m", "station", "sim", "r30x", "--link", str(target)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0 and "not a symlink" in result.stderr
    assert target.read_text() == "keep me"


def test_sim_r30x_at_another_baud(tmp_path: Path) -> None:
    from drivers.errors import ProtocolError

    link = tmp_path / "scanner"
    proc, _ = _start(link, "--baud", "115200", "--finger-auto")
    try:
        with pytest.raises(ProtocolError, match="baud rate"):
            open_device(f"serial://{link}?baud=57600&maxbaud=0&timeout=0.3")
        device = open_device(f"serial://{link}?baud=115200")
        try:
            assert isinstance(device, R30xScanner)
            assert device.read_sys_params().baud == 115200 and device.finger_present()
        finally:
            device.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
