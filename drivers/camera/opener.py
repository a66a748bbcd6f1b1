"""Openers that ``drivers.url`` maps ``camera://`` and ``sim://camera`` to."""

from __future__ import annotations

import os
from typing import TextIO

from drivers.base import Camera
from drivers.camera.opencv import Mode, OpenCVCamera
from drivers.camera.sim import SimCamera
from drivers.device_url import DeviceURL
from drivers.errors import DeviceNotFound, UnsupportedURL


def _fps(url: DeviceURL, default: float) -> float:
    raw = url.param("fps")
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UnsupportedURL(f"fps={raw!r} in {url.raw} is not a number") from None
    if not 0 < value <= 240:
        raise UnsupportedURL(f"fps={raw!r} in {url.raw} is out of range (0-240)")
    return value


def _size(url: DeviceURL, width: int | None, height: int | None) -> tuple[int, int] | None:
    w = url.int_param("width", width or 0)
    h = url.int_param("height", height or 0)
    if w == 0 and h == 0:
        return None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise UnsupportedURL(f"width and height in {url.raw} must both be given, 16-8192")
    return w, h


def open_camera(url: DeviceURL, *, trace: TextIO | None = None) -> Camera:
    """``camera:///dev/video0?width=1280&height=720&fps=30&fourcc=MJPG``; the stream starts on ``start()``."""
    path = url.path or "/dev/video0"
    size = _size(url, 1280, 720)
    assert size is not None
    fourcc = url.param("fourcc", "MJPG") or ""
    if len(fourcc) not in (0, 4):
        raise UnsupportedURL(f"fourcc={fourcc!r} in {url.raw} must be four characters, e.g. MJPG or YUYV")
    if not os.path.exists(path):
        raise DeviceNotFound(f"No camera at {path}: check the cable, or run 'station device list'.")
    return OpenCVCamera(path, Mode(size[0], size[1], _fps(url, 30.0), fourcc), url=url.raw)


def open_sim_camera(url: DeviceURL, *, trace: TextIO | None = None) -> SimCamera:
    """``sim://camera?source=DIR|FILE|synthetic&fps=30[&width=640&height=480]``."""
    source = url.param("source", "synthetic") or "synthetic"
    return SimCamera(source, fps=_fps(url, 30.0), size=_size(url, None, None), url=url.raw)
