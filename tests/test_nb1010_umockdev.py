"""The NB-1010-U driver and ``station device`` inside ``umockdev-run``, replaying a real capture.

libusb talks to a device that umockdev fakes in sysfs and /dev, answering each
bulk transfer from the recording of libfprint's driver on a real sensor; a
request that is not in the recording fails with EIO. The tests prove the
decoded frame is that real fingerprint: its SHA-256 equals the value committed
after the image was looked at (``tests/fixtures/usb/nb1010/expected.sha256``),
and independently it has the structure of a print (a dominant ridge period of
6-12 px in its spectrum, and more than 20 NIST minutiae).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drivers.nb1010 import protocol as p
from tests.nb1010_replay import EXPECTED_SHA256, RECORDING, load_transfers

UMOCKDEV_RUN = shutil.which("umockdev-run")

pytestmark = [
    pytest.mark.umockdev,
    pytest.mark.skipif(
        UMOCKDEV_RUN is None,
        reason="umockdev-run is not installed (Debian package 'umockdev'; scripts/setup.sh installs it)",
    ),
]


def replay(
    *args: str, ioctl: Path = RECORDING / "capture.ioctl", timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m station ARGS`` (or ``python -c``) with the recorded sensor attached."""
    assert UMOCKDEV_RUN is not None
    cmd = [
        UMOCKDEV_RUN,
        "-d",
        str(RECORDING / "device"),
        "-i",
        f"/dev/bus/usb/001/003={ioctl}",
        "--",
        sys.executable,
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def ridge_band_energy(pixels: np.ndarray) -> tuple[float, float]:
    """(dominant period in px, share of spectral energy with periods of 6-12 px) of the inner area."""
    inner = pixels[20:160, 20:236].astype(float)
    inner -= inner.mean()
    window = np.outer(np.hanning(inner.shape[0]), np.hanning(inner.shape[1]))
    power = np.abs(np.fft.fftshift(np.fft.fft2(inner * window))) ** 2
    h, w = inner.shape
    yy, xx = np.mgrid[:h, :w]
    radius = np.hypot((yy - h // 2) / h, (xx - w // 2) / w)
    power[radius < 1 / 30] = 0  # illumination, not ridges
    peak = np.unravel_index(int(power.argmax()), power.shape)
    band = (radius > 1 / 12) & (radius < 1 / 6)
    return float(1 / radius[peak]), float(power[band].sum() / power.sum())


def minutiae_count(png: bytes) -> int:
    import nbis

    settings = nbis.NbisExtractorSettings(
        min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=False, ppi=None
    )
    return len(nbis.new_nbis_extractor(settings).extract_minutiae(png).get())


def test_cli_capture_is_the_real_fingerprint(tmp_path: Path) -> None:
    out = tmp_path / "print.png"
    result = replay("-m", "station", "device", "capture", "usb://298d:1010", "--out", str(out), "--trace")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Saved 256x180 fingerprint at 385 ppi" in result.stdout
    pixels = np.asarray(Image.open(out))
    assert pixels.shape == (180, 256) and pixels.dtype == np.uint8
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == EXPECTED_SHA256
    # the same frame the pure decoder makes of the recorded bytes
    blocks = [t.data for t in load_transfers() if len(t.data) == p.PARTIAL_LEN]
    assert np.array_equal(pixels, p.decode_frame(blocks))
    period, share = ridge_band_energy(pixels)
    assert 6.0 <= period <= 12.0
    assert share > 0.3  # white noise puts ~0.065 of its energy in that band
    assert minutiae_count(out.read_bytes()) > 20
    # --trace: every transfer, hex-dumped, on stderr
    assert "usb > ep02    8 | 80 38 01 00 08 00 00 00" in result.stderr
    assert result.stderr.count("usb < ep83  540 |") == 90


def test_noise_fails_the_ridge_check() -> None:
    noise = np.random.default_rng(7).integers(0, 256, (180, 256), dtype=np.uint8)
    _period, share = ridge_band_energy(noise)
    assert share < 0.15


def test_cli_capture_to_wsq(tmp_path: Path) -> None:
    from drivers.formats import wsq

    out = tmp_path / "print.wsq"
    result = replay("-m", "station", "device", "capture", "usb://298d:1010", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    decoded = wsq.decode(out.read_bytes())
    blocks = [t.data for t in load_transfers() if len(t.data) == p.PARTIAL_LEN]
    original = p.decode_frame(blocks).astype(float)
    assert decoded.shape == (180, 256)
    # lossy at 0.75 bpp on this speckled sensor, but the same print: strongly correlated, same ridges
    assert float(np.corrcoef(decoded.ravel().astype(float), original.ravel())[0, 1]) > 0.85
    assert ridge_band_energy(decoded)[1] > 0.3


def test_info_and_list_see_the_replayed_sensor() -> None:
    result = replay("-m", "station", "device", "info", "usb://298d:1010", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout)
    assert info["model"] == "NEXT Biometrics NB-1010-U" and info["kind"] == "fingerprint"
    assert info["details"]["bus"] == "1" and info["details"]["address"] == "3"
    result = replay("-m", "station", "device", "list", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    scanners = [d for d in json.loads(result.stdout) if d["kind"] == "fingerprint"]
    assert scanners == [
        {
            "url": "usb://298d:1010",
            "kind": "fingerprint",
            "name": "NEXT Biometrics NB-1010-U",
            "usb_id": "298d:1010",
            "path": "/dev/bus/usb/001/003",
        }
    ]


def test_bus_address_selection() -> None:
    ok = replay("-m", "station", "device", "info", "usb://298d:1010?bus=1&address=3", "--json")
    assert ok.returncode == 0, ok.stderr[-2000:]
    missing = replay("-m", "station", "device", "info", "usb://298d:1010?bus=1&address=9")
    assert missing.returncode == 1
    assert "plug in the scanner" in missing.stderr and "Traceback" not in missing.stderr


def test_a_request_not_in_the_recording_fails_cleanly() -> None:
    """The replay checks the bytes sent: an unknown command gets an I/O error, mapped to DeviceError."""
    script = (
        "from drivers.url import open_device\n"
        "from drivers.errors import DeviceError\n"
        "s = open_device('usb://298d:1010')\n"
        "try:\n"
        "    s._link.write(bytes([0x80, 0x99, 1, 0, 8, 0, 0, 0]), timeout_ms=500)\n"
        "except DeviceError as e:\n"
        "    print('refused', e.code)\n"
        "s.close()\n"
    )
    result = replay("-c", script)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "refused device.usb"


def test_recording_cut_mid_frame_is_a_clean_protocol_error(tmp_path: Path) -> None:
    """Only 42 of the 90 image blocks recorded: umockdev then answers from the start of the
    recording again, which the driver must catch (a repeated line), not save as a print."""
    lines = (RECORDING / "capture.ioctl").read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.ioctl"
    cut.write_text("".join(lines[:50]))
    out = tmp_path / "print.png"
    result = replay("-m", "station", "device", "capture", "usb://298d:1010", "--out", str(out), ioctl=cut)
    assert result.returncode == 1
    assert "error [device.protocol]" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
