"""Discovery on a fake sysfs tree and ``station device list/info/capture`` (JSON schema, errors)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from serial.tools.list_ports_common import ListPortInfo

from drivers.discovery import DiscoveredDevice, discover, list_devices
from station.cli import cli

FIELDS = {"url", "kind", "name", "usb_id", "path"}


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def usb_device(root: Path, name: str, vid: str, pid: str, bus: int, dev: int) -> Path:
    """A USB device directory under devices/, linked from bus/usb/devices/ as the kernel does."""
    real = root / "devices" / "pci0000:00" / f"usb{bus}" / name
    for attr, value in (("idVendor", vid), ("idProduct", pid), ("busnum", str(bus)), ("devnum", str(dev))):
        write(real / attr, value)
    link = root / "bus" / "usb" / "devices" / name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(real, link.parent))
    return real


def video_node(root: Path, name: str, label: str, index: int, parent: Path | None) -> None:
    node = (
        root / "devices" / "virtual" / "video4linux" / name
        if parent is None
        else parent / "video4linux" / name
    )
    write(node / "name", label)
    write(node / "index", str(index))
    if parent is not None:
        (node / "device").symlink_to(os.path.relpath(parent, node))
    link = root / "class" / "video4linux" / name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(node, link.parent))


def port(device: str, vid: int | None, pid: int | None, description: str = "n/a") -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.description = vid, pid, description
    return info


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    root = tmp_path / "sys"
    usb_device(root, "1-7", "298d", "1010", 1, 3)
    cam = usb_device(root, "1-2", "046d", "0825", 1, 4)
    usb_device(root, "1-3", "1a86", "7523", 1, 5)  # the CH340 behind ttyUSB1: a port, not a scanner
    write(cam / "1-2:1.0" / "bInterfaceNumber", "00")
    video_node(root, "video0", "UVC Camera (046d:0825)", 0, cam / "1-2:1.0")
    video_node(root, "video1", "UVC Camera (046d:0825)", 1, cam / "1-2:1.0")  # metadata node
    video_node(root, "video2", "v4l2 loopback", 0, None)
    return root


PORTS = [
    port("/dev/ttyUSB1", 0x1A86, 0x7523, "USB Serial"),
    port("/dev/ttyUSB0", 0x10C4, 0xEA60, "CP2102 USB to UART Bridge Controller"),
    port("/dev/ttyACM0", 0x2341, 0x0043, "Arduino Uno"),
    port("/dev/ttyS0", None, None),
]


def test_discovery_on_fake_sysfs(sysfs: Path) -> None:
    found = list_devices(sysfs_root=sysfs, ports=lambda: PORTS)
    assert found == [
        DiscoveredDevice(
            "usb://298d:1010", "fingerprint", "NEXT Biometrics NB-1010-U", "298d:1010", "/dev/bus/usb/001/003"
        ),
        DiscoveredDevice("serial:///dev/ttyACM0", "serial", "Arduino Uno", "2341:0043", "/dev/ttyACM0"),
        DiscoveredDevice("serial:///dev/ttyS0", "serial", "serial port", None, "/dev/ttyS0"),
        DiscoveredDevice(
            "serial:///dev/ttyUSB0",
            "serial",
            "CP210x serial adapter (CP2102 USB to UART Bridge Controller)",
            "10c4:ea60",
            "/dev/ttyUSB0",
        ),
        DiscoveredDevice(
            "serial:///dev/ttyUSB1",
            "serial",
            "CH340 serial adapter (USB Serial)",
            "1a86:7523",
            "/dev/ttyUSB1",
        ),
        DiscoveredDevice(
            "camera:///dev/video0", "camera", "UVC Camera (046d:0825)", "046d:0825", "/dev/video0"
        ),
        DiscoveredDevice("camera:///dev/video2", "camera", "v4l2 loopback", None, "/dev/video2"),
    ]


def test_two_scanners_get_bus_and_address(sysfs: Path) -> None:
    usb_device(sysfs, "2-1", "298d", "1010", 2, 9)
    scanners = [d for d in list_devices(sysfs_root=sysfs, ports=list) if d.kind == "fingerprint"]
    assert [d.url for d in scanners] == ["usb://298d:1010?bus=1&address=3", "usb://298d:1010?bus=2&address=9"]
    assert scanners[1].path == "/dev/bus/usb/002/009"


def test_discover_is_list_devices_on_this_machine() -> None:
    assert discover() == list_devices()


def test_empty_tree(tmp_path: Path) -> None:
    assert list_devices(sysfs_root=tmp_path / "nothing", ports=list) == []


def test_cli_list_json_schema(sysfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("serial.tools.list_ports.comports", lambda: PORTS)
    result = CliRunner().invoke(cli, ["device", "list", "--json", "--sysfs-root", str(sysfs)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 7
    for row in rows:
        assert set(row) == FIELDS
        assert row["kind"] in {"fingerprint", "serial", "camera"}
        assert isinstance(row["url"], str) and "://" in row["url"]
        assert row["usb_id"] is None or len(row["usb_id"]) == 9
    assert rows[0]["url"] == "usb://298d:1010"


def test_cli_list_table_and_empty(sysfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("serial.tools.list_ports.comports", lambda: PORTS)
    result = CliRunner().invoke(cli, ["device", "list", "--sysfs-root", str(sysfs)])
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["KIND", "URL", "NAME", "USB", "ID", "PATH"]
    assert lines[1].split()[:2] == ["fingerprint", "usb://298d:1010"]
    assert lines[1].split()[-2:] == ["298d:1010", "/dev/bus/usb/001/003"]
    monkeypatch.setattr("serial.tools.list_ports.comports", list)
    result = CliRunner().invoke(cli, ["device", "list", "--sysfs-root", str(tmp_path / "none")])
    assert result.exit_code == 0 and "No scanner, serial port or camera found" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "usb://298d:1010?bus=250&address=250"], "plug in the scanner"),
        (["capture", "usb://298d:1010?bus=250&address=250", "--out", "x.png"], "plug in the scanner"),
        (["info", "usb://1234:5678"], "No driver for USB device 1234:5678"),
        (["info", "usb://nonsense"], "vendor:product in hex"),
        (["info", "ftp://host/x"], "No driver for 'ftp://host/x'"),
        (["info", "/dev/ttyUSB0"], "is not a device URL"),
    ],
)
def test_errors_exit_1_with_a_message(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["device", *args])
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert result.stderr.startswith("error [device.")
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback


def test_missing_scanner_through_the_real_entry_point() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "station",
            "device",
            "capture",
            "usb://298d:1010?bus=250&address=250",
            "--out",
            "x.png",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "error [device.not_found]" in result.stderr and "plug in the scanner" in result.stderr
    assert "Traceback" not in result.stderr


# -- sim://r30x (the R30x simulator on a pty) ------------------------------------------------------


def test_r30x_capture_png_with_progress(tmp_path: Path) -> None:
    pytest.importorskip("drivers.r30x.simulator")
    out = tmp_path / "r30x.png"
    result = CliRunner().invoke(cli, ["device", "capture", "sim://r30x?finger=auto", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Reading image" in result.stderr  # the progress bar's label (no tty: label only)
    pixels = np.asarray(Image.open(out))
    assert pixels.shape == (288, 256) and pixels.std() > 10
    assert "Saved 256x288 fingerprint" in result.stdout


def test_r30x_capture_wsq(tmp_path: Path) -> None:
    pytest.importorskip("drivers.r30x.simulator")
    from drivers.formats import wsq

    out = tmp_path / "r30x.wsq"
    result = CliRunner().invoke(cli, ["device", "capture", "sim://r30x?finger=auto", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert wsq.decode(out.read_bytes()).shape == (288, 256)


def test_r30x_info_json_and_no_finger_timeout(tmp_path: Path) -> None:
    pytest.importorskip("drivers.r30x.simulator")
    result = CliRunner().invoke(cli, ["device", "info", "sim://r30x", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert set(info) == {"url", "kind", "model", "details"} and info["kind"] == "fingerprint"
    assert all(isinstance(v, str) for v in info["details"].values())
    result = CliRunner().invoke(
        cli, ["device", "capture", "sim://r30x", "--out", str(tmp_path / "f.png"), "--timeout", "0.5"]
    )
    assert result.exit_code == 1
    assert "error [device.timeout" in result.stderr and "finger" in result.stderr
    assert not (tmp_path / "f.png").exists()


def test_bad_suffix_and_unwritable_out(tmp_path: Path) -> None:
    pytest.importorskip("drivers.r30x.simulator")
    result = CliRunner().invoke(
        cli, ["device", "capture", "sim://r30x?finger=auto", "--out", str(tmp_path / "f.txt")]
    )
    assert result.exit_code == 1 and "as .png or .wsq" in result.stderr
    out = tmp_path / "missing-dir" / "f.png"
    result = CliRunner().invoke(cli, ["device", "capture", "sim://r30x?finger=auto", "--out", str(out)])
    assert result.exit_code == 1 and "Cannot write" in result.stderr


def test_camera_still_jpeg(tmp_path: Path) -> None:
    pytest.importorskip("drivers.camera.sim")
    out = tmp_path / "still.jpg"
    result = CliRunner().invoke(
        cli, ["device", "capture", "sim://camera?source=synthetic", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:3] == b"\xff\xd8\xff"
    with Image.open(out) as img:
        assert img.format == "JPEG" and img.size[0] > 0
    result = CliRunner().invoke(
        cli, ["device", "capture", "sim://camera?source=synthetic", "--out", str(tmp_path / "s.wsq")]
    )
    assert result.exit_code == 1 and ".jpg or .png" in result.stderr
