"""Station status: queue counts, last sync, central reachable, certificate expiry, disk free.

The snapshot is read on the task thread and refreshed every few seconds while the page is shown."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QFormLayout, QLabel, QVBoxLayout, QWidget

from kiosk_ui.context import KioskContext
from kiosk_ui.i18n import ltr
from kiosk_ui.services import StatusSnapshot
from kiosk_ui.widgets import Page, big_button, error_text, message_label, title_label


class StatusPage(Page):
    closed = Signal()

    def __init__(self, ctx: KioskContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.snapshot: StatusSnapshot | None = None
        lay = QVBoxLayout(self)
        self.title = title_label()
        lay.addWidget(self.title)
        form = QFormLayout()
        self.rows: dict[str, tuple[QLabel, QLabel]] = {}
        for key in ("queue", "last_sync", "central", "cert", "disk"):
            name, value = QLabel(), QLabel()
            value.setObjectName(f"status_{key}")
            form.addRow(name, value)
            self.rows[key] = (name, value)
        lay.addLayout(form)
        self.message = message_label()
        lay.addWidget(self.message)
        lay.addStretch(1)
        self.close_btn = big_button()
        self.close_btn.clicked.connect(self.closed.emit)
        lay.addWidget(self.close_btn)
        self.timer = QTimer(self)
        self.timer.setInterval(5000)
        self.timer.timeout.connect(self.refresh)

    def enter(self) -> None:
        self.refresh()
        self.timer.start()

    def leave(self) -> None:
        self.timer.stop()

    def refresh(self) -> None:
        self.ctx.tasks.run(self.ctx.services.status, self._show, self._failed)

    def _failed(self, error: Exception) -> None:
        self.message.setText(error_text(self.ctx, error))

    def _show(self, snap: StatusSnapshot) -> None:
        self.snapshot = snap
        self.retranslate()

    def _n(self, value: object) -> str:
        return ltr(value) if self.ctx.tr.urdu else str(value)

    def retranslate(self) -> None:
        self.title.setText(self.t("status.title"))
        names = {"queue": "status.queue", "last_sync": "status.last_sync", "central": "status.central",
                 "cert": "status.cert", "disk": "status.disk"}  # fmt: skip
        for key, (name, _) in self.rows.items():
            name.setText(self.t(names[key]))
        self.close_btn.setText(self.t("status.close"))
        s = self.snapshot
        if s is None:
            return
        queue = ", ".join(f"{k} {self._n(v)}" for k, v in sorted(s.counts.items())) or self.t(
            "status.unknown"
        )
        self.rows["queue"][1].setText(queue)
        if s.last_sync_at:
            when = dt.datetime.fromtimestamp(s.last_sync_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            self.rows["last_sync"][1].setText(self._n(when))
        else:
            self.rows["last_sync"][1].setText(self.t("status.never"))
        reach = {True: "status.yes", False: "status.no", None: "status.unknown"}[s.central_reachable]
        self.rows["central"][1].setText(self.t(reach))
        cert = s.cert_expires.strftime("%Y-%m-%d") if s.cert_expires else None
        self.rows["cert"][1].setText(self._n(cert) if cert else self.t("status.unknown"))
        self.rows["disk"][1].setText(self._n(f"{s.disk_free_mb} MB"))
        self.message.setText(s.problem)
