"""Step 3: the photograph. Live preview from the camera thread (newest frame only), the face checks drawn
over it with the first instruction to follow, and automatic capture when every check passes."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from kiosk_ui.context import KioskContext
from kiosk_ui.widgets import Page, big_button, message_label, title_label
from kiosk_ui.workers import CameraWorker, FrameResult

# What each face check is called on screen (the drivers' names are identifiers).
CHECK_NAMES: dict[str, tuple[str, str]] = {
    "one_face": ("One face", "ایک چہرہ"),
    "eyes": ("Both eyes", "دونوں آنکھیں"),
    "eye_distance": ("Close enough", "مناسب فاصلہ"),
    "roll": ("Head level", "سر سیدھا"),
    "centred": ("Centred", "درمیان میں"),
    "head_height": ("Head size", "سر کا سائز"),
    "sharpness": ("Sharp", "واضح"),
    "exposure": ("Light", "روشنی"),
    "background": ("Plain background", "سادہ پس منظر"),
}


class FacePage(Page):
    holds_pii = True

    def __init__(self, ctx: KioskContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        lay = QVBoxLayout(self)
        self.title = title_label()
        lay.addWidget(self.title)
        row = QHBoxLayout()
        self.preview = QLabel()
        self.preview.setObjectName("facePreview")
        self.preview.setMinimumSize(400, 300)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background:#20242a;")
        self.portrait = QLabel()
        self.portrait.setObjectName("facePortrait")
        self.portrait.setFixedSize(240, 320)
        self.portrait.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.portrait.setStyleSheet("border:2px solid #7a808a;")
        row.addWidget(self.preview, 3)
        row.addWidget(self.portrait, 1)
        lay.addLayout(row, 1)
        self.instruction = message_label()
        self.instruction.setObjectName("faceInstruction")
        self.checks = QLabel()
        self.checks.setWordWrap(True)
        self.auto = QLabel()
        buttons = QHBoxLayout()
        self.take_btn = big_button()
        self.retake_btn = big_button()
        buttons.addWidget(self.take_btn)
        buttons.addWidget(self.retake_btn)
        for w in (self.instruction, self.checks, self.auto):
            lay.addWidget(w)
        lay.addLayout(buttons)
        self.take_btn.clicked.connect(lambda: self._capture(None))
        self.retake_btn.clicked.connect(self.retake)
        self._worker: CameraWorker | None = None
        self._capturing = False
        self._last: FrameResult | None = None
        self.frames_shown = 0

    def connect_camera(self) -> None:
        w = self._worker = self.ctx.camera_worker
        w.frame_ready.connect(self._on_frame)
        w.still_ready.connect(self._on_still)
        w.failed.connect(lambda code, msg: self.instruction.setText(msg))

    def retranslate(self) -> None:
        self.title.setText(self.t("face.title"))
        self.auto.setText(self.t("face.auto"))
        self.take_btn.setText(self.t("face.take"))
        self.retake_btn.setText(self.t("face.retake"))
        if self.ctx.wizard is not None and self.ctx.wizard.face is not None:
            self.instruction.setText(self.t("face.ok"))
        elif self._last is not None:
            self._describe(self._last)
        else:
            self.instruction.setText(self.t("face.waiting"))

    def enter(self) -> None:
        w = self.ctx.wizard
        if w is not None and w.face is not None:
            self._show_portrait(w.face.jpeg)
            self.instruction.setText(self.t("face.ok"))
        else:
            self._start()

    def leave(self) -> None:
        self._stop()

    def _start(self) -> None:
        self._capturing = False
        self.instruction.setText(self.t("face.waiting"))
        if self.ctx.camera is not None:
            worker = self.ctx.camera_worker
            QTimer.singleShot(0, worker, worker.start_preview)

    def _stop(self) -> None:
        if self.ctx.camera is not None:
            worker = self.ctx.camera_worker
            QTimer.singleShot(0, worker, worker.stop_preview)

    def _on_frame(self) -> None:
        result = self._worker.take() if self._worker is not None else None
        if (
            result is None
            or self._capturing
            or (not self.isVisible() and not self.ctx.extra.get("offscreen"))
        ):
            return
        self._last = result
        self.frames_shown += 1
        self.preview.setPixmap(self._overlay(result))
        self._describe(result)
        if result.capture_now:
            self._capture(result)

    def _describe(self, result: FrameResult) -> None:
        failure = result.report.first_failure()
        if failure is None:
            self.instruction.setText(self.t("face.hold"))
        else:
            self.instruction.setText(self.ctx.tr.pick(failure.instruction_en, failure.instruction_ur))
        names = [self.ctx.tr.pick(*CHECK_NAMES.get(c.name, (c.name, c.name))) for c in result.report.checks]
        marks = ["✔ " if c.passed else "✘ " for c in result.report.checks]
        self.checks.setText("   ".join(m + n for m, n in zip(marks, names, strict=True)))

    def _overlay(self, result: FrameResult) -> QPixmap:
        img: QImage = result.image.scaled(
            self.preview.width(), self.preview.height(), Qt.AspectRatioMode.KeepAspectRatio
        )
        sx = img.width() / max(1, result.image.width())
        pix = QPixmap.fromImage(img)
        p = QPainter(pix)
        ok = result.report.all_passed
        p.setPen(QPen(QColor("#2e9d57" if ok else "#f2b01e"), 4))
        if result.report.face_box is not None:
            x, y, w, h = result.report.face_box
            p.drawRect(QRectF(x * sx, y * sx, w * sx, h * sx))
        for ex, ey in result.report.eyes:
            p.drawEllipse(QRectF(ex * sx - 6, ey * sx - 6, 12, 12))
        # the ICAO oval the face should fill
        p.setPen(QPen(QColor(255, 255, 255, 160), 2, Qt.PenStyle.DashLine))
        p.drawEllipse(QRectF(pix.width() * 0.3, pix.height() * 0.12, pix.width() * 0.4, pix.height() * 0.7))
        p.end()
        return pix

    def _capture(self, result: FrameResult | None) -> None:
        if self._capturing or self.ctx.camera is None:
            return
        self._capturing = True
        worker = self.ctx.camera_worker
        frame = result.frame if result is not None else None
        QTimer.singleShot(0, worker, lambda: worker.make_portrait(frame))

    def _on_still(self, payload: object) -> None:
        jpeg, checks = payload  # type: ignore[misc]
        w = self.ctx.wizard
        if w is None or not self._capturing:
            return
        w.set_face(jpeg, checks)
        self._stop()
        self._show_portrait(jpeg)
        self.instruction.setText(self.t("face.ok"))

    def _show_portrait(self, jpeg: bytes) -> None:
        img = QImage.fromData(jpeg, "JPEG")
        self.portrait.setPixmap(QPixmap.fromImage(img).scaled(240, 320, Qt.AspectRatioMode.KeepAspectRatio))

    def retake(self) -> None:
        if self.ctx.wizard is not None:
            self.ctx.wizard.clear_face()
        self.portrait.clear()
        self._start()

    def show_problems(self, problems: list[object]) -> None:
        first = problems[0]
        self.instruction.setText(self.ctx.tr.pick(first.en, first.ur))  # type: ignore[attr-defined]

    def clear_pii(self) -> None:
        self._stop()
        self._capturing = False
        self._last = None
        self.preview.clear()
        self.portrait.clear()
        self.checks.clear()
        self.instruction.clear()
