"""The receipt on paper: a QR code (packet id + station signature), the tracking number and the purpose.

Two printers: Qt's QPrinter (a PDF file or a system printer) and ESC/POS thermal printers through
python-escpos (USB, a device file, or its ``Dummy`` printer in tests). Both run on the task thread
(painting on a QPrinter off the GUI thread is supported by Qt). The receipt carries no PII.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import qrcode
from PySide6.QtCore import QMarginsF, QRectF, Qt
from PySide6.QtGui import QFont, QImage, QPageLayout, QPageSize, QPainter
from PySide6.QtPrintSupport import QPrinter

from kiosk_ui.fonts import URDU_FAMILY
from station.errors import StationError
from station.wizard import Receipt

URDU_TITLE = "اندراج کی رسید"
URDU_KEEP = "یہ رسید سنبھال کر رکھیں۔ ٹریکنگ نمبر سے اپنے کارڈ کی صورتحال معلوم کریں۔"


def qr_png(payload: str, box_size: int = 6) -> bytes:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size, border=2)
    qr.add_data(payload)
    qr.make(fit=True)
    img = qr.make_image(fill_color="black", back_color="white")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def qr_image(payload: str, box_size: int = 6) -> QImage:
    return QImage.fromData(qr_png(payload, box_size), "PNG")


def receipt_lines(receipt: Receipt) -> list[str]:
    when = dt.datetime.fromtimestamp(receipt.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        "ENROLLMENT RECEIPT",
        f"Tracking number: {receipt.tracking_number}",
        f"Station: {receipt.station_id}",
        f"Date: {when}",
        f"Packet: {receipt.packet_id}",
        "Purpose:",
        receipt.purpose,
    ]


def print_pdf(receipt: Receipt, path: Path, *, printer_name: str | None = None) -> Path | None:
    """Render the receipt with QPrinter: to ``path`` as PDF, or to the system printer ``printer_name``."""
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    if printer_name:
        printer.setPrinterName(printer_name)
        if not printer.isValid():
            raise StationError(
                f"Printer {printer_name} is not available: check that it is on and connected.",
                urdu="پرنٹر دستیاب نہیں: دیکھیں کہ وہ چالو اور جڑا ہوا ہے۔",
                code="print.unavailable",
            )
    else:
        printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
        printer.setOutputFileName(str(path))
    printer.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A5), QPageLayout.Orientation.Portrait, QMarginsF(12, 12, 12, 12)
        )
    )
    painter = QPainter()
    if not painter.begin(printer):
        raise StationError("The receipt could not be printed: check the printer.", code="print.failed")
    try:
        page = printer.pageLayout().paintRectPixels(printer.resolution())
        w = page.width()
        y = 0.0
        font = QFont("DejaVu Sans", 11)
        painter.setFont(font)
        line = painter.fontMetrics().height() * 1.3
        for text in receipt_lines(receipt)[:-1]:
            painter.drawText(QRectF(0, y, w, line), Qt.AlignmentFlag.AlignLeft, text)
            y += line
        purpose_rect = QRectF(0, y, w, line * 4)
        painter.drawText(purpose_rect, Qt.TextFlag.TextWordWrap, receipt.purpose)
        y += line * 4
        urdu = QFont(URDU_FAMILY, 12)
        painter.setFont(urdu)
        uline = painter.fontMetrics().height() * 1.2
        painter.drawText(QRectF(0, y, w, uline), Qt.AlignmentFlag.AlignRight, URDU_TITLE)
        y += uline
        painter.drawText(
            QRectF(0, y, w, uline * 2), Qt.AlignmentFlag.AlignRight | Qt.TextFlag.TextWordWrap, URDU_KEEP
        )
        y += uline * 2
        qr = qr_image(receipt.qr_payload, box_size=10)
        side = min(w * 0.6, page.height() - y)
        painter.drawImage(QRectF((w - side) / 2, y, side, side), qr)
    finally:
        painter.end()
    return None if printer_name else path


def print_escpos(receipt: Receipt, printer: object) -> None:
    """Print on an ESC/POS printer (``escpos.printer.Usb/File/Dummy``): text, QR, cut."""
    p = printer
    p.set(align="center", bold=True)  # type: ignore[attr-defined]
    p.text("ENROLLMENT RECEIPT\n")  # type: ignore[attr-defined]
    p.set(align="left", bold=False)  # type: ignore[attr-defined]
    for text in receipt_lines(receipt)[1:]:
        p.text(text + "\n")  # type: ignore[attr-defined]
    p.qr(receipt.qr_payload, size=6, native=False)  # type: ignore[attr-defined]
    p.cut()  # type: ignore[attr-defined]


def open_escpos(spec: str) -> object:
    """``escpos-usb:VID:PID`` or ``escpos-file:/dev/usb/lp0`` from the station's ``printer`` setting."""
    from escpos import printer as escpos_printer

    kind, _, rest = spec.partition(":")
    if kind == "escpos-usb":
        vid, _, pid = rest.partition(":")
        return escpos_printer.Usb(int(vid, 16), int(pid, 16))
    if kind == "escpos-file":
        return escpos_printer.File(rest)
    raise StationError(
        f"Unknown printer setting {spec!r}: fix 'printer' in station.toml.", code="print.config"
    )


def print_receipt(receipt: Receipt, spec: str, fallback_dir: Path) -> str:
    """Print according to the station's ``printer`` setting; returns where it went."""
    if spec.startswith("escpos-"):
        p = open_escpos(spec)
        try:
            print_escpos(receipt, p)
        finally:
            close = getattr(p, "close", None)
            if close is not None:
                close()
        return spec
    if spec.startswith("qt:"):
        print_pdf(receipt, fallback_dir / "receipt.pdf", printer_name=spec[3:])
        return spec
    path = (
        Path(spec[4:]) if spec.startswith("pdf:") else fallback_dir / f"receipt-{receipt.tracking_number}.pdf"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    print_pdf(receipt, path)
    return str(path)
