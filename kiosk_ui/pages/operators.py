"""Operator onboarding by a supervisor: id, role, PIN twice, and fingers enrolled on the scanner."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from kiosk_ui.context import KioskContext, request_capture
from kiosk_ui.widgets import Page, big_button, message_label, title_label
from kiosk_ui.workers import FingerResult
from station.auth import Operator, Role
from station.errors import StationError


class OperatorsPage(Page):
    closed = Signal()
    added = Signal(object)

    def __init__(self, ctx: KioskContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.templates: list[bytes] = []
        lay = QVBoxLayout(self)
        self.title = title_label()
        lay.addWidget(self.title)
        form = QFormLayout()
        self.labels = [QLabel() for _ in range(4)]
        self.op_id = QLineEdit()
        self.op_id.setObjectName("newOperatorId")
        self.role = QComboBox()
        for r in Role:
            self.role.addItem(r.label_en, r.value)
        self.pin1, self.pin2 = QLineEdit(), QLineEdit()
        for w in (self.op_id, self.pin1, self.pin2):
            w.setLayoutDirection(Qt.LayoutDirection.LeftToRight)
            w.setMinimumHeight(52)
        for w in (self.pin1, self.pin2):
            w.setEchoMode(QLineEdit.EchoMode.Password)
        for lbl, w in zip(self.labels, (self.op_id, self.role, self.pin1, self.pin2), strict=True):
            form.addRow(lbl, w)
        lay.addLayout(form)
        self.message = message_label()
        lay.addWidget(self.message)
        row = QHBoxLayout()
        self.finger_btn = big_button()
        self.save_btn = big_button(primary=True)
        self.close_btn = big_button()
        for b in (self.finger_btn, self.save_btn, self.close_btn):
            row.addWidget(b)
        lay.addLayout(row)
        lay.addStretch(1)
        self.finger_btn.clicked.connect(lambda: request_capture(self.ctx, "onboard"))
        self.save_btn.clicked.connect(self.save)
        self.close_btn.clicked.connect(self.closed.emit)

    def connect_scanner(self) -> None:
        self.ctx.scanner_worker.captured.connect(self._on_captured)

    def retranslate(self) -> None:
        self.title.setText(self.t("onb.title"))
        for lbl, key in zip(self.labels, ("login.id", "onb.role", "login.pin", "onb.pin2"), strict=True):
            lbl.setText(self.t(key))
        for i, r in enumerate(Role):
            self.role.setItemText(i, r.label_ur if self.ctx.tr.urdu else r.label_en)
        self.finger_btn.setText(self.t("onb.enroll_finger"))
        self.save_btn.setText(self.t("onb.save"))
        self.close_btn.setText(self.t("status.close"))

    def _on_captured(self, result: object) -> None:
        if not isinstance(result, FingerResult) or result.job != "onboard":
            return
        pixels = result.pixels
        encoder = self.ctx.scanner_worker.encoder
        self.ctx.tasks.run(lambda: encoder.template(pixels), self._template_ok, self._error)

    def _template_ok(self, template: object) -> None:
        assert isinstance(template, bytes)
        self.templates.append(template)
        self.message.setText(self.t("onb.finger_ok", n=len(self.templates)))

    def _error(self, exc: Exception) -> None:
        self.message.setText(
            self.ctx.tr.pick(exc.message, exc.urdu) if isinstance(exc, StationError) else str(exc)
        )

    def save(self) -> None:
        op = self.ctx.operator
        if op is None or op.role is not Role.SUPERVISOR:
            self.message.setText(self.t("onb.supervisor_only"))
            return
        if self.pin1.text() != self.pin2.text():
            self.message.setText(self.t("onb.pin_mismatch"))
            return
        op_id, pin, role, templates = (
            self.op_id.text().strip(),
            self.pin1.text(),
            Role(self.role.currentData()),
            list(self.templates),
        )
        self.ctx.tasks.run(
            lambda: self.ctx.services.add_operator(op_id, pin, role, templates, op.operator_id),
            self._added,
            self._error,
        )

    def _added(self, new: object) -> None:
        assert isinstance(new, Operator)
        self.message.setText(self.t("onb.added", op=new.operator_id, n=len(new.templates)))
        self.clear_pii()
        self.added.emit(new)

    def clear_pii(self) -> None:
        for w in (self.op_id, self.pin1, self.pin2):
            w.setText("")
        self.templates = []
