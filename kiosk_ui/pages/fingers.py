"""Step 4: ten fingers. Hand diagram, live quality, up to three attempts per finger, then an exception
with its reason; a progress bar while a serial scanner uploads the image (about 7 s at 57600 baud)."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from kiosk_ui.context import KioskContext, cancel_capture, request_capture
from kiosk_ui.widgets import HandDiagram, Page, big_button, message_label, title_label
from kiosk_ui.workers import FingerResult
from station.enrollment import FingerCapture, FingerException, FingerExceptionReason, FingerPosition
from station.errors import StationError


def job_for(position: FingerPosition) -> str:
    return f"finger:{int(position)}"


class FingersPage(Page):
    holds_pii = True

    def __init__(self, ctx: KioskContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.previews: dict[FingerPosition, QImage] = {}
        self.current: FingerPosition | None = None
        self._job: str | None = None
        lay = QVBoxLayout(self)
        self.title = title_label()
        lay.addWidget(self.title)
        top = QHBoxLayout()
        self.hands = HandDiagram()
        self.hands.finger_clicked.connect(lambda n: self.retake(FingerPosition(n)))
        self.preview = QLabel()
        self.preview.setObjectName("fingerPreview")
        self.preview.setFixedSize(200, 240)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("border:2px solid #7a808a; background:white;")
        top.addWidget(self.hands, 3)
        top.addWidget(self.preview, 1)
        lay.addLayout(top, 1)
        self.prompt = message_label()
        self.prompt.setObjectName("fingerPrompt")
        self.quality = QLabel()
        self.quality.setObjectName("fingerQuality")
        self.progress = QProgressBar()
        self.progress.setObjectName("uploadProgress")
        self.progress.setTextVisible(True)
        self.progress.hide()
        self._pending_progress: tuple[int, int] | None = None
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(80)
        self._progress_timer.timeout.connect(self._apply_progress)
        for w in (self.prompt, self.quality, self.progress):
            lay.addWidget(w)
        exc = QGridLayout()
        self.reason = QComboBox()
        self.reason.setObjectName("exceptionReason")
        for r in FingerExceptionReason:
            self.reason.addItem(r.en, r.value)
        self.reason.setMinimumHeight(52)
        self.note_label = QLabel()
        self.note = QLineEdit()
        self.note.setMinimumHeight(52)
        self.record_btn = big_button()
        self.record_btn.setObjectName("recordException")
        self.keep_btn = big_button()
        self.skip_btn = big_button()
        self.skip_btn.setObjectName("cannotCapture")
        exc.addWidget(self.reason, 0, 0)
        exc.addWidget(self.note_label, 0, 1)
        exc.addWidget(self.note, 0, 2)
        exc.addWidget(self.record_btn, 1, 0)
        exc.addWidget(self.keep_btn, 1, 1)
        exc.addWidget(self.skip_btn, 1, 2)
        lay.addLayout(exc)
        self.record_btn.clicked.connect(self.record_exception)
        self.keep_btn.clicked.connect(self.keep_best)
        self.skip_btn.clicked.connect(self._offer_exception)
        self._exception_mode(False)

    def connect_scanner(self) -> None:
        w = self.ctx.scanner_worker
        w.captured.connect(self._on_captured)
        w.progress.connect(self._on_progress)
        w.failed.connect(self._on_failed)

    def retranslate(self) -> None:
        self.title.setText(self.t("fingers.title"))
        for i, r in enumerate(FingerExceptionReason):
            self.reason.setItemText(i, r.ur if self.ctx.tr.urdu else r.en)
        self.note_label.setText(self.t("fingers.note"))
        self.record_btn.setText(self.t("fingers.record_exc"))
        self.keep_btn.setText(self.t("fingers.keep_best"))
        self.skip_btn.setText(self.t("fingers.skip"))
        self._prompt()

    def _name(self, pos: FingerPosition) -> str:
        return pos.ur if self.ctx.tr.urdu else pos.en

    def _prompt(self) -> None:
        if self.current is None:
            self.prompt.setText(self.t("fingers.done") if self.ctx.wizard is not None else "")
        elif self.reason.isVisible() and not self.skip_btn.isVisible():
            self.prompt.setText(self.t("fingers.exception"))
        else:
            self.prompt.setText(self.t("fingers.place", finger=self._name(self.current)))

    def _exception_mode(self, on: bool, *, can_keep: bool = False) -> None:
        for w in (self.reason, self.note_label, self.note, self.record_btn):
            w.setVisible(on)
        self.keep_btn.setVisible(on and can_keep)
        self.skip_btn.setVisible(not on and self.current is not None)

    def _refresh_hands(self) -> None:
        w = self.ctx.wizard
        for pos in FingerPosition:
            item = w.fingers.get(pos) if w is not None else None
            state = "todo"
            if isinstance(item, FingerCapture):
                state = "done"
            elif isinstance(item, FingerException):
                state = "exception"
            elif pos == self.current:
                state = "current"
            self.hands.set_state(pos, state)

    def enter(self) -> None:
        self._next_finger()

    def leave(self) -> None:
        self._cancel()

    def _cancel(self) -> None:
        if self._job is not None and self.ctx.scanner is not None:
            cancel_capture(self.ctx)
        self._job = None
        self.progress.hide()

    def _next_finger(self) -> None:
        w = self.ctx.wizard
        if w is None:
            return
        self.current = w.current_finger()
        self._exception_mode(False)
        self._refresh_hands()
        self._prompt()
        if self.current is not None:
            self._capture(self.current)

    def _capture(self, pos: FingerPosition) -> None:
        if self.ctx.scanner is None:
            return
        self._job = job_for(pos)
        self.progress.setValue(0)
        request_capture(self.ctx, self._job)

    def _on_progress(self, job: str, done: int, total: int) -> None:
        """Upload progress arrives per data packet; the bar is redrawn at most ~12 times a second
        (QProgressBar repaints synchronously on every setValue)."""
        if job != self._job:
            return
        self._pending_progress = (done, total)
        if not self._progress_timer.isActive():
            self._progress_timer.start()

    def _apply_progress(self) -> None:
        if self._pending_progress is None or self._job is None:
            return
        done, total = self._pending_progress
        self._pending_progress = None
        uploading = done < total
        if uploading:
            self.progress.setMaximum(max(1, total))
            self.progress.setValue(done)
            if not self.progress.isVisible():
                self.progress.show()
                self.prompt.setText(self.t("fingers.uploading"))

    def _on_failed(self, job: str, code: str, message: str) -> None:
        if job == self._job and self.current is not None:
            self.quality.setText(message)
            self._capture(self.current)

    def _on_captured(self, result: object) -> None:
        w = self.ctx.wizard
        if (
            not isinstance(result, FingerResult)
            or result.job != self._job
            or w is None
            or self.current is None
        ):
            return
        self._job = None
        self.progress.hide()
        pos = self.current
        self.preview.setPixmap(
            QPixmap.fromImage(result.preview).scaled(200, 240, Qt.AspectRatioMode.KeepAspectRatio)
        )
        try:
            outcome = w.finger_attempt(pos, result.wsq, result.quality)
        except StationError as exc:
            self.quality.setText(self.ctx.tr.pick(exc.message, exc.urdu))
            return
        self.quality.setText(
            self.t("fingers.quality", q=outcome.quality, a=outcome.attempts, n=w.max_attempts)
            + ("" if outcome.accepted else "  " + self.t("fingers.low"))
        )
        best = w.best_attempt(pos)
        if outcome.accepted or (best is not None and best.quality == outcome.quality):
            self.previews[pos] = result.preview
        if outcome.accepted:
            self._next_finger()
        elif outcome.needs_exception:
            self._exception_mode(True, can_keep=True)
            self.reason.setCurrentIndex(self.reason.findData(FingerExceptionReason.UNUSABLE.value))
            self.prompt.setText(self.t("fingers.exception"))
        else:
            self._capture(pos)

    def _offer_exception(self) -> None:
        self._cancel()
        self._exception_mode(True)
        self.prompt.setText(self.t("fingers.exception"))

    def record_exception(self) -> None:
        w = self.ctx.wizard
        if w is None or self.current is None:
            return
        reason = FingerExceptionReason(self.reason.currentData())
        try:
            w.set_exception(self.current, reason, self.note.text())
        except StationError as exc:
            self.quality.setText(self.ctx.tr.pick(exc.message, exc.urdu))
            return
        self.previews.pop(self.current, None)
        self.note.setText("")
        self._next_finger()

    def keep_best(self) -> None:
        w = self.ctx.wizard
        if w is None or self.current is None:
            return
        w.keep_best(self.current)
        self._next_finger()

    def retake(self, pos: FingerPosition) -> None:
        w = self.ctx.wizard
        if w is None:
            return
        self._cancel()
        w.retake(pos)
        self.previews.pop(pos, None)
        self._next_finger()

    def show_problems(self, problems: list[object]) -> None:
        first = problems[0]
        self.prompt.setText(self.ctx.tr.pick(first.en, first.ur))  # type: ignore[attr-defined]

    def clear_pii(self) -> None:
        self._cancel()
        self.previews.clear()
        self.current = None
        self.preview.clear()
        self.quality.clear()
        self.prompt.clear()
        self.note.setText("")
        self._exception_mode(False)
        self._refresh_hands()
