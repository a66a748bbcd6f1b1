"""Threads of the kiosk: nothing slow runs on the GUI thread (Anki/Electrum style).

* :class:`TaskRunner`: one background thread for database, crypto and argon2 work. ``run(op, on_done,
  on_error)`` is typed (``op: Callable[[], T]``, ``on_done: Callable[[T], None]``); the outcome returns
  on the GUI thread, and an error without an ``on_error`` is shown to the operator, never dropped.
* :class:`ScannerWorker`: the ONLY thread that talks to the fingerprint scanner. It captures in short
  polls (so a cancel takes effect between polls), reports upload progress, encodes WSQ and scores quality
  off the GUI thread, and when the scanner is unplugged it reports it, reopens it on a timer, and resumes
  the pending capture after replug.
* :class:`CameraWorker`: the ONLY thread that talks to the camera. A timer in its thread takes the newest
  frame, runs the face checks and offers the result in a single slot: the GUI takes the newest, older
  ones are dropped, never queued.

No ``sleep`` and no ``QThread.terminate``: threads stop by quitting their event loop.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QImage

from drivers.errors import DeviceError, DeviceTimeout, DeviceUnplugged
from kiosk_ui import devices
from kiosk_ui.encoder import Encoder

if TYPE_CHECKING:  # NumPy and OpenCV load on the device threads, not before the login screen
    import numpy as np

    from drivers.quality.face import AutoCapture, FaceReport

log = logging.getLogger("kiosk.workers")


T = TypeVar("T")


def operation_name(op: Callable[[], object]) -> str:
    """What a task is called in the log: the function's qualified name (through ``partial``)."""
    func: object = op
    while isinstance(func, functools.partial):
        func = func.func
    return str(getattr(func, "__qualname__", type(func).__name__))


def log_error(error: Exception) -> None:
    """The error shower until the window installs its own (it has no screen to show it on yet)."""
    log.error("task failed before the window could show it: %s", getattr(error, "code", type(error).__name__))


class _Task(Generic[T]):
    """One operation and where its outcome goes; ``execute`` runs on the task thread."""

    def __init__(
        self, op: Callable[[], T], on_done: Callable[[T], None], on_error: Callable[[Exception], None]
    ) -> None:
        self.op = op
        self.on_done = on_done
        self.on_error = on_error
        self.name = operation_name(op)

    def execute(self) -> Callable[[], None]:
        """Run the operation; return the call that delivers its outcome on the GUI thread."""
        try:
            result = self.op()
        except Exception as exc:  # every failure goes to on_error (by default: shown to the operator)
            log.warning("task %s failed: %s", self.name, getattr(exc, "code", type(exc).__name__))
            return functools.partial(self.on_error, exc)
        return functools.partial(self.on_done, result)


class _Relay(QObject):
    """Lives on the GUI thread: receives each task's delivery there and runs it."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: set[int] = set()

    @Slot(int, object)
    def deliver(self, token: int, delivery: object) -> None:
        self.pending.discard(token)
        assert callable(delivery)
        delivery()


class _TaskWorker(QObject):
    finished = Signal(int, object)  # token, the delivery to run on the GUI thread

    @Slot(int, object)
    def run(self, token: int, task: object) -> None:
        assert isinstance(task, _Task)
        self.finished.emit(token, task.execute())


class TaskRunner(QObject):
    """Runs operations one after another on a background thread; outcomes return on the GUI thread.

    ``run(op, on_done, on_error)`` calls ``op()`` on the task thread, then ``on_done(result)`` or
    ``on_error(exception)`` on the GUI thread. Without ``on_error`` the error goes to
    :attr:`show_error`, which the window sets to its error banner: a failure is never dropped.
    """

    _submit = Signal(int, object)

    def __init__(self, name: str = "tasks", show_error: Callable[[Exception], None] = log_error) -> None:
        super().__init__()
        self.show_error = show_error
        self.worker_thread = QThread()
        self.worker_thread.setObjectName(name)
        self._worker = _TaskWorker()
        self._worker.moveToThread(self.worker_thread)
        self._relay = _Relay()
        self._submit.connect(self._worker.run)
        self._worker.finished.connect(self._relay.deliver)
        self._tokens = itertools.count(1)
        self.worker_thread.start()

    def run(
        self,
        op: Callable[[], T],
        on_done: Callable[[T], None],
        on_error: Callable[[Exception], None] | None = None,
    ) -> int:
        token = next(self._tokens)
        self._relay.pending.add(token)
        self._submit.emit(token, _Task(op, on_done, on_error or self._show))
        return token

    def _show(self, error: Exception) -> None:
        self.show_error(error)  # looked up when the error arrives: the window may install it later

    @property
    def busy(self) -> bool:
        return bool(self._relay.pending)

    def stop(self) -> None:
        self.worker_thread.quit()
        self.worker_thread.wait()


def ignore_result(_result: object) -> None:
    """``on_done`` for an operation whose result nobody reads (an audit entry)."""


def grey_to_qimage(pixels: np.ndarray) -> QImage:
    h, w = pixels.shape[:2]
    import numpy as np

    arr = np.ascontiguousarray(pixels, dtype=np.uint8)
    return QImage(arr.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


def bgr_to_qimage(frame: np.ndarray) -> QImage:
    h, w = frame.shape[:2]
    import numpy as np

    arr = np.ascontiguousarray(frame, dtype=np.uint8)
    return QImage(arr.data, w, h, 3 * w, QImage.Format.Format_BGR888).copy()


@dataclass(frozen=True)
class FingerResult:
    """One capture, processed in the scanner thread."""

    job: str
    pixels: np.ndarray  # at 500 ppi (resampled when the scanner is not)
    wsq: bytes
    quality: int  # NFIQ 2
    preview: QImage
    feedback: int = 0  # the drivers' heuristic: instant feedback only
    reasons: tuple[str, ...] = ()


class _DeviceWorkerBase(QObject):
    """Common open/reopen behaviour of a device owned by one thread."""

    state = Signal(str, str)  # ("ready" | "unplugged" | "replugged" | "error", message)
    REOPEN_MS = 300

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.device: Any = None
        self._lost = False
        self._reopen_timer: QTimer | None = None

    def _ensure_timer(self) -> QTimer:
        if self._reopen_timer is None:
            self._reopen_timer = QTimer(self)
            self._reopen_timer.setInterval(self.REOPEN_MS)
            self._reopen_timer.timeout.connect(self._try_reopen)
        return self._reopen_timer

    def _open(self) -> None:
        raise NotImplementedError

    def _after_reopen(self) -> None:
        """Resume whatever was going on when the device went away."""

    @Slot()
    def start(self) -> None:
        try:
            self._open()
        except DeviceError as exc:
            self._lost = True
            self.state.emit("unplugged", exc.message)
            self._ensure_timer().start()
            return
        self.state.emit("ready", "")

    def _device_lost(self, exc: DeviceError) -> None:
        log.warning("device lost: %s", exc.code)
        self._close_quietly()
        if not self._lost:
            self._lost = True
            self.state.emit("unplugged", exc.message)
        self._ensure_timer().start()

    @Slot()
    def _try_reopen(self) -> None:
        try:
            self._open()
        except DeviceError:
            return
        self._lost = False
        self._ensure_timer().stop()
        self.state.emit("replugged", "")
        self._after_reopen()

    def _close_quietly(self) -> None:
        if self.device is not None:
            try:
                self.device.close()
            except Exception:  # closing a vanished device may fail in many ways; it is gone anyway
                log.debug("close failed after unplug")
            self.device = None

    @Slot()
    def shutdown(self) -> None:
        if self._reopen_timer is not None:
            self._reopen_timer.stop()
        self._close_quietly()


class ScannerWorker(_DeviceWorkerBase):
    """Owns the fingerprint scanner. Jobs are named (``"finger:2"``, ``"login"``, ``"test"``)."""

    progress = Signal(str, int, int)  # job, done, total
    captured = Signal(object)  # FingerResult
    failed = Signal(str, str, str)  # job, code, message
    finger_wait = Signal(str)  # job: waiting for a finger

    POLL_SECONDS = 0.4

    def __init__(self, url: str, *, trace: Any = None) -> None:
        super().__init__(url)
        self.trace = trace
        self._job: str | None = None
        self._cancel = threading.Event()
        self.encoder = Encoder()

    def _open(self) -> None:
        self.encoder.warm()
        self.device = devices.open_scanner(self.url, trace=self.trace)

    @Slot()
    def shutdown(self) -> None:
        super().shutdown()
        self.encoder.close()

    def _after_reopen(self) -> None:
        if self._job is not None:
            QTimer.singleShot(0, self._poll)

    @Slot(str)
    def capture(self, job: str) -> None:
        """Wait for a finger (polling), capture, encode and score it; emits ``captured`` once."""
        self._job = job
        self._cancel.clear()
        self.finger_wait.emit(job)
        if not self._lost:
            QTimer.singleShot(0, self._poll)

    def cancel(self) -> None:
        """Thread-safe: the current capture stops at its next poll."""
        self._cancel.set()

    @Slot()
    def _poll(self) -> None:
        job = self._job
        if job is None or self._lost:
            return
        if self._cancel.is_set():
            self._job = None
            return
        if self.device is None:
            self._device_lost(DeviceUnplugged())
            return
        try:
            image = self.device.capture(
                timeout=self.POLL_SECONDS, progress=lambda d, t: self.progress.emit(job, d, t)
            )
        except DeviceTimeout:
            QTimer.singleShot(0, self._poll)  # no finger yet: poll again from the event loop
            return
        except DeviceUnplugged as exc:
            self._device_lost(exc)
            return
        except DeviceError as exc:
            if devices.looks_unplugged(exc):
                self._device_lost(exc)
                return
            self._job = None
            self.failed.emit(job, exc.code, exc.message)
            return
        if self._cancel.is_set():
            self._job = None
            return
        self._job = None
        try:
            done = self.encoder.encode_and_score(image.pixels, image.ppi)
        except Exception as exc:
            log.warning("finger processing failed: %s", type(exc).__name__)
            self.failed.emit(job, "finger.processing", "The image could not be processed: capture again.")
            return
        self.captured.emit(
            FingerResult(
                job,
                done.pixels,
                done.wsq,
                done.quality,
                grey_to_qimage(done.pixels),
                done.feedback,
                done.reasons,
            )
        )

    @Slot()
    def info(self) -> None:
        if self.device is not None:
            i = self.device.info()
            self.state.emit("info", f"{i.model} {i.url}")


@dataclass(frozen=True)
class FrameResult:
    """A preview frame with its face checks (a :class:`drivers.quality.face.FaceReport`)."""

    seq: int
    image: QImage
    report: FaceReport
    capture_now: bool
    frame: np.ndarray


class CameraWorker(_DeviceWorkerBase):
    """Owns the camera: preview at ``fps`` with face checks; the GUI sees only the newest result."""

    frame_ready = Signal()  # a new result waits in the slot: call take()
    still_ready = Signal(object)  # (jpeg bytes, checks dict)
    failed = Signal(str, str)

    def __init__(self, url: str, fps: int = 15) -> None:
        super().__init__(url)
        self._lock = threading.Lock()
        self._slot: FrameResult | None = None
        self._last_seq = -1
        self._timer: QTimer | None = None
        self._interval = max(10, 1000 // fps)
        self._preview = False
        self._auto: AutoCapture | None = None  # made on the camera's thread (it imports OpenCV)
        self.frames_seen = 0
        self.frames_dropped = 0

    def _autocapture(self) -> AutoCapture:
        if self._auto is None:
            from drivers.quality.face import AutoCapture

            self._auto = AutoCapture()
        return self._auto

    def _open(self) -> None:
        self.device = devices.open_camera(self.url)
        self.device.start()

    def _after_reopen(self) -> None:
        if self._preview and self._timer is not None:
            self._timer.start()

    @Slot()
    def start_preview(self) -> None:
        self._preview = True
        self._autocapture().reset()
        if self._timer is None:
            self._timer = QTimer(self)
            self._timer.setInterval(self._interval)
            self._timer.timeout.connect(self._tick)
        self._timer.start()

    @Slot()
    def stop_preview(self) -> None:
        self._preview = False
        if self._timer is not None:
            self._timer.stop()
        with self._lock:
            self._slot = None

    def take(self) -> FrameResult | None:
        """GUI thread: the newest result, if any (older ones were dropped)."""
        with self._lock:
            result, self._slot = self._slot, None
        return result

    @Slot()
    def _tick(self) -> None:
        if self._lost or self.device is None:
            return
        try:
            latest = self.device.latest_frame()
        except DeviceError as exc:
            if self._timer is not None:
                self._timer.stop()
            self._device_lost(exc)
            return
        if latest is None:
            return
        seq, frame = latest
        if seq == self._last_seq:
            return
        self._last_seq = seq
        report = devices.check_face(frame)
        capture_now = self._autocapture().feed(report)
        result = FrameResult(seq, bgr_to_qimage(frame), report, capture_now, frame)
        with self._lock:
            pending = self._slot is not None
            self._slot = result
        self.frames_seen += 1
        if pending:
            self.frames_dropped += 1  # the GUI had not taken the previous one: it is replaced
        else:
            self.frame_ready.emit()

    @Slot(object)
    def make_portrait(self, frame: object) -> None:
        """Turn a frame (or a fresh still) into the JPEG portrait with its checks, in this thread."""
        import numpy as np

        try:
            if not isinstance(frame, np.ndarray):
                frame = self.device.still()
            assert isinstance(frame, np.ndarray)
            jpeg, checks = devices.portrait(frame)
        except DeviceError as exc:
            self.failed.emit(exc.code, exc.message)
            return
        self.still_ready.emit((jpeg, checks))


class DeviceThread:
    """A device worker and the thread that owns it; ``stop`` quits the loop and waits (no terminate)."""

    def __init__(self, worker: _DeviceWorkerBase, name: str) -> None:
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName(name)
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.start)
        self.thread.start()

    def stop(self) -> None:
        if isinstance(self.worker, ScannerWorker):
            self.worker.cancel()
        # shutdown runs in the worker's thread, then the loop quits.
        QTimer.singleShot(0, self.worker, self.worker.shutdown)
        QTimer.singleShot(0, self.worker, self.thread.quit)
        self.thread.wait(5000)


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0
