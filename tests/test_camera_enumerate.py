"""Camera enumeration from a fake sysfs tree laid out as the kernel does it (class links into devices/)."""

from __future__ import annotations

import os
from pathlib import Path

from drivers.camera.enumerate import CameraInfo, list_cameras


def video_node(sys: Path, device_dir: Path, node: str, name: str, index: int) -> None:
    target = device_dir / "video4linux" / node
    target.mkdir(parents=True)
    (target / "name").write_text(name + "\n")
    (target / "index").write_text(f"{index}\n")
    (target / "device").symlink_to(os.path.relpath(device_dir, target))
    link = sys / "class" / "video4linux" / node
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(target, link.parent))


def fake_sysfs(tmp_path: Path) -> Path:
    sys = tmp_path / "sys"
    usb_dev = sys / "devices/pci0000:00/0000:00:14.0/usb1/1-2"
    usb_dev.mkdir(parents=True)
    (usb_dev / "idVendor").write_text("046d\n")
    (usb_dev / "idProduct").write_text("0825\n")
    iface = usb_dev / "1-2:1.0"
    iface.mkdir()
    video_node(sys, iface, "video0", "UVC Camera (046d:0825)", 0)
    video_node(sys, iface, "video1", "UVC Camera (046d:0825)", 1)  # metadata node: skipped
    second = sys / "devices/pci0000:00/0000:00:14.0/usb1/1-3"
    second.mkdir(parents=True)
    (second / "idVendor").write_text("0C45\n")
    (second / "idProduct").write_text("6366\n")
    video_node(sys, second / "1-3:1.0", "video10", "USB Live camera", 0)
    platform = sys / "devices/platform/soc/fe801000.csi"
    platform.mkdir(parents=True)
    video_node(sys, platform, "video2", "unicam-image", 0)  # a board camera: no USB ids
    return sys


def test_lists_capture_nodes_with_names_and_usb_ids(tmp_path: Path) -> None:
    cameras = list_cameras(fake_sysfs(tmp_path))
    assert cameras == [
        CameraInfo("camera:///dev/video0", "UVC Camera (046d:0825)", "046d:0825", "/dev/video0"),
        CameraInfo("camera:///dev/video2", "unicam-image", None, "/dev/video2"),
        CameraInfo("camera:///dev/video10", "USB Live camera", "0c45:6366", "/dev/video10"),
    ]


def test_no_video4linux_means_no_cameras(tmp_path: Path) -> None:
    assert list_cameras(tmp_path) == []


def test_unreadable_name_falls_back_to_the_node(tmp_path: Path) -> None:
    sys = fake_sysfs(tmp_path)
    (sys / "class/video4linux/video0/name").unlink()
    first = list_cameras(sys)[0]
    assert first.name == "video0" and first.usb_id == "046d:0825"


def test_real_sysfs_does_not_fail() -> None:
    for cam in list_cameras():
        assert cam.url == f"camera://{cam.path}"
