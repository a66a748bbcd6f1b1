"""List the cameras plugged in, from sysfs (OpenCV has no enumeration API).

Each ``/sys/class/video4linux/videoN`` has a ``name``; its ``index`` is 0 for the capture node of a
device (UVC cameras also expose a metadata node with index 1, which is skipped). The USB vendor and
product ids are read from the first sysfs parent of the device that has ``idVendor``/``idProduct``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CameraInfo:
    url: str
    name: str
    usb_id: str | None  # "046d:0825"
    path: str  # "/dev/video0"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _usb_id(device_dir: Path, sysfs_root: Path) -> str | None:
    try:
        current = device_dir.resolve()
        root = sysfs_root.resolve()
    except OSError:
        return None
    for _ in range(12):  # bounded walk up the device tree
        vendor, product = _read(current / "idVendor"), _read(current / "idProduct")
        if vendor and product:
            return f"{vendor.lower()}:{product.lower()}"
        if current == root or current.parent == current:
            return None
        current = current.parent
    return None


def _number(name: str) -> int:
    match = re.search(r"(\d+)$", name)
    return int(match.group(1)) if match else -1


def list_cameras(sysfs_root: str | Path = "/sys", dev_root: str = "/dev") -> list[CameraInfo]:
    root = Path(sysfs_root)
    class_dir = root / "class" / "video4linux"
    if not class_dir.is_dir():
        return []
    found: list[CameraInfo] = []
    for entry in sorted(class_dir.iterdir(), key=lambda p: _number(p.name)):
        if not entry.name.startswith("video"):
            continue
        index = _read(entry / "index")
        if index not in (None, "0"):
            continue
        name = _read(entry / "name") or entry.name
        device = entry / "device"
        usb_id = _usb_id(device if device.exists() else entry, root)
        path = f"{dev_root.rstrip('/')}/{entry.name}"
        found.append(CameraInfo(url=f"camera://{path}", name=name, usb_id=usb_id, path=path))
    return found
