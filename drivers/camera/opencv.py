"""V4L2 camera through OpenCV's ``VideoCapture`` (``camera:///dev/video0?width=1280&height=720&fps=30&fourcc=MJPG``).

One thread owns the capture: it reads frames as fast as the camera delivers them and publishes only
the newest (``FrameSlot``), so a slow reader never sees a backlog. A still is taken on that same
thread at the camera's largest resolution and the preview mode is restored after it.

Unplug: a run of failed reads, or the device node disappearing (checked on a failed read and
every quarter second), marks the camera unplugged
(``latest_frame`` raises ``DeviceUnplugged``, ``unplugged`` is True); the thread releases the
capture and reopens it when the node is back, and frames flow again.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from drivers.base import BGRImage, Camera, DeviceInfo
from drivers.camera.slot import FrameSlot
from drivers.errors import DeviceBusy, DeviceError, DeviceTimeout, DeviceUnplugged

log = logging.getLogger(__name__)

FAILED_READS_UNPLUGGED = 10  # consecutive failed reads that mean the camera went away
REOPEN_INTERVAL = 0.5  # seconds between attempts to reopen an unplugged camera
NODE_CHECK_INTERVAL = 0.25  # seconds between checks that the device node still exists while frames flow
STILL_MAX = (10_000, 10_000)  # asked for a still: V4L2 clamps it to the largest size the camera has

CaptureFactory = Callable[[str, int], Any]  # (path, api preference) -> cv2.VideoCapture-like


@dataclass(frozen=True)
class Mode:
    width: int = 1280
    height: int = 720
    fps: float = 30.0
    fourcc: str = "MJPG"


def _default_factory(path: str, api: int) -> Any:
    return cv2.VideoCapture(path, api)


class OpenCVCamera(Camera):
    def __init__(self, path: str, mode: Mode | None = None, *, url: str | None = None,
                 api: int = cv2.CAP_V4L2, factory: CaptureFactory = _default_factory,
                 node_exists: Callable[[str], bool] = os.path.exists) -> None:  # fmt: skip
        self.path = path
        self.mode = mode or Mode()
        self.url = url or f"camera://{path}"
        self._api = api
        self._factory = factory
        self._node_exists = node_exists
        self._slot = FrameSlot()
        self._stop = threading.Event()
        self._requests: queue.Queue[tuple[float, queue.Queue[BGRImage | DeviceError]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._cap: Any = None
        self._unplugged = threading.Event()
        self.frame_size: tuple[int, int] | None = None
        self.reopened = 0

    # -- Camera ------------------------------------------------------------------------------------
    def info(self) -> DeviceInfo:
        details = {
            "path": self.path,
            "mode": f"{self.mode.width}x{self.mode.height}@{self.mode.fps:g} {self.mode.fourcc}",
        }
        if self.frame_size:
            details["frame"] = f"{self.frame_size[0]}x{self.frame_size[1]}"
        model = "V4L2 camera (OpenCV)"
        from drivers.camera.enumerate import list_cameras

        for cam in list_cameras():
            if cam.path == self.path:
                model = cam.name
                if cam.usb_id:
                    details["usb_id"] = cam.usb_id
        details["unplugged"] = "yes" if self.unplugged else "no"
        return DeviceInfo(self.url, "camera", model, details)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._cap = self._open()  # the first open reports its error to the caller
        self._thread = threading.Thread(target=self._run, name=f"camera {self.path}", daemon=True)
        self._thread.start()

    @property
    def unplugged(self) -> bool:
        return self._unplugged.is_set()

    def latest_frame(self) -> tuple[int, BGRImage] | None:
        return self._slot.latest()

    def wait_newer(self, seq: int, timeout: float = 5.0) -> tuple[int, BGRImage]:
        """Block until a frame newer than ``seq`` arrives (DeviceTimeout, or the unplug error, otherwise)."""
        return self._slot.wait_newer(seq, timeout)

    def still(self, *, timeout: float = 5.0) -> BGRImage:
        if self._thread is None:
            self.start()
        answer: queue.Queue[BGRImage | DeviceError] = queue.Queue(maxsize=1)
        self._requests.put((timeout, answer))
        try:
            result = answer.get(timeout=timeout + 2.0)
        except queue.Empty:
            raise DeviceTimeout("The camera did not take the photo in time: press Retry.") from None
        if isinstance(result, DeviceError):
            raise result
        return result

    def close(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)
            if thread.is_alive():
                log.warning("camera.close_slow path=%s", self.path)
                return  # the thread releases the capture when its read returns
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    # -- the capture thread ------------------------------------------------------------------------
    def _open(self) -> Any:
        if not self._node_exists(self.path):
            raise DeviceUnplugged(f"Camera {self.path} is not connected: plug it in; it is found by itself.")
        cap = self._factory(self.path, self._api)
        if not cap.isOpened():
            cap.release()
            raise DeviceBusy(f"Camera {self.path} cannot be opened: close any other program using it.")
        self._configure(cap, self.mode.width, self.mode.height)
        return cap

    def _configure(self, cap: Any, width: int, height: int) -> None:
        if len(self.mode.fourcc) == 4:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*self.mode.fourcc))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        cap.set(cv2.CAP_PROP_FPS, self.mode.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # V4L2: keep the driver's queue short (latest wins)

    def _mark_unplugged(self, why: str) -> None:
        if not self._unplugged.is_set():
            log.warning("camera.unplugged path=%s reason=%s", self.path, why)
        self._unplugged.set()
        self._slot.fail(DeviceUnplugged("Camera unplugged: reconnect it; the preview resumes by itself."))
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def _take_still(self, timeout: float) -> BGRImage:
        cap = self._cap
        if cap is None:
            raise DeviceUnplugged("Camera unplugged: reconnect it and press Retry.")
        self._configure(cap, *STILL_MAX)
        try:
            deadline = time.monotonic() + timeout
            frame = None
            for _ in range(3):  # the first frames after a mode change may be stale or partial
                while time.monotonic() < deadline:
                    ok, candidate = cap.read()
                    if ok and candidate is not None:
                        frame = candidate
                        break
                else:
                    break
            if frame is None:
                raise DeviceTimeout("The camera did not take the photo in time: press Retry.")
            return np.asarray(frame, dtype=np.uint8)
        finally:
            self._configure(cap, self.mode.width, self.mode.height)

    def _serve_requests(self) -> None:
        while True:
            try:
                timeout, answer = self._requests.get_nowait()
            except queue.Empty:
                return
            try:
                answer.put(self._take_still(timeout))
            except DeviceError as exc:
                answer.put(exc)

    def _run(self) -> None:
        try:
            self._stream()
        finally:
            if self._stop.is_set() and self._cap is not None:
                self._cap.release()
                self._cap = None

    def _stream(self) -> None:
        failures = 0
        node_checked = time.monotonic()
        while not self._stop.is_set():
            if self._cap is None:
                while True:  # answer pending stills with the reason
                    try:
                        _, answer = self._requests.get_nowait()
                    except queue.Empty:
                        break
                    answer.put(DeviceUnplugged("Camera unplugged: reconnect it and press Retry."))
                if self._stop.wait(REOPEN_INTERVAL):
                    break
                try:
                    self._cap = self._open()
                except DeviceError:
                    continue
                failures = 0
                self.reopened += 1
                self._unplugged.clear()
                self._slot.clear_error()
                log.info("camera.replugged path=%s", self.path)
                continue
            self._serve_requests()
            ok, frame = self._cap.read()
            now = time.monotonic()
            if now - node_checked >= NODE_CHECK_INTERVAL:
                node_checked = now
                if not self._node_exists(self.path):
                    self._mark_unplugged("node gone")
                    continue
            if ok and frame is not None:
                failures = 0
                self.frame_size = (int(frame.shape[1]), int(frame.shape[0]))
                self._slot.put(np.asarray(frame, dtype=np.uint8))
                continue
            failures += 1
            if not self._node_exists(self.path):
                self._mark_unplugged("node gone")
            elif failures >= FAILED_READS_UNPLUGGED:
                self._mark_unplugged("reads failing")
            elif self._stop.wait(0.01):
                break
