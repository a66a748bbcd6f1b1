"""The OpenCV camera driver's thread, still and unplug/replug logic, run against a real OpenCV capture.

There is no V4L2 device here, so the driver reads a real MJPG file through OpenCV's file backend
(``api=cv2.CAP_ANY``); its "device node" is that file: renaming it away is an unplug, renaming it
back a replug. Only the backend differs from ``camera:///dev/videoN`` (which uses ``cv2.CAP_V4L2``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera import opencv
from drivers.camera.opencv import Mode, OpenCVCamera
from drivers.errors import DeviceNotFound, DeviceUnplugged, UnsupportedURL
from drivers.url import open_device
from tests.waiting import wait_for


def clip(path: Path, frames: int = 40, size: tuple[int, int] = (64, 48)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), (i * 6) % 250, np.uint8))
    writer.release()
    return path


class LoopingFile:
    """A real OpenCV capture of a real file that starts again at its end, like an endless stream."""

    def __init__(self, path: str, api: int) -> None:
        self.cap = cv2.VideoCapture(path, api)

    def isOpened(self) -> bool:
        return bool(self.cap.isOpened())

    def set(self, prop: int, value: float) -> bool:
        return bool(self.cap.set(prop, value))

    def release(self) -> None:
        self.cap.release()

    def read(self) -> tuple[bool, np.ndarray | None]:
        ok, frame = self.cap.read()
        if not ok:
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.cap.read()
        return ok, frame


def looping(path: str, api: int) -> LoopingFile:
    return LoopingFile(path, api)


def test_streams_latest_frame_and_takes_a_still(tmp_path: Path) -> None:
    cam = OpenCVCamera(
        str(clip(tmp_path / "video0.avi")), Mode(64, 48, 30, ""), api=cv2.CAP_ANY, factory=looping
    )
    with cam:
        assert cam.latest_frame() is None
        cam.start()
        seq, frame = cam.wait_newer(0, timeout=5)
        assert seq >= 1 and frame.shape == (48, 64, 3)
        still = cam.still(timeout=5)
        assert still.shape == (48, 64, 3)
        later, _ = cam.wait_newer(seq, timeout=5)  # streaming goes on after the still
        assert later > seq
        assert cam.info().details["frame"] == "64x48"


def test_unplug_is_reported_and_replug_recovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(opencv, "REOPEN_INTERVAL", 0.05)
    monkeypatch.setattr(opencv, "NODE_CHECK_INTERVAL", 0.02)
    node = clip(tmp_path / "video0.avi")
    away = tmp_path / "unplugged.avi"
    cam = OpenCVCamera(str(node), Mode(64, 48, 30, ""), api=cv2.CAP_ANY, factory=looping)
    with cam:
        cam.start()
        seq, _ = cam.wait_newer(0, timeout=5)
        node.rename(away)  # the node disappears
        wait_for(lambda: cam.unplugged, 10.0)
        with pytest.raises(DeviceUnplugged) as exc:
            cam.latest_frame()
        assert "reconnect" in exc.value.message
        with pytest.raises(DeviceUnplugged):
            cam.still(timeout=1)
        reopened = cam.reopened
        away.rename(node)  # plugged back in
        wait_for(lambda: not cam.unplugged and cam.reopened > reopened, 10.0)
        newer, frame = cam.wait_newer(seq, timeout=5)
        assert newer > seq and frame.shape == (48, 64, 3)
        assert cam.latest_frame() is not None


def test_end_of_stream_counts_as_unplugged_then_reopens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device that stops delivering (reads keep failing) is reported, released and reopened."""
    monkeypatch.setattr(opencv, "REOPEN_INTERVAL", 0.05)
    cam = OpenCVCamera(str(clip(tmp_path / "video0.avi", frames=5)), Mode(64, 48, 30, ""), api=cv2.CAP_ANY)
    with cam:
        cam.start()
        wait_for(lambda: cam.reopened >= 1, 10.0)  # the 5-frame file ran out, was reported and reopened
        assert cam.frame_size == (64, 48)


def test_missing_node_and_bad_parameters() -> None:
    with pytest.raises(DeviceNotFound, match="No camera at /dev/video-none"):
        open_device("camera:///dev/video-none")
    with pytest.raises(UnsupportedURL, match="fourcc"):
        open_device("camera:///dev/null?fourcc=MJPEG")
    with pytest.raises(UnsupportedURL, match="fps"):
        open_device("camera:///dev/null?fps=0")


def test_url_parameters_reach_the_driver() -> None:
    cam = open_device("camera:///dev/null?width=640&height=480&fps=15&fourcc=YUYV")
    assert isinstance(cam, OpenCVCamera)
    assert cam.mode == Mode(640, 480, 15.0, "YUYV")
    assert cam.info().details["mode"] == "640x480@15 YUYV"
    cam.close()


@pytest.mark.slow
def test_twenty_unplug_replug_cycles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(opencv, "REOPEN_INTERVAL", 0.02)
    monkeypatch.setattr(opencv, "NODE_CHECK_INTERVAL", 0.01)
    node = clip(tmp_path / "video0.avi")
    away = tmp_path / "unplugged.avi"
    with OpenCVCamera(str(node), Mode(64, 48, 30, ""), api=cv2.CAP_ANY, factory=looping) as cam:
        cam.start()
        seq, _ = cam.wait_newer(0, timeout=5)
        for cycle in range(20):
            node.rename(away)
            wait_for(lambda: cam.unplugged, 10.0)
            away.rename(node)
            wait_for(lambda c=cycle: not cam.unplugged and cam.reopened > c, 10.0)
            seq, _ = cam.wait_newer(seq, timeout=5)
