"""Step 5: every field and image on one screen, each section editable; then seal and save (task thread)."""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from kiosk_ui.context import KioskContext
from kiosk_ui.i18n import ltr
from kiosk_ui.pages.demographics import LTR_FIELDS
from kiosk_ui.services import KioskServices
from kiosk_ui.widgets import Page, big_button, message_label, title_label
from station.enrollment import ApplicationKind, Enrollment, FingerException, FingerPosition, Gender
from station.errors import StationError
from station.wizard import ALL_FIELDS, Receipt, Step, StepBlocked


def commit_and_draw_qr(services: KioskServices, enrollment: Enrollment) -> tuple[Receipt, bytes]:
    """The review's task: seal and queue the enrollment, then draw its receipt's QR (task thread)."""
    from kiosk_ui.printing import qr_png  # loaded on this task thread, not at start-up

    receipt = services.commit(enrollment)
    return receipt, qr_png(receipt.qr_payload)  # the QR is drawn here, not on the GUI thread


class ReviewPage(Page):
    holds_pii = True
    edit_requested = Signal(int)  # Step
    committed = Signal(object)  # Receipt

    def __init__(self, ctx: KioskContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.finger_previews: dict[FingerPosition, QImage] = {}
        self.qr_png: bytes | None = None
        lay = QVBoxLayout(self)
        self.title = title_label()
        lay.addWidget(self.title)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        body = QWidget()
        self.grid = QGridLayout(body)
        self.names: dict[str, QLabel] = {}
        self.values: dict[str, QLabel] = {}
        for i, name in enumerate(ALL_FIELDS):
            n, v = QLabel(), QLabel()
            v.setObjectName(f"review_{name}")
            v.setWordWrap(True)
            v.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
            self.grid.addWidget(n, i, 0)
            self.grid.addWidget(v, i, 1)
            self.names[name], self.values[name] = n, v
        scroll.setWidget(body)
        row = QHBoxLayout()
        row.addWidget(scroll, 3)
        side = QVBoxLayout()
        self.face = QLabel()
        self._face_for: bytes | None = None  # the JPEG the cached thumbnail was made from
        self._face_thumb = QPixmap()
        self.face.setObjectName("reviewFace")
        self.face.setFixedSize(135, 180)
        side.addWidget(self.face)
        fingers = QGridLayout()
        self.fingers: dict[FingerPosition, QLabel] = {}
        for pos in FingerPosition:
            lbl = QLabel()
            lbl.setFixedSize(64, 76)
            lbl.setAlignment(Qt.AlignmentFlag.AlignCenter)
            lbl.setWordWrap(True)
            lbl.setStyleSheet("border:1px solid #7a808a; font-size:9pt;")
            fingers.addWidget(lbl, (pos - 1) // 5, (pos - 1) % 5)
            self.fingers[pos] = lbl
        side.addLayout(fingers)
        row.addLayout(side, 2)
        lay.addLayout(row, 1)
        edits = QHBoxLayout()
        self.edit_btns: dict[Step, QPushButton] = {}
        for step in (Step.KIND_CONSENT, Step.DEMOGRAPHICS, Step.FACE, Step.FINGERS):
            b = big_button()
            b.setObjectName(f"edit_{step.name.lower()}")
            b.clicked.connect(lambda _=False, s=step: self.edit_requested.emit(int(s)))
            edits.addWidget(b)
            self.edit_btns[step] = b
        lay.addLayout(edits)
        self.message = message_label()
        self.message.setObjectName("reviewMessage")
        lay.addWidget(self.message)
        self.commit_btn = big_button(primary=True)
        self.commit_btn.setObjectName("commit")
        self.commit_btn.clicked.connect(self.commit)
        lay.addWidget(self.commit_btn)

    def retranslate(self) -> None:
        self.title.setText(self.t("review.title"))
        for name, lbl in self.names.items():
            key = f"f.{name}"
            lbl.setText(
                self.t(key)
                if key in _keys()
                else self.t(
                    {"kind": "kind.title", "purpose": "consent.purpose", "consent": "consent.check"}[name]
                )
            )
        labels = {
            Step.KIND_CONSENT: "step.kind",
            Step.DEMOGRAPHICS: "step.demo",
            Step.FACE: "step.face",
            Step.FINGERS: "step.fingers",
        }
        for step, b in self.edit_btns.items():
            b.setText(self.t("review.edit") + ": " + self.t(labels[step]))
        self.commit_btn.setText(self.t("review.commit"))
        self.enter()

    def enter(self) -> None:
        w = self.ctx.wizard
        if w is None:
            return
        urdu = self.ctx.tr.urdu
        for name, lbl in self.values.items():
            value = w.get(name, "")
            if name == "consent":
                text = self.t("status.yes") if value else self.t("status.no")
            elif name in ("kind", "gender") and value:
                enum_type = ApplicationKind if name == "kind" else Gender
                try:
                    member = enum_type(value)
                    text = member.ur if urdu else member.en
                except ValueError:
                    text = str(value)
            elif name in LTR_FIELDS:
                text = ltr(value) if urdu else str(value)
            else:
                text = str(value)
            lbl.setText(text)
        if w.face is not None:
            if self._face_for is not w.face.jpeg:  # decoded once per photo, not on every entry (bench/ui.py)
                img = QImage.fromData(w.face.jpeg)  # the format is read from the bytes
                self._face_thumb = QPixmap.fromImage(img).scaled(135, 180, Qt.AspectRatioMode.KeepAspectRatio)
                self._face_for = w.face.jpeg
            self.face.setPixmap(self._face_thumb)
        else:
            self.face.clear()
        for pos, lbl in self.fingers.items():
            item = w.fingers.get(pos)
            preview = self.finger_previews.get(pos)
            if isinstance(item, FingerException):
                lbl.setPixmap(QPixmap())
                reason = item.reason.ur if urdu else item.reason.en
                lbl.setText(f"{int(pos)}\n{reason}")
            elif item is not None and preview is not None:
                lbl.setPixmap(QPixmap.fromImage(preview).scaled(62, 74, Qt.AspectRatioMode.KeepAspectRatio))
            elif item is not None:
                lbl.setText(f"{int(pos)}\n{item.quality}")
            else:
                lbl.setPixmap(QPixmap())
                lbl.setText(str(int(pos)))
        if w.commit_error is not None:
            self.message.setText(self.ctx.tr.pick(w.commit_error.message, w.commit_error.urdu))
        self.commit_btn.setEnabled(w.step is Step.REVIEW)

    def commit(self) -> None:
        w = self.ctx.wizard
        if w is None:
            return
        try:
            enrollment = w.begin_commit()
        except StepBlocked as exc:
            self.message.setText(self.ctx.tr.pick(exc.message, exc.urdu))
            return
        self.commit_btn.setEnabled(False)
        self.message.setText(self.t("review.sealing"))

        self.ctx.tasks.run(
            partial(commit_and_draw_qr, self.ctx.services, enrollment), self._done, self._failed
        )

    def _done(self, result: tuple[Receipt, bytes]) -> None:
        receipt, qr = result
        self.qr_png = qr
        w = self.ctx.wizard
        if w is not None:
            w.committed(receipt)
        self.clear_pii()
        self.committed.emit(receipt)

    def _failed(self, exc: Exception) -> None:
        w = self.ctx.wizard
        err = (
            exc
            if isinstance(exc, StationError)
            else StationError(
                "Saving failed unexpectedly: call a technician.",
                urdu="محفوظ نہیں ہو سکا: ٹیکنیشن کو بلائیں۔",
                code="commit.unexpected",
            )
        )
        if w is not None:
            w.commit_failed(err)
        self.enter()

    def clear_pii(self) -> None:
        for lbl in self.values.values():
            lbl.clear()
        self.face.clear()
        for lbl in self.fingers.values():
            lbl.clear()
        self.finger_previews.clear()
        self.message.clear()


def _keys() -> set[str]:
    from kiosk_ui.i18n import STRINGS

    return set(STRINGS)
