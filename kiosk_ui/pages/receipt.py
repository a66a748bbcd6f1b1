"""Step 6: the receipt on screen (tracking number, QR, purpose) and printing it (task thread)."""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from kiosk_ui.context import KioskContext
from kiosk_ui.i18n import ltr
from kiosk_ui.widgets import Page, big_button, message_label, title_label
from station.errors import StationError
from station.wizard import Receipt


class ReceiptPage(Page):
    next_citizen = Signal()
    printed = Signal(str)

    def __init__(self, ctx: KioskContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.receipt: Receipt | None = None
        lay = QVBoxLayout(self)
        self.title = title_label()
        self.tracking_label = QLabel()
        self.tracking = QLabel()
        self.tracking.setObjectName("trackingNumber")
        f = self.tracking.font()
        f.setPointSize(f.pointSize() + 14)
        f.setBold(True)
        self.tracking.setFont(f)
        self.qr = QLabel()
        self.qr.setObjectName("receiptQr")
        self.qr.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.purpose = QLabel()
        self.purpose.setWordWrap(True)
        self.station = QLabel()
        self.message = message_label()
        for w in (
            self.title,
            self.tracking_label,
            self.tracking,
            self.qr,
            self.purpose,
            self.station,
            self.message,
        ):
            lay.addWidget(w)
        row = QHBoxLayout()
        self.print_btn = big_button()
        self.print_btn.setObjectName("printReceipt")
        self.next_btn = big_button(primary=True)
        self.next_btn.setObjectName("nextCitizen")
        row.addWidget(self.print_btn)
        row.addWidget(self.next_btn)
        lay.addLayout(row)
        self.print_btn.clicked.connect(self.print_receipt)
        self.next_btn.clicked.connect(self.next_citizen.emit)

    def show_receipt(self, receipt: Receipt, qr_png: bytes | None = None) -> None:
        self.receipt = receipt
        from kiosk_ui import printing  # the review's commit task loaded it

        png = qr_png if qr_png is not None else printing.qr_png(receipt.qr_payload)
        self.qr.setPixmap(QPixmap.fromImage(QImage.fromData(png)))  # Qt reads the format from the bytes
        self.message.clear()
        self.retranslate()

    def retranslate(self) -> None:
        self.title.setText(self.t("receipt.title"))
        self.tracking_label.setText(self.t("receipt.tracking"))
        self.print_btn.setText(self.t("receipt.print"))
        self.next_btn.setText(self.t("receipt.next"))
        r = self.receipt
        if r is not None:
            self.tracking.setText(ltr(r.tracking_number) if self.ctx.tr.urdu else r.tracking_number)
            self.purpose.setText(f"{self.t('consent.purpose')}: {r.purpose}")
            self.station.setText(f"{self.t('receipt.station')}: {r.station_id}")

    def print_receipt(self) -> None:
        r = self.receipt
        if r is None:
            return
        spec = self.ctx.config.printer
        out_dir = self.ctx.home.root / "receipts"
        self.print_btn.setEnabled(False)
        from kiosk_ui import printing

        self.ctx.tasks.run(
            partial(printing.print_receipt, r, spec, out_dir), self._printed, self._print_failed
        )

    def _printed(self, where: str) -> None:
        self.print_btn.setEnabled(True)
        self.message.setText(self.t("receipt.printed"))
        self.printed.emit(str(where))

    def _print_failed(self, exc: Exception) -> None:
        self.print_btn.setEnabled(True)
        if isinstance(exc, StationError):
            self.message.setText(self.ctx.tr.pick(exc.message, exc.urdu))
        else:
            self.message.setText(f"{self.t('dev.error', msg=type(exc).__name__)}")

    def clear_pii(self) -> None:
        # The receipt holds no PII, but the next citizen must not see the previous one's number.
        self.receipt = None
        self.qr.clear()
        self.tracking.clear()
        self.purpose.clear()
        self.message.clear()
