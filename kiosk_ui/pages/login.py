"""Login and lock screen: operator id + PIN (argon2id, on the task thread) + the operator's own finger."""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from kiosk_ui.context import KioskContext, cancel_capture, request_capture
from kiosk_ui.widgets import Page, big_button, error_text, message_label, title_label
from kiosk_ui.workers import FingerResult
from station.auth import AuthError, Operator, PendingLogin


class LoginPage(Page):
    logged_in = Signal(object)  # Operator

    def __init__(self, ctx: KioskContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self._pending: PendingLogin | None = None
        self._idle_seconds: int | None = None
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        box = QWidget()
        box.setMaximumWidth(640)
        lay = QVBoxLayout(box)
        self.title = title_label()
        self.notice = message_label()
        self.notice.setObjectName("notice")
        form = QFormLayout()
        self.id_label, self.pin_label = QLabel(), QLabel()
        self.operator_id = QLineEdit()
        self.operator_id.setObjectName("operatorId")
        self.operator_id.setLayoutDirection(Qt.LayoutDirection.LeftToRight)
        self.pin = QLineEdit()
        self.pin.setObjectName("pin")
        self.pin.setEchoMode(QLineEdit.EchoMode.Password)
        self.pin.setLayoutDirection(Qt.LayoutDirection.LeftToRight)
        self.pin.setMaxLength(12)
        for w in (self.operator_id, self.pin):
            w.setMinimumHeight(56)
        form.addRow(self.id_label, self.operator_id)
        form.addRow(self.pin_label, self.pin)
        self.finger_prompt = message_label()
        self.finger_prompt.setObjectName("fingerPrompt")
        self.message = message_label()
        self.message.setObjectName("loginMessage")
        buttons = QHBoxLayout()
        self.cancel_btn = big_button()
        self.next_btn = big_button(primary=True)
        self.next_btn.setObjectName("loginNext")
        buttons.addWidget(self.cancel_btn)
        buttons.addWidget(self.next_btn)
        for label in (self.title, self.notice):
            lay.addWidget(label)
        lay.addLayout(form)
        lay.addWidget(self.finger_prompt)
        lay.addWidget(self.message)
        lay.addLayout(buttons)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(box, 2)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)
        self.next_btn.clicked.connect(self.submit_pin)
        self.pin.returnPressed.connect(self.submit_pin)
        self.cancel_btn.clicked.connect(self.reset)
        self.reset()

    def connect_scanner(self) -> None:
        w = self.ctx.scanner_worker
        w.captured.connect(self._on_captured)
        w.failed.connect(self._on_failed)

    def retranslate(self) -> None:
        self.title.setText(self.t("login.locked_title" if self._idle_seconds else "login.title"))
        self.notice.setText(self.t("login.idle", s=self._idle_seconds) if self._idle_seconds else "")
        self.notice.setVisible(bool(self._idle_seconds))
        self.id_label.setText(self.t("login.id"))
        self.pin_label.setText(self.t("login.pin"))
        self.next_btn.setText(self.t("login.next"))
        self.cancel_btn.setText(self.t("login.cancel"))
        self.finger_prompt.setText(self.t("login.finger") if self._pending else "")

    def show_locked(self, idle_seconds: int | None) -> None:
        self._idle_seconds = idle_seconds
        self.reset()

    def reset(self) -> None:
        if self._pending is not None and self.ctx.scanner is not None:
            cancel_capture(self.ctx)
        self._pending = None
        self.operator_id.setText("")  # setText drops the undo history too; clear() would keep it
        self.pin.setText("")
        self.message.clear()
        self.operator_id.setEnabled(True)
        self.pin.setEnabled(True)
        self.next_btn.setEnabled(True)
        self.retranslate()

    def clear_pii(self) -> None:
        self.reset()

    def _show_error(self, exc: Exception) -> None:
        self.message.setText(error_text(self.ctx, exc))

    def submit_pin(self) -> None:
        if self._pending is not None or not self.next_btn.isEnabled():
            return
        op_id, pin = self.operator_id.text().strip(), self.pin.text()
        self.pin.setText("")
        self.next_btn.setEnabled(False)
        self.message.setText(self.t("login.checking"))
        self.ctx.tasks.run(partial(self.ctx.services.check_pin, op_id, pin), self._pin_ok, self._pin_failed)

    def _pin_failed(self, exc: Exception) -> None:
        self.next_btn.setEnabled(True)
        self._show_error(exc)

    def _pin_ok(self, pending: PendingLogin) -> None:
        self._pending = pending
        self.operator_id.setEnabled(False)
        self.pin.setEnabled(False)
        self.message.clear()
        self.retranslate()
        request_capture(self.ctx, "login")

    def _on_captured(self, result: object) -> None:
        if not isinstance(result, FingerResult) or result.job != "login" or self._pending is None:
            return
        pending, pixels = self._pending, result.pixels
        self.message.setText(self.t("login.checking"))

        def verify() -> Operator:
            return self.ctx.services.check_finger(pending, self.ctx.scanner_worker.encoder.template(pixels))

        self.ctx.tasks.run(verify, self._finger_ok, self._finger_failed)

    def _on_failed(self, job: str, code: str, message: str) -> None:
        if job == "login" and self._pending is not None:
            self.message.setText(message)
            request_capture(self.ctx, "login")

    def _finger_failed(self, exc: Exception) -> None:
        self._show_error(exc)
        if isinstance(exc, AuthError) and exc.code == "auth.finger_mismatch":
            request_capture(self.ctx, "login")  # another try with the right finger
        else:
            pending = self._pending
            self._pending = None
            self.operator_id.setEnabled(True)
            self.pin.setEnabled(True)
            self.next_btn.setEnabled(True)
            self.finger_prompt.clear()
            if pending is not None:
                self.operator_id.setText(pending.operator.operator_id)

    def _finger_ok(self, op: Operator) -> None:
        self._pending = None
        self._idle_seconds = None
        self.reset()
        self.logged_in.emit(op)
