"""What became of the applications made here: the "to re-enroll" list and a lookup by tracking number.

No PII: the station cannot open its packets, so the list shows the tracking number, the date of the
decision and the reason code's words only. The rows come from ``station.outcomes`` on the task thread
(the sync agent stores them after each heartbeat); this page only asks and renders.
"""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kiosk_ui.context import KioskContext
from kiosk_ui.i18n import ltr
from kiosk_ui.widgets import Page, big_button, error_text, message_label, title_label
from station.outcomes import Lookup, Outcome


class OutcomesPage(Page):
    holds_pii = False
    closed = Signal()

    def __init__(self, ctx: KioskContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.rows: list[Outcome] = []
        self.result: Lookup | None = None
        self.error: tuple[str, str | None] | None = None
        lay = QVBoxLayout(self)
        self.title = title_label()
        lay.addWidget(self.title)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        lay.addWidget(self.hint)
        self.table = QTableWidget(0, 3)
        self.table.setObjectName("reenrollTable")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(44)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        lay.addWidget(self.table, 1)
        self.lookup_title = title_label()
        lay.addWidget(self.lookup_title)
        row = QHBoxLayout()
        self.tracking = QLineEdit()
        self.tracking.setObjectName("trackingNumber")
        self.tracking.setMinimumHeight(48)
        self.tracking.setMaxLength(16)
        self.tracking.returnPressed.connect(self.look_up)
        self.lookup_btn = big_button(primary=True)
        self.lookup_btn.setObjectName("lookUp")
        self.lookup_btn.clicked.connect(self.look_up)
        row.addWidget(self.tracking, 1)
        row.addWidget(self.lookup_btn)
        lay.addLayout(row)
        self.answer = QLabel()
        self.answer.setObjectName("lookupAnswer")
        self.answer.setWordWrap(True)
        self.answer.setMinimumHeight(64)
        self.answer.setStyleSheet("border:2px solid #24527a; padding:10px; background:#f4f8fc;")
        lay.addWidget(self.answer)
        self.message = message_label()
        lay.addWidget(self.message)
        self.close_btn = big_button()
        self.close_btn.clicked.connect(self.closed.emit)
        lay.addWidget(self.close_btn)

    # -- data ------------------------------------------------------------------------------------------
    def enter(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        self.ctx.tasks.run(self.ctx.services.reenroll_list, self._show_rows, self._failed)

    def look_up(self) -> None:
        number = self.tracking.text().strip()
        if not number:
            return
        self.ctx.tasks.run(partial(self.ctx.services.lookup, number), self._show_lookup, self._lookup_failed)

    def _show_rows(self, rows: list[Outcome]) -> None:
        self.rows = rows
        self.retranslate()

    def _show_lookup(self, result: Lookup) -> None:
        self.result, self.error = result, None
        self.retranslate()

    def _lookup_failed(self, exc: Exception) -> None:
        self.result = None
        self.error = (getattr(exc, "message", str(exc)), getattr(exc, "urdu", None))
        self.retranslate()

    def _failed(self, exc: Exception) -> None:
        self.message.setText(error_text(self.ctx, exc))

    # -- rendering -------------------------------------------------------------------------------------
    def _n(self, value: str) -> str:
        return ltr(value) if self.ctx.tr.urdu else value

    def retranslate(self) -> None:
        urdu = self.ctx.tr.urdu
        self.title.setText(self.t("out.title"))
        self.hint.setText(self.t("out.hint") if self.rows else self.t("out.none"))
        self.table.setHorizontalHeaderLabels(
            [self.t("out.tracking"), self.t("out.date"), self.t("out.reason")]
        )
        self.table.setRowCount(len(self.rows))
        for i, o in enumerate(self.rows):
            for j, text in enumerate((self._n(o.tracking), self._n(o.decided_at[:10]), o.reason_label(urdu))):
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.lookup_title.setText(self.t("out.lookup"))
        self.tracking.setPlaceholderText("ABCD-EFGH-IJKL")
        self.lookup_btn.setText(self.t("out.look_up"))
        self.close_btn.setText(self.t("status.close"))
        if self.error is not None:
            self.answer.setText(self.ctx.tr.pick(*self.error))
        elif self.result is not None:
            r = self.result
            state = {"accepted": "out.accepted", "re-enroll": "out.reenroll", "rejected": "out.rejected"}.get(
                r.state, "out.pending"
            )
            text = self.t(state, n=r.tracking)
            if r.outcome is not None:
                reason = r.outcome.reason_label(urdu)
                text += (
                    "\n"
                    + self.t("out.decided", d=r.outcome.decided_at[:10])
                    + (f" — {reason}" if reason else "")
                )
            self.answer.setText(text)
        else:
            self.answer.setText("")

    def clear_pii(self) -> None:
        """Nothing here is PII; the typed tracking number and answer are cleared on lock all the same."""
        self.tracking.clear()
        self.result = None
        self.error = None
        self.answer.clear()
