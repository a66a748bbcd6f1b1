"""Simulated camera: plays pictures, a video or a synthetic face at a steady frame rate.

``sim://camera?source=DIR|FILE|synthetic&fps=30[&width=640&height=480]``

- a directory: its images in name order, looped;
- an image file: that picture, every frame;
- a video file (by extension): its frames, looped;
- ``synthetic``: a drawn face with fresh noise in every frame.

Frames are paced by the monotonic clock (the next deadline advances by one period and the thread
waits on an Event until then; a late frame does not cause a burst). Faults, as a real camera shows
them: ``unplug()`` (reads raise DeviceUnplugged, the stream stops), ``replug()`` (frames resume),
``drop_frames(n)`` (the next n frames are lost: the sequence number jumps).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from drivers.base import BGRImage, Camera, DeviceInfo
from drivers.camera import synthetic
from drivers.camera.slot import FrameSlot
from drivers.errors import DeviceError, DeviceNotFound, DeviceUnplugged

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
VIDEO_EXTENSIONS = {".avi", ".mp4", ".mkv", ".mov", ".webm", ".mjpeg", ".mjpg", ".m4v"}


def _read_image(path: Path) -> BGRImage:
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise DeviceNotFound(f"Simulated camera: {path} is not a readable image.")
    return np.asarray(img, dtype=np.uint8)


class _Source:
    """Where frames come from; ``frames()`` yields full-resolution frames forever."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.kind: str
        self._images: list[BGRImage] = []
        self._video: Path | None = None
        if spec == "synthetic":
            self.kind = "synthetic"
            return
        path = Path(spec)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise DeviceNotFound(f"Simulated camera: no images in {path}.")
            self._images = [_read_image(p) for p in files]
            self.kind = "images"
        elif path.suffix.lower() in VIDEO_EXTENSIONS:
            if not path.is_file():
                raise DeviceNotFound(f"Simulated camera: video {path} not found.")
            self._video = path
            self.kind = "video"
        elif path.is_file():
            self._images = [_read_image(path)]
            self.kind = "image"
        else:
            raise DeviceNotFound(
                f"Simulated camera: source {spec!r} is not a directory, a file or 'synthetic'."
            )

    def frames(self, size: tuple[int, int] | None) -> Iterator[BGRImage]:
        if self.kind == "synthetic":
            w, h = size or (640, 480)
            pictures = synthetic.frames(w, h)
            i = 0
            while True:
                yield pictures[i % len(pictures)].copy()
                i += 1
        elif self._video is not None:
            while True:
                cap = cv2.VideoCapture(str(self._video))
                try:
                    got = 0
                    while True:
                        ok, frame = cap.read()
                        if not ok:
                            break
                        got += 1
                        yield np.asarray(frame, dtype=np.uint8)
                    if got == 0:
                        raise DeviceNotFound(f"Simulated camera: cannot decode video {self._video}.")
                finally:
                    cap.release()
        else:
            i = 0
            while True:
                yield self._images[i % len(self._images)].copy()
                i += 1


class SimCamera(Camera):
    def __init__(self, source: str = "synthetic", *, fps: float = 30.0, size: tuple[int, int] | None = None,
                 url: str = "sim://camera") -> None:  # fmt: skip
        if fps <= 0 or fps > 240:
            raise DeviceError(f"Simulated camera: fps={fps} is out of range (0-240).", code="device.bad_url")
        self.url = url
        self.fps = fps
        self.size = size
        self._source = _Source(source)
        self._slot = FrameSlot()
        self._stop = threading.Event()
        self._plugged = threading.Event()
        self._plugged.set()
        self._lock = threading.Lock()
        self._drop = 0
        self._thread: threading.Thread | None = None
        self._full: BGRImage | None = None  # the newest frame before scaling to ``size``
        self.frames_produced = 0

    # -- Camera ------------------------------------------------------------------------------------
    def info(self) -> DeviceInfo:
        w, h = self.size or (0, 0)
        details = {"source": self._source.kind, "fps": f"{self.fps:g}"}
        if self.size:
            details["size"] = f"{w}x{h}"
        return DeviceInfo(self.url, "camera", "simulated camera", details)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="sim-camera", daemon=True)
        self._thread.start()

    def latest_frame(self) -> tuple[int, BGRImage] | None:
        if not self._plugged.is_set():
            raise DeviceUnplugged("Camera unplugged: reconnect it; the preview resumes by itself.")
        return self._slot.latest()

    def wait_newer(self, seq: int, timeout: float = 5.0) -> tuple[int, BGRImage]:
        """Block until a frame newer than ``seq`` arrives (DeviceTimeout, or the unplug error, otherwise)."""
        return self._slot.wait_newer(seq, timeout)

    def still(self, *, timeout: float = 5.0) -> BGRImage:
        """The next frame at the source's own resolution."""
        if self._thread is None:
            self.start()
        seq, _ = self._slot.wait_newer(self._slot.seq, timeout)
        with self._lock:
            full = self._full
        return full.copy() if full is not None else self._slot.wait_newer(seq - 1, timeout)[1].copy()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # -- faults ------------------------------------------------------------------------------------
    @property
    def unplugged(self) -> bool:
        return not self._plugged.is_set()

    def unplug(self) -> None:
        self._plugged.clear()
        self._slot.fail(DeviceUnplugged("Camera unplugged: reconnect it; the preview resumes by itself."))

    def replug(self) -> None:
        self._slot.clear_error()
        self._plugged.set()

    def drop_frames(self, n: int) -> None:
        with self._lock:
            self._drop += max(0, n)

    # -- the streaming thread ----------------------------------------------------------------------
    def _run(self) -> None:
        period = 1.0 / self.fps
        frames = self._source.frames(self.size if self._source.kind == "synthetic" else None)
        deadline = time.monotonic()
        lost = 0
        try:
            while not self._stop.is_set():
                if not self._plugged.is_set():
                    # unplugged: nothing flows; wait until replugged (bounded waits so close() is prompt)
                    while not self._stop.is_set() and not self._plugged.wait(0.05):
                        pass
                    deadline = time.monotonic()
                    continue
                full = next(frames)
                frame = full
                if self.size is not None and (full.shape[1], full.shape[0]) != self.size:
                    frame = np.asarray(
                        cv2.resize(full, self.size, interpolation=cv2.INTER_AREA), dtype=np.uint8
                    )
                with self._lock:
                    dropping = self._drop > 0
                    if dropping:
                        self._drop -= 1
                    else:
                        self._full = full
                if dropping:
                    lost += 1
                else:
                    self._slot.put(frame, skip=lost)
                    lost = 0
                    self.frames_produced += 1
                deadline += period
                now = time.monotonic()
                if deadline < now - period:
                    deadline = now  # fell behind by more than a frame: do not burst to catch up
                if self._stop.wait(max(0.0, deadline - now)):
                    break
        except DeviceError as exc:
            self._slot.fail(exc)
